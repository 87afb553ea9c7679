"""The whole path through the real LiteLLM proxy, the real openai SDK and the fake upstream.

Every case runs twice (the ``case`` fixture): non-streaming and streaming.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import Case
from tests.fake_upstream import Scripted


def tool(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


WEATHER = tool(
    "get_weather",
    "Get the current weather in a given location",
    {
        "location": {"type": "string", "description": "The city, e.g. London"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    ["location"],
)
TIME = tool(
    "get_time",
    "Get the local time in a time zone",
    {"timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Paris"}},
    ["timezone"],
)
MOVE = tool(
    "move_robot",
    "Move the robot by a relative offset in metres",
    {"dx": {"type": "number"}, "dy": {"type": "number"}, "speed": {"type": "integer"}},
    ["dx", "dy"],
)
BOOK = tool(
    "book_table",
    "Book a restaurant table",
    {
        "restaurant": {"type": "string"},
        "guests": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "diet": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["name"],
            },
        },
        "slots": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
    },
    ["restaurant", "guests"],
)
ODD_NAMES = [
    tool("get-weather", "Weather, hyphenated name", {"city": {"type": "string"}}, ["city"]),
    tool("weather.lookup", "Weather, dotted name", {"city": {"type": "string"}}, ["city"]),
    tool("class", "A tool named like a keyword", {"from": {"type": "string"}}, ["from"]),
]


def code(*lines: str, fence: str = "python") -> str:
    return f"```{fence}\n" + "\n".join(lines) + "\n```"


def upstream_request(case: Case) -> dict[str, Any]:
    assert case.seen, "the upstream received no request for this case"
    return case.seen[-1]


def expect_model_error(case: Case, *fragments: str, **ask: Any) -> str:
    """The client gets an OpenAI-shaped error (500 model_error when not streaming)."""
    with pytest.raises(openai.APIError) as info:
        case.ask(**ask)
    error = info.value
    message = str(error.message)
    if not case.stream:
        assert isinstance(error, openai.InternalServerError)
        assert error.body["type"] == "model_error"  # type: ignore[index]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert len(case.seen) == 2, "the first answer and one repair round"
    assert case.upstream.unplayed(case.key) == 0
    return message


# --- the seed example and the basic shapes -------------------------------------------------


def test_seed_get_weather(case: Case) -> None:
    case.script(code("# tool: get_weather", 'get_weather(location="London")'))
    result = case.ask(messages=[case.user("What's the weather in London?")], tools=[WEATHER])
    assert result.finish_reason == "tool_calls"
    assert result.content is None
    assert result.calls() == [("get_weather", {"location": "London"})]
    call = result.tool_calls[0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    seen = upstream_request(case)
    for field in ("tools", "tool_choice", "parallel_tool_calls"):
        assert field not in seen
    system = seen["messages"][0]
    assert system["role"] == "system"
    assert "def get_weather(" in system["content"] and "```python" in system["content"]
    assert seen["messages"][1]["content"].startswith("What's the weather in London?")


def test_model_picks_one_of_several_tools(case: Case) -> None:
    case.script(code("# tool: get_time", "get_time(timezone='Asia/Tokyo')"))
    result = case.ask(
        messages=[case.user("What time is it in Tokyo?")], tools=[WEATHER, TIME, MOVE]
    )
    assert result.calls() == [("get_time", {"timezone": "Asia/Tokyo"})]
    system = upstream_request(case)["messages"][0]["content"]
    assert all(f"def {n}(" in system for n in ("get_weather", "get_time", "move_robot"))


def test_two_calls_in_one_answer(case: Case) -> None:
    case.script(
        code(
            "# tool: get_weather",
            "get_weather(location='Paris', unit='celsius')",
            "get_weather(location='Berlin')",
        )
    )
    result = case.ask(messages=[case.user("Weather in Paris and Berlin?")], tools=[WEATHER])
    assert result.calls() == [
        ("get_weather", {"location": "Paris", "unit": "celsius"}),
        ("get_weather", {"location": "Berlin"}),
    ]
    ids = [c["id"] for c in result.tool_calls]
    assert len(set(ids)) == 2


def test_positional_arguments_are_bound_by_the_signature(case: Case) -> None:
    case.script(code("# tool: get_weather", "get_weather('Oslo', 'fahrenheit')"))
    result = case.ask(messages=[case.user("Oslo weather in F")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Oslo", "unit": "fahrenheit"})]


def test_negative_numbers(case: Case) -> None:
    case.script(code("# tool: move_robot", "move_robot(dx=-3, dy=-2.5, speed=+4)"))
    result = case.ask(messages=[case.user("Back up a bit")], tools=[MOVE])
    assert result.calls() == [("move_robot", {"dx": -3, "dy": -2.5, "speed": 4})]
    arguments = result.tool_calls[0]["arguments"]
    assert '"dx": -3' in arguments and '"dy": -2.5' in arguments  # ints stay ints


LS = tool("ls", "List the current directory", {"a": {"type": "boolean"}}, [])


def test_a_bare_tool_name_is_a_call_without_arguments(case: Case) -> None:
    # `ls` on its own line, as in a shell (the 1.5B model on BFCL's file system, twice)
    case.script(code("# tool: ls", "", "ls"))
    result = case.ask(messages=[case.user("What is in this directory?")], tools=[LS])
    assert result.finish_reason == "tool_calls"
    assert result.calls() == [("ls", {})]


def test_a_bare_tool_name_missing_arguments_gets_a_repair_round_naming_them(case: Case) -> None:
    case.script(
        code("# tool: get_weather", "get_weather"),
        code("# tool: get_weather", "get_weather(location='Oslo')"),
    )
    result = case.ask(messages=[case.user("Weather in Oslo?")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Oslo"})]
    repair = upstream_request(case)["messages"][-1]["content"]
    assert "missing required argument 'location'" in repair


def test_nested_lists_of_dicts(case: Case) -> None:
    case.script(
        code(
            "# tool: book_table",
            "book_table(restaurant='Chez Nous', guests=[{'name': 'Ann', 'diet': ['vegan']},"
            " {'name': 'Bo'}], slots=[[18, 30], [19, 0]])",
        )
    )
    result = case.ask(messages=[case.user("Book for Ann and Bo")], tools=[BOOK])
    assert result.calls() == [
        (
            "book_table",
            {
                "restaurant": "Chez Nous",
                "guests": [{"name": "Ann", "diet": ["vegan"]}, {"name": "Bo"}],
                "slots": [[18, 30], [19, 0]],
            },
        )
    ]


def test_prose_before_and_after_the_code_becomes_content(case: Case) -> None:
    case.script(
        "Let me check the weather for you.\n\n"
        + code("# tool: get_weather", "get_weather(location='Rome')")
        + "\n\nI will report back."
    )
    result = case.ask(messages=[case.user("Rome weather?")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Rome"})]
    assert result.content is not None
    assert "Let me check the weather for you." in result.content
    assert "I will report back." in result.content
    assert "get_weather" not in result.content


def test_plain_answer_without_code(case: Case) -> None:
    case.script("The capital of France is Paris.")
    result = case.ask(messages=[case.user("Capital of France?")], tools=[WEATHER])
    assert result.finish_reason == "stop"
    assert result.tool_calls == []
    assert result.content == "The capital of France is Paris."


def test_python_snippet_for_the_user_is_not_a_tool_call(case: Case) -> None:
    answer = "Here is how:\n\n" + code("def add(a, b):", "    return a + b")
    case.script(answer)
    result = case.ask(messages=[case.user("Write a Python add function")], tools=[WEATHER])
    assert result.finish_reason == "stop"
    assert result.content == answer


@pytest.mark.parametrize(
    "answer",
    [
        "get_weather(location='Lima')",
        code("get_weather(location='Lima')", fence="py"),
        code("get_weather(location='Lima')", fence=""),
        "Sure.\nget_weather(location='Lima')",
    ],
    ids=["bare", "py-fence", "plain-fence", "prose-then-bare"],
)
def test_code_without_the_usual_fence(case: Case, answer: str) -> None:
    case.script(answer)
    result = case.ask(messages=[case.user("Lima?")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Lima"})]


def test_a_stray_closing_fence_after_bare_code_is_not_content(case: Case) -> None:
    # the real model's answer in a LangGraph run: no opening fence, a closing one
    case.script("# tool: get_weather\nget_weather(location='Lima')\n```")
    result = case.ask(messages=[case.user("Lima?")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Lima"})]
    assert not result.content


def test_odd_tool_names_are_mangled_and_mapped_back(case: Case) -> None:
    calls = ("get_weather(city='A')", "weather_lookup(city='B')", "class_(from_='C')")
    case.script(code("# tool: get_weather", *calls))
    result = case.ask(messages=[case.user("three odd tools")], tools=ODD_NAMES)
    assert result.calls() == [
        ("get-weather", {"city": "A"}),
        ("weather.lookup", {"city": "B"}),
        ("class", {"from": "C"}),
    ]
    system = upstream_request(case)["messages"][0]["content"]
    assert "def class_(" in system and "def weather_lookup(" in system


def test_strings_come_back_byte_exact(case: Case) -> None:
    tricky = 'He said "hi"\\n\tthen left: \\ ünïcødé 🚀'
    case.script(code("# tool: get_weather", f"get_weather(location={tricky!r})"))
    result = case.ask(messages=[case.user("tricky string")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": tricky})]


def test_optional_fields_left_out_stay_out(case: Case) -> None:
    case.script(code("# tool: get_weather", "get_weather(location='Kyiv')"))
    result = case.ask(messages=[case.user("Kyiv")], tools=[WEATHER])
    assert json.loads(result.tool_calls[0]["arguments"]) == {"location": "Kyiv"}


# --- reasoning -------------------------------------------------------------------------------


def test_code_inside_think_is_never_read(case: Case) -> None:
    case.script(
        "<think>Maybe get_weather(location='Wrong')? No, the user wants Madrid.</think>\n"
        + code("# tool: get_weather", "get_weather(location='Madrid')")
    )
    result = case.ask(messages=[case.user("Madrid")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Madrid"})]
    assert result.content is None or "Wrong" not in result.content


def test_reasoning_content_passes_through(case: Case) -> None:
    case.script(
        Scripted(
            content=code("# tool: get_weather", "get_weather(location='Quito')"),
            reasoning_content="The user asks about Quito.",
        )
    )
    result = case.ask(messages=[case.user("Quito")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Quito"})]
    assert result.reasoning_content == "The user asks about Quito."


# --- errors ----------------------------------------------------------------------------------


def test_unknown_tool_is_an_error_naming_it(case: Case) -> None:
    case.script(
        code("# tool: get_stock", "get_stock(symbol='ACME')"),
        code("# tool: get_stock", "get_stock(symbol='ACME')"),
    )
    expect_model_error(
        case, "get_stock", "get_weather", messages=[case.user("ACME?")], tools=[WEATHER]
    )


def test_invalid_argument_is_an_error_naming_tool_and_field(case: Case) -> None:
    case.script(
        code("# tool: get_weather", "get_weather(location='Oslo', unit='kelvin')"),
        code("# tool: get_weather", "get_weather(location='Oslo', unit='kelvin')"),
    )
    expect_model_error(
        case, "get_weather", "unit", messages=[case.user("Oslo in K")], tools=[WEATHER]
    )


def test_missing_required_argument_is_an_error(case: Case) -> None:
    case.script(
        code("# tool: get_weather", "get_weather(unit='celsius')"),
        code("# tool: get_weather", "get_weather(unit='celsius')"),
    )
    expect_model_error(
        case, "get_weather", "location", messages=[case.user("somewhere")], tools=[WEATHER]
    )


def test_syntax_error_is_an_error(case: Case) -> None:
    case.script(
        code("# tool: get_weather", "get_weather(location='Oslo'"),
        code("# tool: get_weather", "get_weather(location='Oslo'"),
    )
    expect_model_error(case, "line", messages=[case.user("Oslo")], tools=[WEATHER])


def test_code_needing_execution_says_execution_is_unavailable(case: Case) -> None:
    loop = code("# tool: get_weather", "for city in ['A', 'B']:", "    get_weather(location=city)")
    case.script(loop, loop)
    expect_model_error(case, "execution", messages=[case.user("A and B")], tools=[WEATHER])


def test_proxy_keeps_serving_after_errors(case: Case) -> None:
    case.script(
        code("# tool: get_nothing", "get_nothing()"),
        code("# tool: get_nothing", "get_nothing()"),
        code("get_weather(location='Bern')"),
    )
    with pytest.raises(openai.APIError):
        case.ask(messages=[case.user("first")], tools=[WEATHER])
    result = case.ask(messages=[case.user("second")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Bern"})]


# --- what the upstream sees ------------------------------------------------------------------


def test_client_system_message_is_kept(case: Case) -> None:
    case.script("Ahoy!")
    result = case.ask(
        messages=[
            {"role": "system", "content": "You are a pirate. Always answer like a pirate."},
            case.user("Hi"),
        ],
        tools=[WEATHER],
    )
    assert result.content == "Ahoy!"
    messages = upstream_request(case)["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("You are a pirate. Always answer like a pirate.")
    assert "def get_weather(" in messages[0]["content"]


def test_history_is_rewritten_as_code_and_results(case: Case) -> None:
    case.script("It is 18 degrees and sunny in Paris.")
    result = case.ask(
        messages=[
            case.user("Weather in Paris?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_abc",
                "content": '{"temp_c": 18, "sky": "sunny"}',
            },
        ],
        tools=[WEATHER],
    )
    assert result.finish_reason == "stop"
    assert result.content == "It is 18 degrees and sunny in Paris."
    messages = upstream_request(case)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert all(m.get("content") for m in messages)
    assert all("tool_calls" not in m for m in messages)
    assert 'get_weather(location="Paris")' in messages[2]["content"]
    assert 'get_weather(location="Paris")' in messages[3]["content"]
    assert '{"temp_c": 18, "sky": "sunny"}' in messages[3]["content"]


def test_tool_message_without_a_call_is_a_400(case: Case) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        case.ask(
            messages=[
                case.user("x"),
                {"role": "tool", "tool_call_id": "call_nope", "content": "1"},
            ],
            tools=[WEATHER],
        )
    assert "call_nope" in info.value.message
    assert case.seen == []


def test_tool_choice_none_reads_no_calls(case: Case) -> None:
    answer = code("get_weather(location='Oslo')")
    case.script(answer)
    result = case.ask(messages=[case.user("Oslo")], tools=[WEATHER], tool_choice="none")
    assert result.finish_reason == "stop" and result.tool_calls == []
    assert result.content == answer
    assert "def get_weather(" not in json.dumps(upstream_request(case)["messages"])


def test_tool_choice_naming_an_unknown_function_is_a_400(case: Case) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        case.ask(
            messages=[case.user("x")],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert "nope" in info.value.message


def test_bad_schema_is_a_400_naming_the_tool(case: Case) -> None:
    bad = {
        "type": "function",
        "function": {
            "name": "broken",
            "parameters": {"type": "object", "properties": {"x": {"type": "frobnicate"}}},
        },
    }
    with pytest.raises(openai.BadRequestError) as info:
        case.ask(messages=[case.user("x")], tools=[WEATHER, bad])
    assert "broken" in info.value.message
    assert case.seen == []


def test_request_without_tools_is_untouched(case: Case) -> None:
    case.script("Hello there.")
    result = case.ask(messages=[case.user("Hi")])
    assert result.content == "Hello there."
    assert upstream_request(case)["messages"] == [case.user("Hi")]


def test_disabled_alias_passes_tools_through_untouched(case: Case) -> None:
    native_call = {
        "id": "call_native1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Lyon"}'},
    }
    case.script(Scripted(content=None, tool_calls=[native_call]))
    result = case.ask(
        model="plain", messages=[case.user("Lyon")], tools=[WEATHER], tool_choice="auto"
    )
    assert result.calls() == [("get_weather", {"location": "Lyon"})]
    seen = upstream_request(case)
    assert seen["tools"] == [WEATHER]
    assert seen["tool_choice"] == "auto"
    assert seen["messages"] == [case.user("Lyon")]


def test_misconfigured_alias_names_the_key_and_alias(case: Case) -> None:
    with pytest.raises(openai.APIError) as info:
        case.ask(model="misconfigured", messages=[case.user("x")], tools=[WEATHER])
    assert "misconfigured" in info.value.message
    assert "max_tool_result_char" in info.value.message


# --- what survives ---------------------------------------------------------------------------


def test_usage_survives(case: Case) -> None:
    case.script(
        Scripted(
            content=code("get_weather(location='Nice')"), prompt_tokens=321, completion_tokens=12
        )
    )
    kwargs: dict[str, Any] = {"stream_options": {"include_usage": True}} if case.stream else {}
    result = case.ask(messages=[case.user("Nice")], tools=[WEATHER], **kwargs)
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (321, 12)


def test_litellm_headers_survive(upstream: Any, client: openai.OpenAI) -> None:
    case = Case(upstream, client, stream=False)
    case.script(code("get_weather(location='Graz')"))
    raw = client.chat.completions.with_raw_response.create(
        model="coder", messages=[case.user("Graz")], tools=[WEATHER]
    )
    assert raw.headers.get("x-litellm-model-id")
    assert raw.headers.get("x-litellm-call-id")
    assert raw.parse().choices[0].message.tool_calls[0].function.name == "get_weather"


def test_bad_master_key_is_rejected(upstream: Any, proxy: Any, client: openai.OpenAI) -> None:
    case = Case(upstream, client, stream=False)
    case.script("never sent")
    bad = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        bad.chat.completions.create(model="coder", messages=[case.user("x")], tools=[WEATHER])
    # Without a database LiteLLM answers a non-master key with 400 "No connected db." (401 with
    # one); either way the request never reaches the upstream.
    assert info.value.status_code in (400, 401)
    assert case.seen == []
