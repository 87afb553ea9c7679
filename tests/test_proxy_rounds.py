"""Repair rounds, tool_choice and parallel_tool_calls through the real proxy (both ways)."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import Case
from tests.fake_upstream import Scripted
from tests.test_proxy import TIME, WEATHER, code


def test_a_repair_round_fixes_an_unknown_tool(case: Case) -> None:
    case.script(
        Scripted(
            content=code("# tool: get_forecast", "get_forecast(city='Oslo')"),
            prompt_tokens=100,
            completion_tokens=10,
        ),
        Scripted(
            content=code("get_weather(location='Oslo')"), prompt_tokens=200, completion_tokens=20
        ),
    )
    kwargs = {"stream_options": {"include_usage": True}} if case.stream else {}
    result = case.ask(messages=[case.user("Oslo?")], tools=[WEATHER], **kwargs)
    assert result.calls() == [("get_weather", {"location": "Oslo"})]
    first, repair = case.seen
    assert "tools" not in repair
    assert repair["messages"][: len(first["messages"])] == first["messages"]
    assert repair["messages"][-2] == {
        "role": "assistant",
        "content": code("# tool: get_forecast", "get_forecast(city='Oslo')"),
    }
    assert "get_forecast" in repair["messages"][-1]["content"]
    assert "get_weather" in repair["messages"][-1]["content"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (300, 30)


def test_no_repair_round_when_disabled(case: Case) -> None:
    case.script(code("# tool: get_forecast", "get_forecast(city='Oslo')"))
    with pytest.raises(openai.APIError) as info:
        case.ask(model="strict", messages=[case.user("Oslo?")], tools=[WEATHER])
    assert "get_forecast" in info.value.message
    assert len(case.seen) == 1


def test_tool_choice_required_repairs_a_prose_answer(case: Case) -> None:
    case.script("It is probably sunny.", code("get_weather(location='Oslo')"))
    result = case.ask(messages=[case.user("Oslo?")], tools=[WEATHER], tool_choice="required")
    assert result.calls() == [("get_weather", {"location": "Oslo"})]
    assert "required" in case.seen[1]["messages"][-1]["content"]


def test_tool_choice_required_gives_an_error_when_rounds_run_out(case: Case) -> None:
    case.script("Sunny.", "Still sunny.")
    with pytest.raises(openai.APIError) as info:
        case.ask(messages=[case.user("Oslo?")], tools=[WEATHER], tool_choice="required")
    assert "required" in info.value.message


def test_named_tool_choice_is_enforced(case: Case) -> None:
    case.script(code("get_time(timezone='Europe/Oslo')"), code("get_weather(location='Oslo')"))
    result = case.ask(
        messages=[case.user("Oslo?")],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert result.calls() == [("get_weather", {"location": "Oslo"})]
    assert "'get_weather'" in case.seen[1]["messages"][-1]["content"]


def test_parallel_tool_calls_false_allows_one_call(case: Case) -> None:
    two = code("get_weather(location='A')", "get_weather(location='B')")
    case.script(two, code("get_weather(location='A')"))
    result = case.ask(messages=[case.user("A and B")], tools=[WEATHER], parallel_tool_calls=False)
    assert result.calls() == [("get_weather", {"location": "A"})]
    assert "exactly one call" in case.seen[1]["messages"][-1]["content"]


def test_parallel_tool_calls_false_never_drops_calls_silently(case: Case) -> None:
    two = code("get_weather(location='A')", "get_weather(location='B')")
    case.script(two, two)
    with pytest.raises(openai.APIError) as info:
        case.ask(messages=[case.user("A and B")], tools=[WEATHER], parallel_tool_calls=False)
    assert "parallel_tool_calls" in info.value.message


def test_tool_none_without_prose_gets_a_plain_answer(case: Case) -> None:
    case.script(code("# tool: none"), "Paris is the capital of France.")
    result = case.ask(messages=[case.user("Capital of France?")], tools=[WEATHER])
    assert result.finish_reason == "stop" and result.tool_calls == []
    assert result.content == "Paris is the capital of France."
    assert len(case.seen) == 2


def test_tool_none_with_prose_needs_no_second_round(case: Case) -> None:
    case.script(code("# tool: none") + "\n\nParis is the capital of France.")
    result = case.ask(messages=[case.user("Capital of France?")], tools=[WEATHER])
    assert result.content == "Paris is the capital of France."
    assert len(case.seen) == 1
