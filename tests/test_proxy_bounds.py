"""Hostile schemas and answers through the real proxy, streaming and not: each ends with a clear
error or a correct answer, and a plain request sent while it runs is answered at once."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.conftest import Case, Result
from tests.fake_upstream import FakeUpstream, Scripted
from tests.test_bounds import EVIL, one
from tests.test_proxy import WEATHER, code

# The issue this guards against froze every other request for 30 s; the plain request takes
# milliseconds when nothing holds the event loop.
CONCURRENT_BOUND = 1.0


def plain_answer_time(upstream: FakeUpstream, client: openai.OpenAI) -> float:
    """Seconds a request to an alias without the plugin takes (no tools: native path)."""
    probe = Case(upstream, client, stream=False)
    probe.script("pong")
    start = time.monotonic()
    result = probe.ask(model="plain", messages=[probe.user("ping")])
    elapsed = time.monotonic() - start
    assert result.content == "pong"
    return elapsed


def while_running(
    hostile: Case, ask: Callable[[], Result], upstream: FakeUpstream, client: openai.OpenAI
) -> tuple[Result | BaseException, float]:
    """Run ``ask`` and, once the upstream has answered it, time a plain request beside it."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(ask)
        deadline = time.monotonic() + 30
        while not hostile.seen and time.monotonic() < deadline and not future.done():
            time.sleep(0.005)
        assert hostile.seen, "the hostile request never reached the upstream"
        elapsed = plain_answer_time(upstream, client)
        try:
            outcome: Result | BaseException = future.result(timeout=60)
        except BaseException as exc:  # the error is the outcome under test
            outcome = exc
    return outcome, elapsed


def test_a_runaway_pattern_does_not_hold_other_requests(
    case: Case, upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    hostile = code("t(s='" + "a" * 29 + "!')")
    case.script(hostile, hostile)  # the repair round gets the same answer
    tools = one({"s": {"type": "string", "pattern": EVIL}})
    outcome, elapsed = while_running(
        case, lambda: case.ask(messages=[case.user("x")], tools=tools), upstream, client
    )
    assert elapsed < CONCURRENT_BOUND
    assert isinstance(outcome, openai.APIError)
    assert EVIL in outcome.message and "took longer than" in outcome.message
    assert len(case.seen) == 2  # one repair round, then the error


def test_a_large_unique_array_is_read_off_the_loop(
    case: Case, upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    # ~100 KB of code: read on a worker thread. Its ast.parse and Pydantic steps are C code that
    # keeps the GIL (about 0.1 s here); far larger answers pause the loop that long
    # (docs/limits.md).
    items = [{"a": [i, {"b": i}]} for i in range(4_000)]
    case.script(Scripted(content=code(f"t(xs={items!r})"), chunk_size=8192))
    tools = one({"xs": {"type": "array", "uniqueItems": True, "items": {"type": "object"}}})
    outcome, elapsed = while_running(
        case, lambda: case.ask(messages=[case.user("x")], tools=tools), upstream, client
    )
    assert elapsed < CONCURRENT_BOUND
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.calls() == [("t", {"xs": items})]


def test_a_very_long_answer_is_read_off_the_loop(
    case: Case, upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    prose = "\n".join(f"get_weather is a tool; line {n} of a long preamble." for n in range(6_000))
    answer = prose + "\n\n" + code("get_weather(location='Oslo')")
    case.script(Scripted(content=answer, chunk_size=8192))
    outcome, elapsed = while_running(
        case, lambda: case.ask(messages=[case.user("x")], tools=[WEATHER]), upstream, client
    )
    assert elapsed < CONCURRENT_BOUND
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.calls() == [("get_weather", {"location": "Oslo"})]
    assert outcome.content == prose


def test_a_tool_list_that_multiplies_is_refused_without_holding_others(
    upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    from tests.test_bounds import nested_unions

    case = Case(upstream, client, stream=False)
    case.script("never used")

    def ask() -> Result:
        return case.ask(messages=[case.user("x")], tools=nested_unions(12))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(ask)
        elapsed = plain_answer_time(upstream, client)
        with pytest.raises(openai.BadRequestError) as info:
            future.result(timeout=60)
    assert elapsed < CONCURRENT_BOUND
    assert "type expressions" in info.value.message
    assert case.seen == []  # refused before the upstream


def test_all_tools_together_are_capped(case: Case) -> None:
    big: Any = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{n}",
                "description": "x" * 90_000,
                "parameters": {"type": "object", "properties": {}},
            },
        }
        for n in range(12)
    ]
    with pytest.raises(openai.BadRequestError) as info:
        case.ask(messages=[case.user("x")], tools=big)
    assert "max_tools_chars" in info.value.message
