"""Answered and repeated calls through the real proxy (both ways): what an agent gets when the
model's code repeats a call or uses the result of a call the client already ran. ``coder`` reads
code on the literal path only; ``runner`` runs what that path cannot read in a sandbox kernel."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import Case, Proxy
from tests.fake_upstream import FakeUpstream
from tests.test_endpoints import messages_post
from tests.test_endpoints_stream import assemble, function_calls, stream_messages, stream_responses
from tests.test_proxy import code
from tests.test_results import BOOK, CONVERT, FLIGHT, assistant

TOOLS = [FLIGHT, CONVERT, BOOK]
FF = "find_flight(origin='PAR', destination='NYC')"
CALL_FF = ("find_flight", {"origin": "PAR", "destination": "NYC"})
# the same use of find_flight's result, read on the host (coder) or run in a kernel (runner)
USES = {
    "coder": f"convert_currency(amount_eur={FF}[1], to='USD')",
    "runner": f"convert_currency(amount_eur=round({FF}[1], 2), to='USD')",
}
ALIASES = pytest.mark.parametrize("alias", ["coder", "runner"])


def answered(case: Case, content: Any, arguments: dict[str, Any] | None = None) -> list[Any]:
    """A history where the client ran find_flight (PAR -> NYC unless ``arguments``)."""
    arguments = arguments or CALL_FF[1]
    return [
        case.user("Find me a flight to New York and give its price in dollars"),
        assistant("call_ff1", "find_flight", arguments),
        {"role": "tool", "tool_call_id": "call_ff1", "content": content},
    ]


@ALIASES
def test_a_nested_repeat_is_one_call_and_the_answer_stops_there(case: Case, alias: str) -> None:
    case.script(code("# tool: find_flight, convert_currency", FF, USES[alias]))
    result = case.ask(model=alias, messages=[case.user("Flight price in USD?")], tools=TOOLS)
    assert result.calls() == [CALL_FF]
    assert result.finish_reason == "tool_calls"


# a result passed to a call it does not fit (BFCL case 24: `diff(diff("draft", "final"))`)
MISFIT = {
    "coder": f"find_flight({FF})",
    "runner": "for d in ['NYC']:\n    find_flight(find_flight(origin='PAR', destination=d))",
}


@ALIASES
def test_a_result_passed_to_a_call_that_does_not_fit_stops_there(case: Case, alias: str) -> None:
    """The inner call goes out, no repair round over the outer one's arguments: the model
    writes the outer call again once it has the result."""
    case.script(code("# tool: find_flight", MISFIT[alias]))
    result = case.ask(model=alias, messages=[case.user("Compare the flights")], tools=TOOLS)
    assert result.calls() == [CALL_FF]
    assert result.finish_reason == "tool_calls"
    assert len(case.seen) == 1  # no repair round


@ALIASES
def test_the_next_turn_uses_the_result_instead_of_calling_again(case: Case, alias: str) -> None:
    """LangGraph's loop: the agent ran find_flight; the model writes the same code again, now
    with its result in the history. Only convert_currency goes out, with the price filled in."""
    answer = code("# tool: find_flight, convert_currency", FF, USES[alias])
    case.script(answer, answer)
    messages: list[Any] = [case.user("Find me a flight to New York, price in dollars")]
    first = case.ask(model=alias, messages=messages, tools=TOOLS)
    assert first.calls() == [CALL_FF]
    (call,) = first.tool_calls
    messages += [
        assistant(call["id"], call["name"], json.loads(call["arguments"])),
        {"role": "tool", "tool_call_id": call["id"], "content": '["AF123", 420.0]'},
    ]
    second = case.ask(model=alias, messages=messages, tools=TOOLS)
    assert second.calls() == [("convert_currency", {"amount_eur": 420.0, "to": "USD"})]
    assert second.finish_reason == "tool_calls"
    # the model itself was shown the result, tied to its call
    assert '["AF123", 420.0]' in case.seen[-1]["messages"][-1]["content"]


@ALIASES
def test_a_text_result_is_substituted_as_text(case: Case, alias: str) -> None:
    use = f"book_flight(flight={FF})" if alias == "coder" else f"book_flight(flight={FF}.strip())"
    case.script(code("# tool: book_flight", use))
    result = case.ask(model=alias, messages=answered(case, "AF123 "), tools=TOOLS)
    expected = "AF123 " if alias == "coder" else "AF123"
    assert result.calls() == [("book_flight", {"flight": expected})]


@ALIASES
def test_other_arguments_are_another_call(case: Case, alias: str) -> None:
    other = "find_flight(origin='PAR', destination='LON')"
    case.script(code(other, USES[alias].replace(FF, other)))
    result = case.ask(model=alias, messages=answered(case, '["AF123", 420.0]'), tools=TOOLS)
    assert result.calls() == [("find_flight", {"origin": "PAR", "destination": "LON"})]


def test_a_lone_repeat_of_an_answered_call_goes_out(case: Case) -> None:
    case.script(code("# tool: find_flight", FF))
    result = case.ask(messages=answered(case, '["AF123", 420.0]'), tools=TOOLS)
    assert result.calls() == [CALL_FF]


def test_a_result_that_does_not_fit_goes_to_a_repair_round(case: Case) -> None:
    case.script(
        code(f"convert_currency(amount_eur={FF}, to='USD')"),
        code("convert_currency(amount_eur=420.0, to='USD')"),
    )
    result = case.ask(messages=answered(case, "sold out"), tools=TOOLS)
    assert result.calls() == [("convert_currency", {"amount_eur": 420.0, "to": "USD"})]
    assert "amount_eur" in case.seen[1]["messages"][-1]["content"]


def test_code_that_calls_nothing_new_gets_a_repair_round(case: Case) -> None:
    case.script(code(f"flight = {FF}"), "Flight AF123 costs 420 EUR.")
    result = case.ask(messages=answered(case, '["AF123", 420.0]'), tools=TOOLS)
    assert result.content == "Flight AF123 costs 420 EUR."
    assert result.tool_calls == []
    assert "already answered" in case.seen[1]["messages"][-1]["content"]


def answered_twice(case: Case, content: str) -> list[Any]:
    """find_flight run twice by the client, with the same result both times."""
    first = answered(case, content)
    again = [dict(m) for m in first[1:]]
    again[0]["tool_calls"] = [{**again[0]["tool_calls"][0], "id": "call_ff2"}]
    again[1]["tool_call_id"] = "call_ff2"
    return first + again


def test_a_call_answered_twice_alike_is_a_loop_and_gets_a_repair_round(case: Case) -> None:
    """PydanticAI's loop on the real model: the model re-issued population(...) after each
    result instead of calling final_result; the repair round shows the result it already has."""
    case.script(code("# tool: find_flight", FF), code("book_flight(flight='AF123')"))
    result = case.ask(messages=answered_twice(case, '["AF123", 420.0]'), tools=TOOLS)
    assert result.calls() == [("book_flight", {"flight": "AF123"})]
    repair = case.seen[1]["messages"][-1]["content"]
    assert "already answered" in repair and '["AF123", 420.0]' in repair
    assert "2 times" in repair


def test_answers_before_the_latest_user_message_are_no_loop(case: Case) -> None:
    """BFCL's file system on the real model: ls() twice in one turn, then the user asked for a
    cd and a mv, and the ls() after them was refused as a loop ("the same call gives the same
    result again"), though the directory had changed."""
    case.script(code("# tool: find_flight", FF))
    messages = answered_twice(case, '["AF123", 420.0]')
    messages += [
        {"role": "assistant", "content": "AF123 costs 420 EUR."},
        case.user("Has the price changed?"),
    ]
    result = case.ask(messages=messages, tools=TOOLS)
    assert result.calls() == [CALL_FF]
    assert len(case.seen) == 1  # no repair round


def test_a_poll_whose_result_changed_is_no_loop(case: Case) -> None:
    case.script(code("# tool: find_flight", FF))
    messages = answered_twice(case, '["AF123", 420.0]')
    messages[-1] = {**messages[-1], "content": '["AF123", 380.0]'}  # the price moved
    result = case.ask(messages=messages, tools=TOOLS)
    assert result.calls() == [CALL_FF]
    assert len(case.seen) == 1


# --- /v1/responses and /v1/messages: their histories are read the same way --------------------

NEXT_TURN = code("# tool: find_flight, convert_currency", FF, USES["coder"])
USD_420 = [("convert_currency", {"amount_eur": 420.0, "to": "USD"})]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_history_results_are_used(
    upstream: FakeUpstream, client: openai.OpenAI, stream: bool
) -> None:
    case = Case(upstream, client, stream=stream)
    case.script(NEXT_TURN)
    request: dict[str, Any] = {
        "model": "coder",
        "input": [
            {"role": "user", "content": f"Flight to New York, in dollars [{case.key}]"},
            {
                "type": "function_call",
                "call_id": "call_ff1",
                "name": "find_flight",
                "arguments": json.dumps(CALL_FF[1]),
            },
            {"type": "function_call_output", "call_id": "call_ff1", "output": '["AF123", 420.0]'},
        ],
        "tools": [{"type": "function", **tool["function"]} for tool in TOOLS],
    }
    if stream:
        events = stream_responses(client, **request)
        output = events[-1].response.output
    else:
        output = client.responses.create(**request).output
    assert function_calls(output) == USD_420


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_messages_history_results_are_used(
    upstream: FakeUpstream, client: openai.OpenAI, proxy: Proxy, stream: bool
) -> None:
    case = Case(upstream, client, stream=stream)
    case.script(NEXT_TURN)
    body: dict[str, Any] = {
        "tools": [
            {"name": t["function"]["name"], "input_schema": t["function"]["parameters"]}
            for t in TOOLS
        ],
        "messages": [
            {"role": "user", "content": f"Flight to New York, in dollars [{case.key}]"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "find_flight",
                        "input": CALL_FF[1],
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": '["AF123", 420.0]'}
                ],
            },
        ],
    }
    if stream:
        message = assemble(stream_messages(proxy, **body))
    else:
        response = messages_post(proxy, **body)
        assert response.status_code == 200, response.text
        message = response.json()
    uses = [(b["name"], b["input"]) for b in message["content"] if b["type"] == "tool_use"]
    assert uses == USD_420
    assert message["stop_reason"] == "tool_use"
