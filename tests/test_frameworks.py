"""The frameworks people use, unchanged, through the real proxy with the plugin on.

Each test is written the way the framework's users write it; only the upstream model is scripted
(tests/fake_upstream.py), with the Python-code answers a model gives in code mode. The assertions
are real outcomes: the framework ran our Python tool functions with the right arguments, and the
final answer is built on their results (the upstream saw those results in the history).

Versions: langchain-openai 1.7.4 (langchain-core 1.8.3), langgraph 1.2.22 (langgraph-prebuilt
1.1.3), pydantic-ai-slim 2.31.1 (the newest that accepts openai 2.x), instructor 1.17.0,
openai-agents 0.20.0.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field
from pydantic_ai import RunContext

from tests._frameworks import UserInfo, agents_sdk_weather, ask
from tests.conftest import MASTER_KEY, Proxy
from tests.fake_upstream import FakeUpstream, Scripted


def code(*lines: str) -> str:
    return "```python\n" + "\n".join(lines) + "\n```"


@dataclass
class Script:
    """A unique key for one test's conversation, and the upstream's answers to it."""

    upstream: FakeUpstream
    key: str = field(default_factory=lambda: f"fw-{uuid.uuid4().hex[:12]}")

    def play(self, *answers: str | Scripted) -> None:
        self.upstream.script(
            self.key, *(Scripted(content=a) if isinstance(a, str) else a for a in answers)
        )

    def tag(self, text: str) -> str:
        return f"{text} [{self.key}]"

    @property
    def seen(self) -> list[dict[str, Any]]:
        return self.upstream.requests(self.key)

    def done(self) -> bool:
        return self.upstream.unplayed(self.key) == 0


@pytest.fixture
def script(upstream: FakeUpstream) -> Script:
    return Script(upstream)


@pytest.fixture
def base_url(proxy: Proxy) -> str:
    return f"{proxy.url}/v1"


def system_text(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


def transcript(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in request["messages"])


def assert_code_mode(request: dict[str, Any], *stubs: str) -> None:
    """The upstream saw code, never the native tool fields."""
    for name in ("tools", "tool_choice", "parallel_tool_calls"):
        assert name not in request, name
    assert all("tool_calls" not in m and m["role"] != "tool" for m in request["messages"])
    for stub in stubs:
        assert f"def {stub}(" in system_text(request), stub


# --- LangChain --------------------------------------------------------------------------------


WEATHER = {"Paris": 18, "Oslo": -3}


def langchain_tools(ran: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
        """Get the current temperature in a city."""
        ran.append(("get_weather", {"city": city, "unit": unit}))
        return json.dumps({"city": city, "temp": WEATHER[city], "unit": unit})

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        ran.append(("add", {"a": a, "b": b}))
        return a + b

    return [get_weather, add]


def chat_openai(base_url: str, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="coder", base_url=base_url, api_key=MASTER_KEY, max_retries=0, **kwargs)


def run_langchain(llm: Any, tools: list[Any], question: str, stream: bool) -> tuple[Any, Any]:
    """The loop from LangChain's tool-calling guide: ask, run the calls, ask again."""
    from langchain_core.messages import BaseMessage, HumanMessage

    by_name = {t.name: t for t in tools}
    messages: list[BaseMessage] = [HumanMessage(question)]
    first = ask(llm, messages, stream)
    messages.append(first)
    for call in first.tool_calls:
        messages.append(by_name[call["name"]].invoke(call))  # a ToolMessage
    return first, ask(llm, messages, stream)


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langchain_tool_functions(script: Script, base_url: str, stream: bool) -> None:
    script.play(
        "I'll look both up.\n"
        + code(
            "# tool: get_weather",
            "get_weather(city='Paris')",
            "get_weather(city='Oslo', unit='celsius')",
        ),
        "Paris is at 18 degrees and Oslo at -3 degrees.",
    )
    ran: list[tuple[str, dict[str, Any]]] = []
    tools = langchain_tools(ran)
    llm = chat_openai(base_url).bind_tools(tools)
    first, final = run_langchain(
        llm, tools, script.tag("Temperature in Paris and Oslo?"), stream=stream
    )

    assert [(c["name"], c["args"]) for c in first.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo", "unit": "celsius"}),
    ]
    assert len({c["id"] for c in first.tool_calls}) == 2
    assert "I'll look both up." in first.content
    assert ran == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_weather", {"city": "Oslo", "unit": "celsius"}),
    ]
    assert final.tool_calls == []
    assert final.content == "Paris is at 18 degrees and Oslo at -3 degrees."

    first_seen, second_seen = script.seen
    assert_code_mode(first_seen, "get_weather", "add")
    assert bool(first_seen.get("stream")) is stream
    assert_code_mode(second_seen, "get_weather", "add")
    history = transcript(second_seen)
    assert '"temp": 18' in history and '"temp": -3' in history  # the tools' real results
    assert "get_weather(city=" in history  # the earlier calls, shown as code


def test_langchain_stream_matches_invoke(script: Script, base_url: str) -> None:
    answer = code("# tool: add", "add(a=2, b=40)", "add(3, -5)")
    script.play(answer, answer)
    tools = langchain_tools([])
    llm = chat_openai(base_url).bind_tools(tools)
    question = script.tag("Two sums please")
    invoked = ask(llm, question, stream=False)
    streamed = ask(llm, question, stream=True)

    def shape(message: Any) -> Any:
        return (
            message.content,
            [(c["name"], c["args"]) for c in message.tool_calls],
            message.response_metadata.get("finish_reason"),
        )

    assert shape(invoked) == shape(streamed)
    assert shape(invoked) == (
        "",
        [("add", {"a": 2, "b": 40}), ("add", {"a": 3, "b": -5})],
        "tool_calls",
    )
    assert streamed.invalid_tool_calls == []


class GetWeather(BaseModel):
    """Get the current temperature in a city."""

    city: str = Field(description="The city, e.g. Paris")
    unit: Literal["celsius", "fahrenheit"] = "celsius"


class ConvertUnits(BaseModel):
    """Convert a temperature between celsius and fahrenheit."""

    value: float
    to: Literal["celsius", "fahrenheit"]


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langchain_pydantic_classes(script: Script, base_url: str, stream: bool) -> None:
    from langchain_core.output_parsers.openai_tools import PydanticToolsParser

    script.play(
        code(
            "# tool: GetWeather",
            "GetWeather(city='Oslo', unit='fahrenheit')",
            "ConvertUnits(value=-3.5, to='fahrenheit')",
        )
    )
    llm = chat_openai(base_url).bind_tools([GetWeather, ConvertUnits])
    question = script.tag("Oslo in F, and convert -3.5 C")
    message = ask(llm, question, stream)
    parsed = PydanticToolsParser(tools=[GetWeather, ConvertUnits]).invoke(message)
    assert parsed == [
        GetWeather(city="Oslo", unit="fahrenheit"),
        ConvertUnits(value=-3.5, to="fahrenheit"),
    ]
    (seen,) = script.seen
    assert_code_mode(seen, "GetWeather", "ConvertUnits")
    assert "The city, e.g. Paris" in system_text(seen)  # field descriptions reach the model


def test_langchain_with_structured_output(script: Script, base_url: str) -> None:
    """``with_structured_output(method="function_calling")`` forces the tool by name."""
    script.play(code("# tool: GetWeather", "GetWeather(city='Paris')"))
    llm = chat_openai(base_url).with_structured_output(GetWeather, method="function_calling")
    assert llm.invoke(script.tag("Paris?")) == GetWeather(city="Paris")
    (seen,) = script.seen
    assert_code_mode(seen, "GetWeather")
    assert "GetWeather" in transcript(seen)


# --- LangGraph --------------------------------------------------------------------------------


def _flight_tools(ran: list[tuple[str, Any]]) -> tuple[Any, Any]:
    """The LangGraph agents' two tools; each run is noted in ``ran``."""
    from langchain_core.tools import tool

    @tool
    def find_flight(origin: str, destination: str) -> dict[str, Any]:
        """Find the cheapest flight between two cities; returns its number and price in EUR."""
        ran.append(("find_flight", (origin, destination)))
        return {"flight": "AF1234", "price_eur": 420}

    @tool
    def convert_currency(amount: float, to_currency: str) -> float:
        """Convert an amount in EUR into another currency."""
        ran.append(("convert_currency", (amount, to_currency)))
        return round(amount * 1.08, 2)

    return find_flight, convert_currency


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langgraph_react_agent_two_tools(script: Script, base_url: str, stream: bool) -> None:
    from langchain_core.messages import AIMessage, ToolMessage
    from langgraph.prebuilt import create_react_agent

    ran: list[tuple[str, Any]] = []
    find_flight, convert_currency = _flight_tools(ran)

    script.play(
        code("# tool: find_flight", "find_flight(origin='Paris', destination='Tokyo')"),
        code("# tool: convert_currency", "convert_currency(amount=420, to_currency='USD')"),
        "The cheapest flight is AF1234 for 420 EUR, which is 453.6 USD.",
    )
    agent = create_react_agent(
        chat_openai(base_url, streaming=stream), [find_flight, convert_currency]
    )
    result = agent.invoke(
        {"messages": [("user", script.tag("Cheapest Paris-Tokyo flight, price in USD?"))]}
    )

    assert ran == [("find_flight", ("Paris", "Tokyo")), ("convert_currency", (420.0, "USD"))]
    messages = result["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    tool_results = [m.content for m in messages if isinstance(m, ToolMessage)]
    assert json.loads(tool_results[0]) == {"flight": "AF1234", "price_eur": 420}
    assert tool_results[1] == "453.6"
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert final.content == "The cheapest flight is AF1234 for 420 EUR, which is 453.6 USD."

    # What the upstream received at each step: the history rendered as code and results.
    assert script.done() and len(script.seen) == 3
    for seen in script.seen:
        assert_code_mode(seen, "find_flight", "convert_currency")
        assert bool(seen.get("stream")) is stream
    step1, step2, step3 = (s["messages"] for s in script.seen)
    assert [m["role"] for m in step1] == ["system", "user"]
    assert [m["role"] for m in step2] == ["system", "user", "assistant", "user"]
    assert [m["role"] for m in step3] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert "find_flight(origin=" in step2[2]["content"]
    assert "AF1234" in step2[3]["content"] and "420" in step2[3]["content"]
    assert "convert_currency(amount=420" in step3[4]["content"]
    assert "453.6" in step3[5]["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langgraph_code_that_repeats_a_call_runs_it_once(
    script: Script, base_url: str, stream: bool
) -> None:
    """The model writes the whole plan, find_flight's result used inside convert_currency's
    arguments, and writes it again once the agent ran find_flight (issue 17): find_flight runs
    once, then convert_currency with the price from its result."""
    from langgraph.prebuilt import create_react_agent

    ran: list[tuple[str, Any]] = []
    find_flight, convert_currency = _flight_tools(ran)

    flight = "find_flight(origin='Paris', destination='Tokyo')"
    plan = code(
        "# tool: find_flight, convert_currency",
        flight,
        f"convert_currency(amount={flight}['price_eur'], to_currency='USD')",
    )
    script.play(plan, plan, "AF1234 costs 420 EUR, which is 453.6 USD.")
    agent = create_react_agent(
        chat_openai(base_url, streaming=stream), [find_flight, convert_currency]
    )
    result = agent.invoke(
        {"messages": [("user", script.tag("Cheapest Paris-Tokyo flight, price in USD?"))]},
        {"recursion_limit": 8},
    )
    assert ran == [("find_flight", ("Paris", "Tokyo")), ("convert_currency", (420.0, "USD"))]
    assert result["messages"][-1].content == "AF1234 costs 420 EUR, which is 453.6 USD."
    assert script.done()


# --- PydanticAI -------------------------------------------------------------------------------


class TripPlan(BaseModel):
    city: str
    days: int
    budget_eur: float
    highlights: list[str]


def pydantic_ai_model(base_url: str) -> Any:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    return OpenAIChatModel("coder", provider=OpenAIProvider(base_url=base_url, api_key=MASTER_KEY))


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
def test_pydantic_ai_typed_tools_and_output_type(
    script: Script, base_url: str, stream: bool
) -> None:
    from pydantic_ai import Agent

    ran: list[tuple[str, Any]] = []
    agent = Agent(
        pydantic_ai_model(base_url),
        output_type=TripPlan,
        deps_type=str,
        instructions="You plan short city trips.",
    )

    @agent.tool
    def daily_cost(ctx: RunContext[str], city: str, nights: int) -> float:
        """Average cost per day in a city, in EUR, for a stay of `nights` nights."""
        ran.append(("daily_cost", (ctx.deps, city, nights)))
        return 150.0

    @agent.tool_plain
    def sights(city: str, limit: int = 3) -> list[str]:
        """The top sights of a city."""
        ran.append(("sights", (city, limit)))
        return ["Louvre", "Orsay", "Montmartre"][:limit]

    script.play(
        code(
            "# tool: daily_cost",
            "daily_cost(city='Paris', nights=3)",
            "sights(city='Paris', limit=2)",
        ),
        code(
            "# tool: final_result",
            "final_result(city='Paris', days=3, budget_eur=450.0, highlights=['Louvre', 'Orsay'])",
        ),
    )
    question = script.tag("Plan 3 days in Paris")
    if stream:

        async def streamed() -> Any:
            async with agent.run_stream(question, deps="alice") as run:
                return await run.get_output()

        import asyncio

        output = asyncio.run(streamed())
    else:
        output = agent.run_sync(question, deps="alice").output

    assert sorted(ran) == [("daily_cost", ("alice", "Paris", 3)), ("sights", ("Paris", 2))]
    assert output == TripPlan(
        city="Paris", days=3, budget_eur=450.0, highlights=["Louvre", "Orsay"]
    )
    first, second = script.seen
    assert_code_mode(first, "daily_cost", "sights", "final_result")
    assert "You plan short city trips." in system_text(first)
    results = second["messages"][-1]["content"]
    assert "150.0" in results and "Louvre" in results


# --- OpenAI Agents SDK -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_openai_agents_sdk_chat_completions_model(
    script: Script, base_url: str, stream: bool
) -> None:
    """``OpenAIChatCompletionsModel``: the Agents SDK on /v1/chat/completions (its default,
    /v1/responses, is tested against the shipped config in test_shipped_config.py)."""
    script.play(
        code("# tool: get_weather", "get_weather(city='Paris')"),
        "It is 17 degrees in Paris.",
    )
    ran, answer = agents_sdk_weather(
        base_url, MASTER_KEY, "coder", script.tag("Temperature in Paris?"), stream, True
    )
    assert ran == ["Paris"]
    assert answer == "It is 17 degrees in Paris."
    first, second = script.seen
    assert_code_mode(first, "get_weather")
    assert bool(first.get("stream")) is stream
    assert "Answer with the tools." in system_text(first)  # the agent's instructions
    assert_code_mode(second, "get_weather")
    history = transcript(second)
    assert "get_weather(city=" in history and '"temperature": 17' in history


# --- Instructor -------------------------------------------------------------------------------


def test_instructor_tools_mode_with_a_validation_retry(script: Script, base_url: str) -> None:
    import instructor
    import openai

    client = instructor.from_openai(
        openai.OpenAI(base_url=base_url, api_key=MASTER_KEY, max_retries=0),
        mode=instructor.Mode.TOOLS,
    )
    script.play(
        code("# tool: UserInfo", "UserInfo(name='Jason', age=25)"),
        code("# tool: UserInfo", "UserInfo(name='JASON', age=25)"),
    )
    user = client.chat.completions.create(
        model="coder",
        response_model=UserInfo,
        max_retries=2,
        messages=[{"role": "user", "content": script.tag("Jason is 25 years old")}],
    )
    assert isinstance(user, UserInfo)
    assert user.model_dump() == {"name": "JASON", "age": 25}

    first, retry = script.seen
    assert_code_mode(first, "UserInfo")
    assert_code_mode(retry, "UserInfo")
    # Instructor's re-ask (the failed call and the validation error) reaches the model as code
    # and a result message.
    history = transcript(retry)
    assert "UserInfo(name=" in history and "Jason" in history
    assert "upper case" in history
