"""Answered and repeated calls (results.py): call identity, the results a history holds, and
which calls of an answer go out, read by the literal path. ``RULES`` is also run through a real
sandbox kernel (tests/test_results_sandbox.py): both paths must give the same calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from litellm_toolcode.answer import interpret
from litellm_toolcode.errors import (
    AlreadyAnsweredError,
    ExecutionUnavailableError,
    ModelOutputError,
    RepeatedCallError,
    ToolArgumentError,
)
from litellm_toolcode.results import Answered, KnownResult, call_key, known_results
from litellm_toolcode.schema_code import build_toolset


def tool(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


FLIGHT = tool(
    "find_flight",
    {
        "origin": {"type": "string"},
        "destination": {"type": "string"},
        "cabin": {"type": "string", "enum": ["economy", "business"]},
    },
    ["origin", "destination"],
)
CONVERT = tool(
    "convert_currency",
    {"amount_eur": {"type": "number"}, "to": {"type": "string"}},
    ["amount_eur", "to"],
)
BOOK = tool("book_flight", {"flight": {"type": "string"}}, ["flight"])
TOOLS = build_toolset([FLIGHT, CONVERT, BOOK])


def assistant(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def answered_history(*results: tuple[dict[str, Any], Any]) -> list[dict[str, Any]]:
    """A chat history where find_flight(**arguments) was answered with each content."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "fly me"}]
    for number, (arguments, content) in enumerate(results):
        messages.append(assistant(f"call_{number}", "find_flight", arguments))
        messages.append({"role": "tool", "tool_call_id": f"call_{number}", "content": content})
    return messages


NYC = {"origin": "PAR", "destination": "NYC"}
ROM = {"origin": "PAR", "destination": "ROM"}
HISTORY = answered_history((NYC, '["AF123", 420.0]'), (ROM, "AZ9 (text, not JSON)"))


def known(messages: list[dict[str, Any]], limit: int = 20_000) -> tuple[KnownResult, ...]:
    return known_results(messages, TOOLS, max_result_chars=limit)


def key(function: str, **arguments: Any) -> str:
    return call_key(function, TOOLS.validate(function, arguments))


# --- call identity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (("find_flight", NYC), ("find_flight", {"destination": "NYC", "origin": "PAR"}), True),
        (
            ("convert_currency", {"amount_eur": 420, "to": "USD"}),
            ("convert_currency", {"amount_eur": 420.0, "to": "USD"}),
            True,
        ),
        (("find_flight", NYC), ("find_flight", ROM), False),
        (("find_flight", NYC), ("book_flight", {"flight": "NYC"}), False),
        (
            ("convert_currency", {"amount_eur": 1.5, "to": "USD"}),
            ("convert_currency", {"amount_eur": 1, "to": "USD"}),
            False,
        ),
        (("find_flight", {**NYC, "cabin": None}), ("find_flight", NYC), True),
        (("find_flight", {**NYC, "cabin": "business"}), ("find_flight", NYC), False),
    ],
    ids=[
        "keyword-order",
        "int-vs-float",
        "other-arguments",
        "other-tool",
        "other-number",
        "none-is-not-given",
        "other-cabin",
    ],
)
def test_call_key(
    left: tuple[str, dict[str, Any]], right: tuple[str, dict[str, Any]], same: bool
) -> None:
    assert (key(left[0], **left[1]) == key(right[0], **right[1])) is same


# --- the results a history holds ----------------------------------------------------------------


def test_json_and_text_results() -> None:
    found = {r.key: r.value for r in known(HISTORY)}
    assert found == {
        key("find_flight", **NYC): ["AF123", 420.0],
        key("find_flight", **ROM): "AZ9 (text, not JSON)",
    }


@pytest.mark.parametrize(
    ("content", "value"),
    [
        ('{"id": "AF123"}', {"id": "AF123"}),
        ('"AF123"', "AF123"),
        ("42", 42),
        ("null", None),
        ("NaN", "NaN"),  # not JSON: the text
        ("[1, 2", "[1, 2"),
        ([{"type": "text", "text": "[1,"}, {"type": "text", "text": " 2]"}], [1, 2]),
        ("", ""),
    ],
    ids=["object", "string", "number", "null", "nan-is-text", "broken", "text-parts", "empty"],
)
def test_result_values(content: Any, value: Any) -> None:
    (result,) = known(answered_history((NYC, content)))
    assert result.value == value
    assert json.loads(result.json_text) == value  # what a kernel is given


def test_what_is_not_a_known_result() -> None:
    messages = [
        *answered_history((NYC, "x" * 101)),  # longer than the limit: the model saw it cut
        assistant("c_unknown", "no_such_tool", NYC),
        {"role": "tool", "tool_call_id": "c_unknown", "content": "1"},
        assistant("c_invalid", "find_flight", {"origin": "PAR"}),  # does not validate
        {"role": "tool", "tool_call_id": "c_invalid", "content": "1"},
        assistant("c_unanswered", "find_flight", ROM),  # no tool message
    ]
    assert known(messages, limit=100) == ()


def test_the_latest_answer_wins_and_the_total_is_bounded() -> None:
    found = known(answered_history((NYC, '"old"'), (NYC, '"new"')))
    assert [r.value for r in found] == ["new"]
    # newest first within the total budget: the older result is left out
    bounded = known_results(
        answered_history((NYC, '"aaaa"'), (ROM, '"bbbb"')),
        TOOLS,
        max_result_chars=100,
        max_total_chars=8,
    )
    assert [r.value for r in bounded] == ["bbbb"]


# --- which calls go out: (id, code, history results known?, expected calls or error) ---------

Expected = list[tuple[str, dict[str, Any]]] | type[Exception]
FF = "find_flight('PAR', 'NYC')"
CALL_FF = ("find_flight", NYC)
USD_420 = ("convert_currency", {"amount_eur": 420.0, "to": "USD"})

RULES: list[tuple[str, str, bool, Expected]] = [
    # one answer, nothing known: a used repeat is the same call, and the answer stops there
    ("nested-repeat", f"{FF}\nconvert_currency(amount_eur={FF}[1], to='USD')", False, [CALL_FF]),
    (
        "nested-repeat-other-spelling",
        "find_flight(destination='NYC', origin='PAR')\n"
        "convert_currency(amount_eur=find_flight('PAR', 'NYC')[1], to='USD')",
        False,
        [CALL_FF],
    ),
    (
        "assigned-repeat",
        f"{FF}\nx = {FF}\nconvert_currency(amount_eur=x[1], to='USD')",
        False,
        [CALL_FF],
    ),
    (
        "assigned-then-used",
        f"x = {FF}\nconvert_currency(amount_eur=x[1], to='USD')",
        False,
        [CALL_FF],
    ),
    ("nested-first-call", f"convert_currency(amount_eur={FF}[1], to='USD')", False, [CALL_FF]),
    ("passed-whole", f"{FF}\nbook_flight(flight={FF})", False, [CALL_FF]),
    # a result passed to a call that does not fit stops the answer there all the same: the
    # model writes that call again once the result is in front of it (BFCL multi-turn case 24
    # wrote `diff(diff("draft_report.txt", "final_report.txt"))`)
    ("nested-into-the-same-tool", f"find_flight({FF})", False, [CALL_FF]),
    ("nested-into-a-call-that-misses-one", f"convert_currency({FF}[1])", False, [CALL_FF]),
    (
        "nested-into-a-call-with-too-many",
        f"book_flight({FF}, 'window seat')",
        False,
        [CALL_FF],
    ),
    ("bare-repeats-stay", f"{FF}\n{FF}", False, [CALL_FF, CALL_FF]),
    ("printed-repeat-stays", f"{FF}\nprint({FF})", False, [CALL_FF, CALL_FF]),
    ("unused-assigned-repeats-stay", f"a = {FF}\nb = {FF}", False, [CALL_FF, CALL_FF]),
    (
        "calls-between-stay",
        f"{FF}\nbook_flight(flight='X')\nconvert_currency(amount_eur={FF}[1], to='USD')",
        False,
        [CALL_FF, ("book_flight", {"flight": "X"})],
    ),
    # the history answered find_flight(PAR, NYC) with ["AF123", 420.0], (PAR, ROM) with text
    ("answered-nested", f"{FF}\nconvert_currency(amount_eur={FF}[1], to='USD')", True, [USD_420]),
    ("answered-nested-alone", f"convert_currency(amount_eur={FF}[1], to='USD')", True, [USD_420]),
    (
        "answered-assigned",
        f"x = {FF}\nconvert_currency(amount_eur=x[1], to='USD')",
        True,
        [USD_420],
    ),
    (
        "answered-looked-up-first",
        f"p = {FF}[1]\nconvert_currency(amount_eur=p, to='USD')",
        True,
        [USD_420],
    ),
    (
        "answered-negative-index",
        f"convert_currency(amount_eur={FF}[-1], to='USD')",
        True,
        [USD_420],
    ),
    ("answered-bare-alone-is-a-refresh", FF, True, [CALL_FF]),
    (
        "answered-with-none-for-a-left-out-argument",
        "convert_currency(amount_eur=find_flight('PAR', 'NYC', None)[1], to='USD')",
        True,
        [USD_420],
    ),
    (
        "answered-other-cabin-is-another-call",
        "convert_currency(amount_eur=find_flight('PAR', 'NYC', 'business')[1], to='USD')",
        True,
        [("find_flight", {**NYC, "cabin": "business"})],
    ),
    ("answered-printed-is-a-refresh", f"print({FF})", True, [CALL_FF]),
    (
        "answered-and-a-new-call",
        f"convert_currency(amount_eur={FF}[1], to='USD')\nfind_flight('PAR', 'LON')",
        True,
        [USD_420, ("find_flight", {"origin": "PAR", "destination": "LON"})],
    ),
    (
        "other-arguments-go-out",
        "find_flight('PAR', 'LON')\n"
        "convert_currency(amount_eur=find_flight('PAR', 'LON')[1], to='USD')",
        True,
        [("find_flight", {"origin": "PAR", "destination": "LON"})],
    ),
    (
        "text-result",
        "book_flight(flight=find_flight('PAR', 'ROM'))",
        True,
        [("book_flight", {"flight": "AZ9 (text, not JSON)"})],
    ),
    (
        "text-result-into-a-number",
        "convert_currency(amount_eur=find_flight('PAR', 'ROM'), to='USD')",
        True,
        ToolArgumentError,
    ),
    (
        "answered-nested-into-a-call-that-misses-one",
        f"convert_currency({FF}[1])",
        True,
        ToolArgumentError,
    ),
    (
        "index-out-of-range",
        f"convert_currency(amount_eur={FF}[5], to='USD')",
        True,
        ModelOutputError,
    ),
    ("nothing-left-to-send", f"x = {FF}", True, AlreadyAnsweredError),
]
# Code only the sandbox reads (the literal path says it needs execution): same rules.
SANDBOX_ONLY: list[tuple[str, str, bool, Expected]] = [
    (
        "answered-arithmetic",
        f"convert_currency(amount_eur={FF}[1] * 2, to='USD')",
        True,
        [("convert_currency", {"amount_eur": 840.0, "to": "USD"})],
    ),
    (
        "answered-in-a-loop",
        "for d in ['NYC', 'LON']:\n"
        "    f = find_flight('PAR', d)\n"
        "    if d == 'NYC':\n"
        "        convert_currency(amount_eur=f[1], to='USD')",
        True,
        [USD_420, ("find_flight", {"origin": "PAR", "destination": "LON"})],
    ),
    (
        "nested-repeat-arithmetic",
        f"{FF}\nconvert_currency(amount_eur={FF}[1] * 2, to='USD')",
        False,
        [CALL_FF],
    ),
    ("bare-in-a-loop", f"for _ in range(2):\n    {FF}", True, [CALL_FF, CALL_FF]),
    (
        "unused-repeats-in-a-comprehension-stay",
        f"[{FF} for _ in range(2)]",
        False,
        [CALL_FF, CALL_FF],
    ),
    (
        "repeat-used-in-a-loop",
        f"{FF}\nfor _ in range(2):\n    book_flight(flight={FF}[0])",
        False,
        [CALL_FF],
    ),
]


def answered_for(uses_history: bool) -> Answered:
    return Answered.of(TOOLS, known(HISTORY) if uses_history else ())


def sent(reply_calls: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, json.loads(c.arguments)) for c in reply_calls]


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


@pytest.mark.parametrize(
    ("code", "uses_history", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_rules_on_the_literal_path(code: str, uses_history: bool, expected: Expected) -> None:
    answered = answered_for(uses_history)
    if isinstance(expected, type):
        with pytest.raises(expected):
            interpret(fenced(code), TOOLS, answered)
    else:
        assert sent(interpret(fenced(code), TOOLS, answered).tool_calls) == expected


@pytest.mark.parametrize(
    ("code", "uses_history"), [r[1:3] for r in SANDBOX_ONLY], ids=[r[0] for r in SANDBOX_ONLY]
)
def test_code_the_literal_path_leaves_to_the_sandbox(code: str, uses_history: bool) -> None:
    with pytest.raises(ExecutionUnavailableError):
        interpret(fenced(code), TOOLS, answered_for(uses_history))


def test_without_a_history_nothing_is_known() -> None:
    code = fenced(f"convert_currency(amount_eur={FF}[1], to='USD')")
    assert sent(interpret(code, TOOLS).tool_calls) == [CALL_FF]


def test_the_all_answered_error_names_the_calls() -> None:
    with pytest.raises(AlreadyAnsweredError, match=r"find_flight\(\.\.\.\)"):
        interpret(fenced(f"x = {FF}\ny = {FF}"), TOOLS, answered_for(True))


# --- loops: a call answered several times with one result --------------------------------------

TWICE = answered_history((NYC, '["AF123", 420.0]'), (NYC, '["AF123", 420.0]'))
AGAIN = {"role": "user", "content": "and now?"}  # the client's next request
ONCE_MORE = answered_history((NYC, '["AF123", 420.0]'))[1:]  # find_flight answered once more


@pytest.mark.parametrize(
    ("history", "code", "loop"),
    [
        (TWICE, FF, True),  # the third identical call after two identical answers
        (TWICE, f"{FF}\n{FF}", True),
        (HISTORY, FF, False),  # answered once: a refresh
        (answered_history((NYC, "[1]"), (NYC, "[2]")), FF, False),  # the result changed: a poll
        (TWICE, f"{FF}\nbook_flight(flight='AF123')", False),  # something new goes out with it
        # answers before the user's latest message do not count: a new request, a new state
        ([*TWICE, AGAIN], FF, False),
        ([*TWICE, AGAIN, *ONCE_MORE], FF, False),
        ([*HISTORY, AGAIN, *TWICE[1:]], FF, True),  # twice since it: a loop in this turn
    ],
    ids=[
        "third-call",
        "twice-in-one-answer",
        "answered-once",
        "changing-result",
        "with-new",
        "next-user-message",
        "once-since-the-user-message",
        "twice-since-the-user-message",
    ],
)
def test_loops(history: list[dict[str, Any]], code: str, loop: bool) -> None:
    answered = Answered.of(TOOLS, known(history))
    if loop:
        with pytest.raises(RepeatedCallError, match=r"returned, 2 times: \["):
            interpret(fenced(code), TOOLS, answered)
    else:
        assert interpret(fenced(code), TOOLS, answered).tool_calls


def test_a_loop_counts_the_answers_of_one_result() -> None:
    (result,) = known(TWICE)
    assert (result.times, result.call) == (2, 'find_flight(origin="PAR", destination="NYC")')
    (result,) = known([*TWICE, AGAIN])
    assert (result.times, result.value) == (0, ["AF123", 420.0])  # still known, not a loop
