"""LiteLLM's other endpoints on an enabled alias, in code mode (non-streaming; streaming is in
test_endpoints_stream.py): ``/v1/responses`` (``function_call`` items) and Anthropic-style
``/v1/messages`` (``tool_use`` blocks).

conftest's proxy bridges both to the upstream's ``/chat/completions`` (``use_chat_completions_api``
and ``use_chat_completions_url_for_anthropic_messages``), the setting a chat-only upstream
(llama.cpp, the fake upstream) needs; LiteLLM's hooks still see each endpoint's own shapes.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, Case, Proxy
from tests.fake_upstream import FakeUpstream, Scripted
from tests.test_proxy import WEATHER as PROXY_WEATHER
from tests.test_proxy import code

# The Responses API's function tool: the chat tool's fields, one level up.
WEATHER = {"type": "function", **PROXY_WEATHER["function"]}


@pytest.fixture
def rcase(upstream: FakeUpstream, client: openai.OpenAI) -> Case:
    return Case(upstream, client, stream=False)


def calls(response: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (item.name, json.loads(item.arguments))
        for item in response.output
        if item.type == "function_call"
    ]


def assert_code_mode(seen: dict[str, Any]) -> None:
    for field in ("tools", "tool_choice", "parallel_tool_calls"):
        assert field not in seen
    assert seen["messages"][0]["role"] == "system"
    assert "def get_weather(" in seen["messages"][0]["content"]


# --- /v1/responses ------------------------------------------------------------------------------


def test_responses_tool_calls(rcase: Case, client: openai.OpenAI) -> None:
    rcase.script(
        "Checking.\n"
        + code(
            "# tool: get_weather", "get_weather(location='Paris')", "get_weather('Oslo', 'celsius')"
        )
    )
    response = client.responses.create(
        model="coder",
        instructions="You are terse.",
        input=f"Weather in Paris and Oslo? [{rcase.key}]",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert calls(response) == [
        ("get_weather", {"location": "Paris"}),
        ("get_weather", {"location": "Oslo", "unit": "celsius"}),
    ]
    ids = [item.call_id for item in response.output if item.type == "function_call"]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)
    assert response.output_text == "Checking."
    (seen,) = rcase.seen
    assert_code_mode(seen)
    assert seen["messages"][0]["content"].startswith("You are terse.")
    assert seen["messages"][1] == {
        "role": "user",
        "content": f"Weather in Paris and Oslo? [{rcase.key}]",
    }


def test_responses_history_with_function_call_output(rcase: Case, client: openai.OpenAI) -> None:
    rcase.script("It is 18 degrees in Paris.")
    response = client.responses.create(
        model="coder",
        input=[
            {"role": "user", "content": f"Weather in Paris? [{rcase.key}]"},
            {
                "type": "function_call",
                "call_id": "call_abc",
                "name": "get_weather",
                "arguments": '{"location": "Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_abc", "output": '{"temp_c": 18}'},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert calls(response) == []
    assert response.output_text == "It is 18 degrees in Paris."
    (seen,) = rcase.seen
    assert_code_mode(seen)
    messages = seen["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert 'get_weather(location="Paris")' in messages[2]["content"]
    assert '{"temp_c": 18}' in messages[3]["content"]


def test_responses_tool_choice_by_name_and_a_repair_round(
    rcase: Case, client: openai.OpenAI
) -> None:
    rcase.script(
        code("# tool: get_weather", "get_weather(location='Rome', unit='kelvin')"),
        code("# tool: get_weather", "get_weather(location='Rome', unit='celsius')"),
    )
    response = client.responses.create(
        model="coder",
        input=f"Rome [{rcase.key}]",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert calls(response) == [("get_weather", {"location": "Rome", "unit": "celsius"})]
    first, repair = rcase.seen
    assert_code_mode(first)
    assert "unit" in repair["messages"][-1]["content"]  # the error was shown to the model
    assert response.usage is not None
    assert response.usage.input_tokens == 2 * 11  # both upstream calls are counted


def test_responses_model_error_is_a_500(rcase: Case, client: openai.OpenAI) -> None:
    rcase.script(code("# tool: get_stock", "get_stock(symbol='ACME')"))
    with pytest.raises(openai.InternalServerError) as info:
        client.responses.create(
            model="strict",
            input=f"ACME [{rcase.key}]",
            tools=[WEATHER],  # type: ignore[list-item]
        )
    assert "get_stock" in info.value.message


def test_responses_plain_answer_and_requests_without_tools(
    rcase: Case, client: openai.OpenAI
) -> None:
    rcase.script("Paris.", "Hello.")
    with_tools = client.responses.create(
        model="coder",
        input=f"Capital of France? [{rcase.key}]",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert with_tools.output_text == "Paris." and calls(with_tools) == []
    without = client.responses.create(model="coder", input=f"Hi [{rcase.key}]")
    assert without.output_text == "Hello."
    assert rcase.seen[1]["messages"] == [{"role": "user", "content": f"Hi [{rcase.key}]"}]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"tools": [WEATHER, {"type": "web_search"}]}, "web_search"),
        # plain LiteLLM answers these with a 500 from deep inside; the grammar merges into it
        ({"extra_body": "x"}, "extra_body must be a JSON object"),
        ({"extra_body": [1, 2]}, "not a list"),
    ],
    ids=["previous_response_id", "web_search", "extra-body-str", "extra-body-list"],
)
def test_responses_what_code_mode_refuses(
    rcase: Case, proxy: Proxy, extra: dict[str, Any], fragment: str
) -> None:
    body = {"model": "coder", "input": f"x [{rcase.key}]", "tools": [WEATHER], **extra}
    response = httpx.post(
        f"{proxy.url}/v1/responses",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json=body,
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]
    assert rcase.seen == []


def test_responses_disabled_alias_passes_tools_through(rcase: Case, client: openai.OpenAI) -> None:
    native = {
        "id": "call_n1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Lyon"}'},
    }
    rcase.script(Scripted(content=None, tool_calls=[native]))
    response = client.responses.create(
        model="plain",
        input=f"Lyon [{rcase.key}]",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert calls(response) == [("get_weather", {"location": "Lyon"})]
    (seen,) = rcase.seen
    assert seen["tools"][0]["function"]["name"] == "get_weather"  # native, as LiteLLM bridged it


# --- /v1/messages ------------------------------------------------------------------------------

ANTHROPIC_WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": WEATHER["parameters"],
}


def messages_request(proxy: Proxy, **body: Any) -> dict[str, Any]:
    """httpx arguments for a /v1/messages request (code-mode alias, the weather tool)."""
    return {
        "url": f"{proxy.url}/v1/messages",
        "headers": {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        "json": {"model": "coder", "max_tokens": 200, "tools": [ANTHROPIC_WEATHER], **body},
        "timeout": 30,
    }


def messages_post(proxy: Proxy, **body: Any) -> httpx.Response:
    return httpx.post(**messages_request(proxy, **body))


def assert_paris_and_oslo_tool_use(message: dict[str, Any]) -> None:
    """The Anthropic message for "Let me look." + get_weather for Paris and for Oslo."""
    assert message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "tool_use"]
    assert message["content"][0]["text"] == "Let me look."
    uses = message["content"][1:]
    assert [(b["name"], b["input"]) for b in uses] == [
        ("get_weather", {"location": "Paris"}),
        ("get_weather", {"location": "Oslo"}),
    ]
    assert all(b["id"].startswith("toolu_") for b in uses) and uses[0]["id"] != uses[1]["id"]


def test_messages_tool_use(rcase: Case, proxy: Proxy) -> None:
    rcase.script(
        "Let me look.\n"
        + code("# tool: get_weather", "get_weather(location='Paris')", "get_weather('Oslo')")
    )
    response = messages_post(
        proxy,
        system="You are terse.",
        messages=[{"role": "user", "content": f"Paris and Oslo? [{rcase.key}]"}],
    )
    assert response.status_code == 200, response.text
    assert_paris_and_oslo_tool_use(response.json())
    (seen,) = rcase.seen
    assert_code_mode(seen)
    assert seen["messages"][0]["content"].startswith("You are terse.")


def test_messages_history_with_tool_result(rcase: Case, proxy: Proxy) -> None:
    rcase.script("It is 18 degrees in Paris.")
    response = messages_post(
        proxy,
        messages=[
            {"role": "user", "content": f"Paris? [{rcase.key}]"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp_c": 18}'}
                ],
            },
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stop_reason"] == "end_turn"
    assert body["content"] == [{"type": "text", "text": "It is 18 degrees in Paris."}]
    (seen,) = rcase.seen
    assert_code_mode(seen)
    messages = seen["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert 'get_weather(location="Paris")' in messages[2]["content"]
    assert '{"temp_c": 18}' in messages[3]["content"]


def test_messages_model_error_in_anthropic_shape(rcase: Case, proxy: Proxy) -> None:
    rcase.script(code("# tool: get_stock", "get_stock(symbol='ACME')"))
    response = messages_post(
        proxy, model="strict", messages=[{"role": "user", "content": f"ACME [{rcase.key}]"}]
    )
    assert response.status_code == 500
    body = response.json()
    assert body["type"] == "error" and "get_stock" in body["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (
            {"tools": [ANTHROPIC_WEATHER, {"type": "web_search_20250305", "name": "web_search"}]},
            "web_search_20250305",
        ),
    ],
    ids=["server_tool"],
)
def test_messages_what_code_mode_refuses(
    rcase: Case, proxy: Proxy, extra: dict[str, Any], fragment: str
) -> None:
    response = messages_post(
        proxy, messages=[{"role": "user", "content": f"x [{rcase.key}]"}], **extra
    )
    assert response.status_code == 400, response.text
    assert fragment in response.text
    assert rcase.seen == []
