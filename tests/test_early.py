"""Calls read before the answer ends (early.py): when they may go out, and which.

For every answer in the table, fed in several chunkings through a real StreamAssembler: the
calls released before the end, and how much of the answer had arrived when each went out. What
was released is always a prefix of the whole answer's reading (``interpret``), checked again by
``remaining``.
"""

from __future__ import annotations

import json
import random

import pytest

from litellm_toolcode.answer import Choice, ToolCall, interpret
from litellm_toolcode.early import EarlyCalls, early_calls_allowed, remaining
from litellm_toolcode.errors import ModelOutputError
from litellm_toolcode.stream import StreamAssembler
from tests.test_stream import NAMES, TOOLSET, fence


@pytest.mark.parametrize(
    ("settings", "allowed"),
    [
        ({"max_repair_rounds": 0}, True),
        ({"max_repair_rounds": 1}, False),
        # a grammar cannot make required arguments or bounds hold: rounds can still follow
        ({"max_repair_rounds": 1, "grammar": "gbnf"}, False),
        ({"max_repair_rounds": 0, "grammar": "gbnf"}, True),
        ({"max_repair_rounds": 1, "grammar": "none"}, False),
        ({"max_repair_rounds": 0, "grammar": "none"}, True),
        ({}, False),
    ],
)
def test_early_calls_allowed_only_when_no_repair_round_can_follow(
    settings: dict[str, object], allowed: bool
) -> None:
    assert early_calls_allowed(settings) is allowed


ROME = "get_weather(location='Rome')"
OSLO = "get_weather(location='Oslo')"
UTC = "get_time(timezone='UTC')"

# (answer, choice, [(call, the answer's text that must have arrived when it went out)])
TABLE: list[tuple[str, Choice, list[tuple[str, str]]]] = [
    (
        "Checking.\n" + fence("# tool: get_weather", ROME, OSLO, UTC) + "\nDone.",
        Choice(),
        [(ROME, ROME + "\n"), (OSLO, OSLO + "\n"), (UTC, UTC + "\n")],
    ),
    # A call over several lines goes out once its last line is complete.
    (
        fence("get_weather(", "    location='Rome',", ")", UTC),
        Choice(),
        [(ROME, "\n)\n"), (UTC, UTC + "\n")],
    ),
    # Unfenced calls: tool code only while no fenced block holds any, known at the end only.
    ("Checking.\n" + ROME + "\n" + UTC, Choice(), []),
    # A snippet for the user is no tool code.
    (fence("def add(a, b):", "    return a + b"), Choice(), []),
    (fence("# tool: none", "print('hi')"), Choice(), []),
    # Code for the sandbox stops early reading: the end reads it all.
    (fence(ROME, "for c in ['A', 'B']:", "    get_weather(location=c)"), Choice(), [(ROME, "")]),
    # A bad call: the ones before it went out, the end reports the error.
    (fence(ROME, "get_stock(symbol='X')", UTC), Choice(), [(ROME, "")]),
    (fence(ROME, "get_weather(place='Oslo')"), Choice(), [(ROME, "")]),
    # tool_choice: only calls that keep it satisfied go out.
    (fence(ROME, OSLO), Choice(parallel=False), [(ROME, "")]),
    (fence(UTC, ROME), Choice(mode="function", function="get_weather"), []),
    (fence(ROME, UTC), Choice(mode="function", function="get_weather"), [(ROME, "")]),
    (fence(ROME, UTC), Choice(mode="required"), [(ROME, ""), (UTC, "")]),
    # The result of a call used by the next: the calls before that point, as the end reads it.
    (fence("w = " + ROME, "get_time(timezone=w['zone'])"), Choice(), [(ROME, "")]),
    # Several fenced blocks: their calls in order, the second block's after the first's.
    (fence(ROME) + "\nAnd:\n" + fence(UTC), Choice(), [(ROME, ""), (UTC, "")]),
]


def _args(call: str) -> str:
    reply = interpret(fence(call), TOOLSET)
    return reply.tool_calls[0].arguments


def _chunkings(text: str) -> list[list[str]]:
    rng = random.Random(text)
    cuts = [[text], [text[i : i + 4] for i in range(0, len(text), 4)], list(text)]
    for _ in range(3):
        points = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, 8)))
        cuts.append([text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)])
    return cuts


@pytest.mark.parametrize(("answer", "choice", "expected"), TABLE, ids=[t[0][:40] for t in TABLE])
def test_calls_go_out_as_soon_as_their_line_is_read(
    answer: str, choice: Choice, expected: list[tuple[str, str]]
) -> None:
    hold_all = choice.mode in ("required", "function")
    for chunks in _chunkings(answer):
        assembler = StreamAssembler(NAMES, hold_all=hold_all)
        early = EarlyCalls(TOOLSET, choice)
        released: list[tuple[ToolCall, str]] = []
        received = ""
        for chunk in chunks:
            received += chunk
            assembler.feed(chunk)
            release = early.feed(assembler)
            if release is not None:
                assert release.position == len(released)
                released += [(call, received) for call in release.calls]
        assert [(c.name, c.arguments) for c, _ in released] == [
            (call.split("(")[0], _args(call)) for call, _ in expected
        ]
        for (_, arrived), (_, must_have) in zip(released, expected, strict=True):
            assert must_have in arrived  # never before its line was complete
        assert early.sent == tuple(c for c, _ in released)


def test_a_call_goes_out_before_the_answer_ends() -> None:
    assembler = StreamAssembler(NAMES)
    early = EarlyCalls(TOOLSET, Choice())
    assembler.feed("```python\n" + ROME + "\n")
    release = early.feed(assembler)
    assert release is not None and [c.name for c in release.calls] == ["get_weather"]
    assert json.loads(release.calls[0].arguments) == {"location": "Rome"}
    assert early.feed(assembler) is None  # nothing new: nothing twice


def test_remaining_is_what_the_final_reading_adds_to_the_calls_sent() -> None:
    whole = interpret(fence(ROME, UTC), TOOLSET).tool_calls
    sent = interpret(fence(ROME), TOOLSET).tool_calls  # another id, the same call
    assert remaining(whole, sent) == whole[1:]
    assert remaining(whole, ()) == whole
    with pytest.raises(ModelOutputError):
        remaining(whole, interpret(fence(OSLO), TOOLSET).tool_calls)
    with pytest.raises(ModelOutputError):
        remaining(whole[:1], whole)
