"""The framework tests of test_frameworks.py against a real model (opt-in).

Run with ``.venv/bin/pytest -m real_model tests/test_frameworks_real.py`` while a proxy with the
plugin serves a real model: by default ``make run`` on http://127.0.0.1:4000 (alias ``coder``).
Override with ``TOOLCODE_REAL_URL`` (the OpenAI base URL, ``.../v1``), ``TOOLCODE_REAL_MODEL``
(the alias) and ``TOOLCODE_REAL_KEY`` (the proxy's key; by default the one ``make run`` keeps in
``.data/master_key``). When nothing answers there, every test here is skipped.

A small model is not a script: these tests assert what must hold for any competent answer (the
right tool ran with the right arguments; the final answer uses the tool's result), at
temperature 0, and give the model a second chance through the plugin's repair rounds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field
from pydantic_ai import RunContext

from tests._frameworks import UserInfo, agents_sdk_weather, ask, messages_weather

pytestmark = pytest.mark.real_model


def _key() -> str:
    """``TOOLCODE_REAL_KEY``, else the key ``make run`` uses (scripts/serve.py ``master_key``)."""
    for variable in ("TOOLCODE_REAL_KEY", "LITELLM_MASTER_KEY"):
        if os.environ.get(variable):
            return os.environ[variable]
    kept = Path(__file__).resolve().parent.parent / ".data" / "master_key"
    return kept.read_text().strip() if kept.is_file() else "sk-none"


REAL_URL = os.environ.get("TOOLCODE_REAL_URL", "http://127.0.0.1:4000/v1")
REAL_MODEL = os.environ.get("TOOLCODE_REAL_MODEL", "coder")
REAL_KEY = _key()


@pytest.fixture(scope="module")
def real() -> str:
    """The base URL of a running proxy serving REAL_MODEL, or skip."""
    try:
        response = httpx.get(
            f"{REAL_URL}/models", headers={"Authorization": f"Bearer {REAL_KEY}"}, timeout=3
        )
    except httpx.HTTPError as exc:
        pytest.skip(f"no real model proxy at {REAL_URL}: {exc}")
    if response.status_code != 200:
        pytest.skip(f"proxy at {REAL_URL} answered {response.status_code} to /models")
    ids = [m.get("id") for m in response.json().get("data", [])]
    if REAL_MODEL not in ids:
        pytest.skip(f"proxy at {REAL_URL} has no alias {REAL_MODEL!r} (has {ids})")
    return REAL_URL


def chat_openai(base_url: str, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=REAL_MODEL,
        base_url=base_url,
        api_key=REAL_KEY,
        temperature=0,
        max_retries=0,
        timeout=300,
        **kwargs,
    )


# --- LangChain --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langchain_tool_function(real: str, stream: bool) -> None:
    from langchain_core.messages import BaseMessage, HumanMessage
    from langchain_core.tools import tool

    ran: list[str] = []

    @tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
        """Get the current temperature in a city."""
        ran.append(city)
        return json.dumps({"city": city, "temperature": 17, "unit": unit})

    llm = chat_openai(real).bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage("What is the temperature in Paris right now?")]
    first = ask(llm, messages, stream)
    assert [c["name"] for c in first.tool_calls] == ["get_weather"]
    messages.append(first)
    for call in first.tool_calls:
        messages.append(get_weather.invoke(call))
    assert [city.lower() for city in ran] == ["paris"]
    final = ask(llm, messages, stream)
    assert not final.tool_calls
    assert "17" in final.content


class GetWeather(BaseModel):
    """Get the current temperature in a city."""

    city: str = Field(description="The city, e.g. Paris")


def test_langchain_pydantic_class(real: str) -> None:
    from langchain_core.output_parsers.openai_tools import PydanticToolsParser

    llm = chat_openai(real).bind_tools([GetWeather])
    message = llm.invoke("What is the weather in Berlin?")
    parsed = PydanticToolsParser(tools=[GetWeather]).invoke(message)
    assert [p.city.lower() for p in parsed] == ["berlin"]


# --- LangGraph --------------------------------------------------------------------------------


def test_langgraph_react_agent_two_tools(real: str) -> None:
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    ran: list[str] = []

    @tool
    def find_flight(origin: str, destination: str) -> dict[str, Any]:
        """Find the cheapest flight between two cities; returns its number and price in EUR."""
        ran.append("find_flight")
        return {"flight": "AF1234", "price_eur": 420}

    @tool
    def convert_currency(amount_eur: float, to_currency: str) -> float:
        """Convert an amount in EUR into another currency, e.g. USD."""
        ran.append("convert_currency")
        return round(amount_eur * 1.5, 2)

    agent = create_react_agent(chat_openai(real), [find_flight, convert_currency])
    result = agent.invoke(
        {
            "messages": [
                (
                    "user",
                    "Find the cheapest flight from Paris to Tokyo, then convert its price "
                    "into USD with the tool. Tell me the flight number and the USD price.",
                )
            ]
        },
        {"recursion_limit": 10},
    )
    assert ran[:2] == ["find_flight", "convert_currency"]
    final = result["messages"][-1]
    assert not final.tool_calls
    assert "AF1234" in final.content and "630" in final.content


# --- PydanticAI -------------------------------------------------------------------------------


class CityFacts(BaseModel):
    city: str
    population_millions: float


def test_pydantic_ai_typed_tool_and_output_type(real: str) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.usage import UsageLimits

    model = OpenAIChatModel(REAL_MODEL, provider=OpenAIProvider(base_url=real, api_key=REAL_KEY))
    agent = Agent(model, output_type=CityFacts, deps_type=str, retries=2)
    ran: list[str] = []

    @agent.tool
    def population(ctx: RunContext[str], city: str) -> float:
        """The population of a city, in millions."""
        ran.append(city)
        return 2.1

    output = agent.run_sync(
        "Look up the population of Paris with the tool, then give the result.",
        deps="unused",
        model_settings={"temperature": 0},
        usage_limits=UsageLimits(request_limit=6),  # a model that loops fails fast
    ).output
    assert [c.lower() for c in ran][:1] == ["paris"]
    assert output.city.lower() == "paris"
    assert output.population_millions == pytest.approx(2.1)


# --- Instructor -------------------------------------------------------------------------------


def test_instructor_tools_mode(real: str) -> None:
    import instructor
    import openai

    client = instructor.from_openai(
        openai.OpenAI(base_url=real, api_key=REAL_KEY, max_retries=0, timeout=300),
        mode=instructor.Mode.TOOLS,
    )
    user = client.chat.completions.create(
        model=REAL_MODEL,
        response_model=UserInfo,
        max_retries=3,
        temperature=0,
        messages=[{"role": "user", "content": "Extract the user: Jason is 25 years old."}],
    )
    assert user.model_dump() == {"name": "JASON", "age": 25}


# --- /v1/responses and /v1/messages -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_openai_agents_sdk_responses_model(real: str, stream: bool) -> None:
    """The Agents SDK's default model class speaks /v1/responses."""
    ran, answer = agents_sdk_weather(
        real, REAL_KEY, REAL_MODEL, "What is the temperature in Paris right now?", stream
    )
    assert [city.lower() for city in ran] == ["paris"]
    assert "17" in answer


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_openai_agents_sdk_chat_completions_model(real: str, stream: bool) -> None:
    """The Agents SDK's OpenAIChatCompletionsModel speaks /v1/chat/completions."""
    ran, answer = agents_sdk_weather(
        real,
        REAL_KEY,
        REAL_MODEL,
        "What is the temperature in Paris right now?",
        stream,
        chat_completions=True,
    )
    assert [city.lower() for city in ran] == ["paris"]
    assert "17" in answer


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_messages_client(real: str, stream: bool) -> None:
    ran, answer = messages_weather(
        real, REAL_KEY, REAL_MODEL, "What is the temperature in Paris right now?", stream
    )
    assert [city.lower() for city in ran] == ["paris"]
    assert "17" in answer
