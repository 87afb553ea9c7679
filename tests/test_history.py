from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from litellm_toolcode.errors import RequestError
from litellm_toolcode.history import rewrite_messages, text_of


def render(name: str, arguments: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_leading_system_messages_become_client_system() -> None:
    history = rewrite_messages(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "hi"},
        ],
        render,
        max_result_chars=100,
    )
    assert history.client_system == "Be brief.\n\nUse metric units."
    assert history.messages == ({"role": "user", "content": "hi"},)


def test_calls_and_parallel_results() -> None:
    history = rewrite_messages(
        [
            {"role": "user", "content": "Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    call("c1", "get_weather", '{"city": "Paris"}'),
                    call("c2", "get_weather", '{"city": "Rome"}'),
                ],
            },
            {"role": "tool", "tool_call_id": "c2", "content": "rainy"},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "sunny"}]},
            {"role": "user", "content": "thanks"},
        ],
        render,
        max_result_chars=100,
    )
    roles = [m["role"] for m in history.messages]
    assert roles == ["user", "assistant", "user", "user"]
    assistant = history.messages[1]["content"]
    assert assistant.startswith("Checking both.")
    assert "# tool: get_weather\nget_weather(city='Paris')\nget_weather(city='Rome')" in assistant
    results = history.messages[2]["content"]
    assert results.index("get_weather(city='Rome')") < results.index("rainy")
    assert results.index("get_weather(city='Paris')") < results.index("sunny")


def test_long_results_are_cut_with_a_marker() -> None:
    history = rewrite_messages(
        [
            {"role": "assistant", "content": None, "tool_calls": [call("c1", "f", "{}")]},
            {"role": "tool", "tool_call_id": "c1", "content": "x" * 1000},
        ],
        render,
        max_result_chars=100,
    )
    text = history.messages[1]["content"]
    assert "x" * 100 in text and "x" * 101 not in text
    assert "900 more characters cut" in text


@pytest.mark.parametrize("tool_call_id", ["nope", None])
def test_result_without_a_call_is_a_request_error(tool_call_id: str | None) -> None:
    with pytest.raises(RequestError) as info:
        rewrite_messages(
            [{"role": "tool", "tool_call_id": tool_call_id, "content": "1"}],
            render,
            max_result_chars=100,
        )
    assert "messages[0]" in info.value.message


@pytest.mark.parametrize(
    ("content", "text"),
    [(None, ""), ("a", "a"), ([{"type": "text", "text": "a"}, {"type": "image_url"}], "a")],
)
def test_text_of(content: Any, text: str) -> None:
    assert text_of(content) == text


_ASKED = {"role": "user", "content": "Paris?"}
_CALLED = {"role": "assistant", "content": None, "tool_calls": [call("c1", "get_weather", "{}")]}
_RESULT = {"role": "tool", "tool_call_id": "c1", "content": "sunny"}


@pytest.mark.parametrize(
    ("messages", "ends_with_results"),
    [
        ([_ASKED], False),
        ([_ASKED, _CALLED, _RESULT], True),
        ([_ASKED, _CALLED, _RESULT, {"role": "assistant", "content": "Sunny."}], False),
        ([_ASKED, _CALLED, _RESULT, {"role": "user", "content": "And Rome?"}], False),
        ([{"role": "system", "content": "Be brief."}, _ASKED, _CALLED, _RESULT], True),
    ],
)
def test_whether_the_history_ends_with_results(
    messages: list[dict[str, Any]], ends_with_results: bool
) -> None:
    # the plain-answer round asks for an answer from the results then (plain_answer.j2)
    history = rewrite_messages(messages, render, max_result_chars=100)
    assert history.ends_with_results is ends_with_results
