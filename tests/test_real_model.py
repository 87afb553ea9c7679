"""End to end with the real local model: the real LiteLLM proxy on the shipped ``config.yaml``,
in front of a real llama.cpp server running Qwen2.5-Coder-1.5B-Instruct (``scripts/serve.py``
builds and fetches it on first use), as ``make run`` serves it. Excluded from the default run;
``make test-real`` runs them.

Each case runs non-streaming and streaming (the ``real`` fixture). Temperature 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from scripts import serve
from tests.conftest import MASTER_KEY, Case, Proxy, Result, free_port, start_proxy, stop_proxy
from tests.test_proxy import TIME, WEATHER, tool
from tests.test_shipped_config import SHIPPED, send

pytestmark = [pytest.mark.real_model, pytest.mark.timeout(600)]

KEY = MASTER_KEY  # what test_shipped_config.send authenticates with
STOCK = tool(
    "get_stock_price",
    "Get the latest stock price for a ticker symbol",
    {"ticker": {"type": "string", "description": "The ticker symbol, e.g. AAPL"}},
    ["ticker"],
)


@pytest.fixture(scope="session")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = serve.prepare()  # builds llama-cpp-python and fetches the model if needed
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    process = serve.start_llama_server(model, port, log)
    yield f"http://127.0.0.1:{port}/v1"
    serve.stop(process)


@pytest.fixture(scope="session")
def real_proxy(llama_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    env = {  # as scripts/serve.py sets them for make run
        "TOOLCODE_UPSTREAM_MODEL": f"openai/{serve.MODEL_ALIAS}",
        "TOOLCODE_UPSTREAM_KEY": "none",
        "LITELLM_MASTER_KEY": KEY,
    }
    serve.point_at_local_model(env, llama_url)
    running = start_proxy(SHIPPED.read_text(), tmp_path_factory.mktemp("real-proxy"), env=env)
    yield running
    stop_proxy(running)


@pytest.fixture(params=[False, True], ids=["json", "stream"])
def real(request: pytest.FixtureRequest, real_proxy: Proxy) -> Case:
    client = openai.OpenAI(base_url=f"{real_proxy.url}/v1", api_key=KEY, max_retries=0, timeout=300)
    return Case(upstream=None, client=client, stream=request.param)  # type: ignore[arg-type]


def ask(real: Case, messages: list[dict[str, Any]], **kwargs: Any) -> Result:
    return real.ask(messages=messages, model="coder", temperature=0, max_tokens=400, **kwargs)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_seed_get_weather(real: Case) -> None:
    result = ask(real, [user("What's the weather like in London?")], tools=[WEATHER])
    assert result.finish_reason == "tool_calls"
    assert len(result.calls()) == 1
    name, arguments = result.calls()[0]
    assert name == "get_weather"
    assert "london" in arguments["location"].lower()
    assert result.tool_calls[0]["id"].startswith("call_")


def test_picks_the_right_one_of_two_tools(real: Case) -> None:
    result = ask(real, [user("What time is it in Tokyo right now?")], tools=[WEATHER, TIME])
    assert result.finish_reason == "tool_calls"
    [(name, arguments)] = result.calls()
    assert name == "get_time"
    assert "tokyo" in arguments["timezone"].lower()


def test_parallel_pair(real: Case) -> None:
    result = ask(
        real,
        [user("What's the weather in Paris and in Berlin? Check both cities.")],
        tools=[WEATHER],
    )
    assert result.finish_reason == "tool_calls"
    calls = result.calls()
    assert [name for name, _ in calls] == ["get_weather", "get_weather"]
    cities = sorted(arguments["location"].split(",")[0].lower() for _, arguments in calls)
    assert cities == ["berlin", "paris"]
    assert len({c["id"] for c in result.tool_calls}) == 2


def test_no_tool_question_answered_in_prose(real: Case) -> None:
    result = ask(
        real,
        [user("Explain in one sentence what a Python list comprehension is.")],
        tools=[WEATHER, STOCK],
    )
    assert result.finish_reason == "stop"
    assert result.tool_calls == []
    assert result.content and "comprehension" in result.content.lower()
    assert "get_weather(" not in result.content and "# tool:" not in result.content


def test_two_step_conversation(real: Case) -> None:
    messages = [user("What's the weather in Madrid?")]
    first = ask(real, messages, tools=[WEATHER])
    assert first.finish_reason == "tool_calls"
    [(name, arguments)] = first.calls()
    assert name == "get_weather" and "madrid" in arguments["location"].lower()
    call = first.tool_calls[0]
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": json.dumps({"temperature_celsius": 31, "condition": "sunny"}),
        },
    ]
    second = ask(real, messages, tools=[WEATHER])
    assert second.finish_reason == "stop"
    assert second.tool_calls == []
    assert second.content and "31" in second.content


def test_model_file_is_the_verified_one() -> None:
    path = serve.model_path()
    assert serve.model_ready(path), f"{path} missing or unverified"
    assert Path(path).stat().st_size == serve.MODEL_SIZE


@pytest.mark.parametrize("endpoint", ["chat", "responses", "messages"])
def test_get_weather_on_every_endpoint(endpoint: str, real: Case, real_proxy: Proxy) -> None:
    """The README's example question on chat completions, /v1/responses and /v1/messages."""
    answer = send(
        endpoint,
        real.stream,
        real_proxy,
        real.client,
        "coder",
        "What's the weather like in London?",
        temperature=0,
    )
    assert answer.tool_stop
    [(name, arguments)] = answer.calls
    assert name == "get_weather"
    assert "london" in arguments["location"].lower()
