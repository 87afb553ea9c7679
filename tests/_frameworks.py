"""What test_frameworks.py (scripted upstream) and test_frameworks_real.py (real model) share."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, field_validator


def ask(llm: Any, messages: Any, stream: bool) -> Any:
    """A LangChain chat model's answer, by ``invoke`` or by summing the ``stream`` chunks."""
    if not stream:
        return llm.invoke(messages)
    message = None
    for chunk in llm.stream(messages):
        message = chunk if message is None else message + chunk
    assert message is not None, "the stream sent no chunk"
    return message


# Instructor's response model. No docstring: Instructor would send it as the tool's description.
# The validator makes a name not in upper case fail, so that Instructor re-asks.
class UserInfo(BaseModel):
    name: str
    age: int

    @field_validator("name")
    @classmethod
    def name_is_upper_case(cls, value: str) -> str:
        if value != value.upper():
            raise ValueError("name must be in upper case, e.g. 'JASON'")
        return value


# --- the two-step weather flow on the other endpoints ------------------------------------------
# One tool, one question: the client runs the tool the model calls, sends its result back, and
# gets a final answer. Returns (the cities the tool ran for, the final answer's text).

WEATHER_RESULT = {"temperature": 17, "unit": "celsius"}


def agents_sdk_weather(
    base_url: str,
    api_key: str,
    model: str,
    prompt: str,
    stream: bool,
    chat_completions: bool = False,
) -> tuple[list[str], str]:
    """The OpenAI Agents SDK with its default model class, ``OpenAIResponsesModel``
    (``/v1/responses``), or with ``chat_completions`` its ``OpenAIChatCompletionsModel``
    (``/v1/chat/completions``): ``Runner.run_sync``, or ``Runner.run_streamed`` read to the
    end."""
    import asyncio

    from agents import (
        Agent,
        Model,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIProvider,
        OpenAIResponsesModel,
        RunConfig,
        Runner,
        function_tool,
    )
    from openai import AsyncOpenAI

    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current temperature in a city."""
        ran.append(city)
        return json.dumps({"city": city, **WEATHER_RESULT})

    client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=300)
    provider = OpenAIProvider(openai_client=client)
    assert isinstance(provider.get_model(model), OpenAIResponsesModel)  # the SDK's default
    chosen: str | Model = model
    if chat_completions:
        chosen = OpenAIChatCompletionsModel(model=model, openai_client=client)
    agent = Agent(
        name="weather",
        instructions="Answer with the tools.",
        tools=[get_weather],
        model_settings=ModelSettings(temperature=0),
    )
    config = RunConfig(model=chosen, model_provider=provider, tracing_disabled=True)

    async def streamed() -> Any:
        result = Runner.run_streamed(agent, prompt, run_config=config, max_turns=4)
        async for _ in result.stream_events():
            pass
        return result.final_output

    if stream:
        output = asyncio.run(streamed())
    else:
        output = Runner.run_sync(agent, prompt, run_config=config, max_turns=4).final_output
    return ran, str(output)


ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current temperature in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
        "required": ["city"],
    },
}


def messages_weather(
    base_url: str, api_key: str, model: str, prompt: str, stream: bool
) -> tuple[list[str], str]:
    """An Anthropic-style client on ``/v1/messages`` (httpx; the anthropic SDK is not
    installed): ``tool_use`` blocks answered with ``tool_result`` blocks."""
    import httpx

    from tests.test_endpoints_stream import assemble, sse_frames

    def post(messages: list[dict[str, Any]]) -> dict[str, Any]:
        request = {
            "url": f"{base_url}/messages",
            "headers": {"x-api-key": api_key, "anthropic-version": "2023-06-01"},
            "json": {
                "model": model,
                "max_tokens": 400,
                "temperature": 0,
                "tools": [ANTHROPIC_WEATHER_TOOL],
                "messages": messages,
                **({"stream": True} if stream else {}),
            },
            "timeout": 300,
        }
        if not stream:
            response = httpx.post(**request)  # type: ignore[arg-type]
            assert response.status_code == 200, response.text
            return dict(response.json())
        with httpx.stream("POST", **request) as events:  # type: ignore[arg-type]
            assert events.status_code == 200, events.read()
            return assemble(sse_frames(events.read().decode()))

    ran: list[str] = []
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    first = post(messages)
    assert first["stop_reason"] == "tool_use", first
    uses = [block for block in first["content"] if block["type"] == "tool_use"]
    results = []
    for use in uses:
        assert use["name"] == "get_weather"
        ran.append(use["input"]["city"])
        result = json.dumps({"city": use["input"]["city"], **WEATHER_RESULT})
        results.append({"type": "tool_result", "tool_use_id": use["id"], "content": result})
    messages += [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": results},
    ]
    final = post(messages)
    assert final["stop_reason"] == "end_turn", final
    return ran, "".join(b["text"] for b in final["content"] if b["type"] == "text")
