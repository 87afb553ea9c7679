"""Repair rounds, tool_choice and parallel_tool_calls through the real proxy (both ways)."""

from __future__ import annotations

from typing import Any

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
    assert "answer the user's last message" in case.seen[1]["messages"][-1]["content"]


def test_tool_none_after_results_asks_for_an_answer_from_them(case: Case) -> None:
    # "answer the user's last message" after a tool result made the local 1.5B model answer
    # "I'm sorry, but I can't assist with that." (bench/results/multiturn-patterns-2026-12-02.md)
    case.script(code("# tool: none"), "It is sunny in Oslo.")
    messages = [
        case.user("Oslo?"),
        assistant_calls(("c1", "get_weather", '{"location": "Oslo"}')),
        {"role": "tool", "tool_call_id": "c1", "content": '{"sky": "sunny"}'},
    ]
    result = case.ask(messages=messages, tools=[WEATHER])
    assert result.content == "It is sunny in Oslo." and result.tool_calls == []
    first, plain = case.seen
    assert 'Result of `get_weather(location="Oslo")`' in first["messages"][-1]["content"]
    request = plain["messages"][-1]["content"]
    assert "function results above" in request and "last message" not in request


def test_tool_none_with_prose_needs_no_second_round(case: Case) -> None:
    case.script(code("# tool: none") + "\n\nParis is the capital of France.")
    result = case.ask(messages=[case.user("Capital of France?")], tools=[WEATHER])
    assert result.content == "Paris is the capital of France."
    assert len(case.seen) == 1


# --- a whole conversation ----------------------------------------------------------------------


def assistant_calls(*calls: tuple[str, str, str]) -> dict[str, object]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in calls
        ],
    }


def test_four_step_agent_loop(case: Case) -> None:
    """call, result, call, result, final answer: each step is a real client turn."""
    case.script(
        code("# tool: get_weather", "get_weather(location='Oslo')"),
        code("# tool: get_time", "get_time(timezone='Europe/Oslo')"),
        "It is 14:05 in Oslo and 3 degrees.",
    )
    messages: list[dict[str, object]] = [case.user("Weather and time in Oslo?")]
    tools = [WEATHER, TIME]
    results = {"get_weather": '{"temp_c": 3}', "get_time": '"14:05"'}
    for _step in range(2):
        result = case.ask(messages=messages, tools=tools)
        assert result.finish_reason == "tool_calls" and len(result.tool_calls) == 1
        call = result.tool_calls[0]
        messages.append(assistant_calls((call["id"], call["name"], call["arguments"])))
        messages.append(
            {"role": "tool", "tool_call_id": call["id"], "content": results[call["name"]]}
        )
    final = case.ask(messages=messages, tools=tools)
    assert final.finish_reason == "stop"
    assert final.content == "It is 14:05 in Oslo and 3 degrees."
    seen = case.seen[-1]["messages"]
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert 'get_weather(location="Oslo")' in seen[2]["content"]
    assert '{"temp_c": 3}' in seen[3]["content"]
    assert 'get_time(timezone="Europe/Oslo")' in seen[4]["content"]
    assert '"14:05"' in seen[5]["content"]
    assert all(isinstance(m["content"], str) and m["content"] for m in seen)


def test_parallel_results_and_tool_errors_are_tied_to_their_calls(case: Case) -> None:
    case.script("Paris is sunny; the Rome lookup failed.")
    result = case.ask(
        messages=[
            case.user("Paris and Rome?"),
            assistant_calls(
                ("call_p", "get_weather", '{"location": "Paris"}'),
                ("call_r", "get_weather", '{"location": "Rome"}'),
            ),
            {"role": "tool", "tool_call_id": "call_r", "content": "Error: service unavailable"},
            {"role": "tool", "tool_call_id": "call_p", "content": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert result.content == "Paris is sunny; the Rome lookup failed."
    seen = case.seen[-1]["messages"]
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "user"]
    results = seen[3]["content"]
    rome, paris = results.index('"Rome"'), results.index('"Paris"')
    assert rome < results.index("Error: service unavailable") < paris < results.index("sunny")


def test_code_using_a_result_returns_the_calls_before_it(case: Case) -> None:
    case.script(
        code(
            "# tool: get_weather",
            "w = get_weather(location='Oslo')",
            "if w['temp_c'] > 20:",
            "    get_time(timezone='Europe/Oslo')",
        )
    )
    result = case.ask(messages=[case.user("If warm, the time")], tools=[WEATHER, TIME])
    assert result.calls() == [("get_weather", {"location": "Oslo"})]
    assert result.finish_reason == "tool_calls"
    assert len(case.seen) == 1


@pytest.mark.parametrize(
    "answer",
    [
        "<think>I could call get_weather(location='X')",  # never closed
        "get_weather(location='X') might work.</think>I cannot tell without a city.",  # prefilled
    ],
    ids=["unclosed", "prefilled-open"],
)
def test_thoughts_are_never_read_as_calls(case: Case, answer: str) -> None:
    case.script(answer, "Which city?")
    result = case.ask(messages=[case.user("Weather?")], tools=[WEATHER])
    assert result.tool_calls == []
    assert result.finish_reason == "stop"
    assert "get_weather" not in (result.content or "")


# `think_prefilled`: the chat template opened <think> before the model wrote (QwQ, DeepSeek-R1
# behind a server without a reasoning parser); the answer starts inside the thought.
PREFILLED = [
    (  # the thought mentions a call; only the block after </think> is read
        "Oslo, so get_weather(location='Bergen')? No.\n</think>\n\n"
        + code("# tool: get_weather", "get_weather(location='Oslo')"),
        "Oslo, so get_weather(location='Bergen')? No.",
        None,
        [("get_weather", {"location": "Oslo"})],
    ),
    (
        "No tool is needed.</think>Paris is the capital.",
        "No tool is needed.",
        "Paris is the capital.",
        [],
    ),
    (  # the model opened the block itself anyway: no empty thought in front
        "\n<think>Just answer.</think>Hello.",
        "Just answer.",
        "Hello.",
        [],
    ),
]


@pytest.mark.parametrize(
    ("answer", "thought", "content", "calls"), PREFILLED, ids=["call", "prose", "own-tag"]
)
def test_prefilled_thought_is_reasoning_never_content(
    case: Case, answer: str, thought: str, content: str | None, calls: list[Any]
) -> None:
    case.script(answer)
    result = case.ask(model="thinker", messages=[case.user("Weather?")], tools=[WEATHER])
    assert result.reasoning_content == thought
    assert (result.content or None) == content
    assert result.calls() == calls


def test_prefilled_thought_in_a_repair_round_is_reasoning_too(case: Case) -> None:
    case.script(
        "Use a tool.</think>" + code("# tool: get_wether", "get_wether(location='Oslo')"),
        "The name was wrong.</think>" + code("get_weather(location='Oslo')"),
    )
    result = case.ask(model="thinker", messages=[case.user("Oslo?")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Oslo"})]
    # the round that was used; a stream already sent the first round's thought (it stays)
    first = "Use a tool.\n\n" if case.stream else ""
    assert result.reasoning_content == first + "The name was wrong."
    assert not result.content
    assert "<think>" not in case.seen[1]
