"""Answered and repeated calls written with the client's own spellings (a tool named ``sum``
or ``math.factorial``, an argument named ``from``): the same rules as tests/test_results.py,
on the literal path and in a real kernel, which must agree."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from litellm_toolcode.answer import interpret
from litellm_toolcode.errors import ExecutionUnavailableError
from litellm_toolcode.results import Answered, known_results, resolve
from litellm_toolcode.sandbox import Limits
from litellm_toolcode.schema_code import build_toolset
from tests.sandbox_helpers import LoopThread, processes_mentioning
from tests.test_results import assistant, fenced, sent, tool

SUM = tool("sum", {"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"])
FACTORIAL = tool("math.factorial", {"n": {"type": "integer"}}, ["n"])
TRIP = tool("trip", {"from": {"type": "string"}, "km": {"type": "number"}}, ["from", "km"])
TOOLS = build_toolset([SUM, FACTORIAL, TRIP])

HISTORY = [
    {"role": "user", "content": "add"},
    assistant("call_0", "sum", {"a": 1, "b": 2}),
    {"role": "tool", "tool_call_id": "call_0", "content": "3"},
    assistant("call_1", "math.factorial", {"n": 4}),
    {"role": "tool", "tool_call_id": "call_1", "content": '{"value": 24}'},
]

Expected = list[tuple[str, dict[str, Any]]]
SUM_CALL = ("sum", {"a": 1, "b": 2})
# (id, code, history used, the calls that go out)
SPELLED: list[tuple[str, str, bool, Expected]] = [
    (
        "builtin-named-nested-repeat",
        "sum(a=1, b=2)\ntrip(**{'from': 'x'}, km=sum(a=1, b=2))",
        False,
        [SUM_CALL],
    ),
    ("builtin-named-bare-repeats-stay", "sum(a=1, b=2)\nsum(a=1, b=2)", False, [SUM_CALL] * 2),
    (
        "builtin-named-answered",
        "sum(a=1, b=2)\ntrip(**{'from': 'x'}, km=sum(a=1, b=2))",
        True,
        [("trip", {"from": "x", "km": 3})],
    ),
    (
        "dotted-answered-indexed",
        "trip(from_='y', km=math.factorial(n=4)['value'])",
        True,
        [("trip", {"from": "y", "km": 24})],
    ),
    ("bare-answered-goes-out", "math.factorial(n=4)", True, [("math.factorial", {"n": 4})]),
    ("builtin-named-bare-answered-goes-out", "sum(a=1, b=2)", True, [SUM_CALL]),
]


def test_the_builtin_itself_needs_the_kernel() -> None:
    """A call that does not fit the tool named `sum` is Python's sum: the kernel runs it."""
    with pytest.raises(ExecutionUnavailableError, match="built-in sum"):
        interpret(fenced("sum(a=1, b=2)\nx = sum([1, 2])"), TOOLS, answered_for(True))


def test_the_kernel_runs_the_builtin(sb: LoopThread) -> None:
    execution = sb.run("sum(a=1, b=2)\nx = sum([1, 2])\nsum(a=x, b=x)", TOOLS, {})
    assert [(TOOLS.spec(c.function).name, c.arguments) for c in execution.calls] == [
        ("sum", {"a": 1, "b": 2}),
        ("sum", {"a": 3, "b": 3}),
    ]


def answered_for(uses_history: bool) -> Answered:
    found = known_results(HISTORY, TOOLS, max_result_chars=20_000) if uses_history else ()
    return Answered.of(TOOLS, found)


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopThread]:
    directory: Path = tmp_path_factory.mktemp("sandbox-spelled")
    loop = LoopThread(Limits(pool_size=1, timeout=5, directory=str(directory)))
    yield loop
    loop.close()
    assert processes_mentioning(str(directory)) == []
    assert os.listdir(directory) == []


@pytest.mark.parametrize(
    ("code", "uses_history", "expected"), [r[1:] for r in SPELLED], ids=[r[0] for r in SPELLED]
)
def test_literal_path(code: str, uses_history: bool, expected: Expected) -> None:
    reply = interpret(fenced(code), TOOLS, answered_for(uses_history))
    assert sent(reply.tool_calls) == expected


@pytest.mark.parametrize(
    ("code", "uses_history", "expected"), [r[1:] for r in SPELLED], ids=[r[0] for r in SPELLED]
)
def test_the_kernel_agrees(
    sb: LoopThread, code: str, uses_history: bool, expected: Expected
) -> None:
    answered = answered_for(uses_history)
    execution = sb.run(code, TOOLS, answered.kernel_results)
    got = [
        (TOOLS.spec(call.function).name, json.loads(json.dumps(answered.validated(call))))
        for call in resolve(execution.calls, answered)
    ]
    assert got == expected
