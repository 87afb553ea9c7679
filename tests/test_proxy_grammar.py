"""The grammar through the real proxy to a scripted upstream, streaming and not: each backend's
field arrives at the top level of the upstream's body with a grammar that parses, repair rounds
carry it too, and the answer still comes back as tool_calls; no grammar for tool_choice none,
for aliases without the setting or without the plugin, or for requests without tools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from litellm_toolcode.grammar import GRAMMAR_FIELDS
from tests.conftest import MASTER_KEY, Case, Proxy, model_entry, start_proxy, stop_proxy
from tests.fake_upstream import FakeUpstream
from tests.grammar_matcher import accepts, problems
from tests.test_proxy import WEATHER, code
from tests.test_proxy_results import CALL_FF, FF, USES
from tests.test_proxy_results import TOOLS as RESULT_TOOLS
from tests.test_results import assistant

BACKENDS = {"gbnf": "grammar", "vllm": "structured_outputs", "sglang": "ebnf"}


@pytest.fixture(scope="module")
def grammar_client(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[openai.OpenAI]:
    config = (
        "model_list:\n"
        + "".join(
            model_entry(upstream.url, f"g-{b}", f"{{enabled: true, grammar: {b}}}")
            for b in BACKENDS
        )
        + model_entry(upstream.url, "g-off", "{enabled: true}")
        + model_entry(upstream.url, "g-plain")
        + "litellm_settings:\n"
        '  callbacks: ["litellm_toolcode.proxy_handler_instance"]\n'
        "  use_chat_completions_url_for_anthropic_messages: true\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )
    proxy: Proxy = start_proxy(config, tmp_path_factory.mktemp("grammar"))
    yield openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
    stop_proxy(proxy)


@pytest.fixture(params=[False, True], ids=["json", "stream"])
def gcase(
    request: pytest.FixtureRequest, upstream: FakeUpstream, grammar_client: openai.OpenAI
) -> Case:
    return Case(upstream, grammar_client, stream=request.param)


CALL = code("# tool: get_weather", 'get_weather(location="London")')


def grammar_sent(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in GRAMMAR_FIELDS if k in body}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_upstream_gets_the_backends_field(gcase: Case, backend: str) -> None:
    gcase.script("I will check.\n" + CALL)
    result = gcase.ask(
        model=f"g-{backend}", messages=[gcase.user("weather in London")], tools=[WEATHER]
    )
    assert result.calls() == [("get_weather", {"location": "London"})]
    sent = grammar_sent(gcase.seen[0])
    assert list(sent) == [BACKENDS[backend]]
    value = sent[BACKENDS[backend]]
    text = value["grammar"] if backend == "vllm" else value
    assert problems(text) == ""
    assert accepts(text, "I will check.\n" + CALL)
    assert not accepts(text, 'get_weather(city="London")')
    assert "tools" not in gcase.seen[0] and "extra_body" not in gcase.seen[0]


def test_a_repair_round_carries_the_grammar(gcase: Case) -> None:
    gcase.script(code("# tool: get_weather", "get_weather()"), CALL)  # location is required
    result = gcase.ask(model="g-gbnf", messages=[gcase.user("weather")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "London"})]
    first, repair = gcase.seen
    assert repair["grammar"] == first["grammar"]


def test_tool_choice_required_sends_a_grammar_without_none(gcase: Case) -> None:
    gcase.script(CALL)
    gcase.ask(
        model="g-gbnf", messages=[gcase.user("weather")], tools=[WEATHER], tool_choice="required"
    )
    text = gcase.seen[0]["grammar"]
    assert accepts(text, CALL) and not accepts(text, "# tool: none\nNo.")


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        ("g-gbnf", {"tools": [WEATHER], "tool_choice": "none"}),
        ("g-gbnf", {}),  # no tools: the plugin leaves the request alone
        ("g-off", {"tools": [WEATHER]}),  # code mode without a grammar
        ("g-plain", {"tools": [WEATHER]}),  # no plugin: native tools pass through
    ],
    ids=["tool-choice-none", "no-tools", "grammar-off", "plugin-off"],
)
def test_no_grammar(gcase: Case, model: str, kwargs: dict[str, Any]) -> None:
    gcase.script("Sunny, I think.")
    result = gcase.ask(model=model, messages=[gcase.user("weather")], **kwargs)
    assert result.content == "Sunny, I think."
    assert grammar_sent(gcase.seen[0]) == {}


def test_the_other_endpoints_send_the_grammar_too(
    upstream: FakeUpstream, grammar_client: openai.OpenAI
) -> None:
    responses = Case(upstream, grammar_client, stream=False)
    responses.script(CALL)
    weather = {"type": "function", **WEATHER["function"]}
    response = grammar_client.responses.create(
        model="g-gbnf", input=f"weather? [{responses.key}]", tools=[weather]
    )
    assert [i.name for i in response.output if i.type == "function_call"] == ["get_weather"]
    assert problems(responses.seen[0]["grammar"]) == ""

    messages = Case(upstream, grammar_client, stream=False)
    messages.script(CALL)
    reply = httpx.post(
        f"{str(grammar_client.base_url).rstrip('/')}/messages",
        headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": "g-sglang",
            "max_tokens": 100,
            "tools": [{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}],
            "messages": [{"role": "user", "content": f"weather? [{messages.key}]"}],
        },
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert [b["type"] for b in reply.json()["content"]] == ["tool_use"]
    assert problems(messages.seen[0]["ebnf"]) == ""


def _messages(client: openai.OpenAI, key: str, stream: bool) -> list[str]:
    """A /v1/messages request; the names of the tool_use blocks (or events) it answered."""
    body = {
        "model": "g-gbnf",
        "max_tokens": 100,
        "stream": stream,
        "tools": [{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}],
        "messages": [{"role": "user", "content": f"weather? [{key}]"}],
    }
    reply = httpx.post(
        f"{str(client.base_url).rstrip('/')}/messages",
        headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        json=body,
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    if not stream:
        return [b["name"] for b in reply.json()["content"] if b["type"] == "tool_use"]
    names = []
    for line in reply.text.splitlines():
        block = json.loads(line[5:]).get("content_block", {}) if line.startswith("data:") else {}
        if block.get("type") == "tool_use":
            names.append(block["name"])
    return names


def _responses(client: openai.OpenAI, key: str, stream: bool) -> list[str]:
    """A /v1/responses request; the names of the function_call items it answered."""
    weather: Any = {"type": "function", **WEATHER["function"]}
    kwargs: dict[str, Any] = {"model": "g-gbnf", "input": f"weather? [{key}]", "tools": [weather]}
    if not stream:
        response = client.responses.create(**kwargs)
        return [i.name for i in response.output if i.type == "function_call"]
    names = []
    for event in client.responses.create(stream=True, **kwargs):
        if event.type == "response.output_item.done" and event.item.type == "function_call":
            names.append(event.item.name)
    return names


@pytest.mark.parametrize("endpoint", ["responses", "messages"])
def test_a_repair_round_on_the_other_endpoints_carries_the_grammar(
    gcase: Case, grammar_client: openai.OpenAI, endpoint: str
) -> None:
    gcase.script(code("# tool: get_weather", "get_weather()"), CALL)  # location is required
    ask = _responses if endpoint == "responses" else _messages
    assert ask(grammar_client, gcase.key, gcase.stream) == ["get_weather"]
    first, repair = gcase.seen
    assert "location" in repair["messages"][-1]["content"]  # the error was shown to the model
    assert problems(first["grammar"]) == ""
    assert repair["grammar"] == first["grammar"]


def test_a_result_used_as_an_argument_is_allowed_and_read(gcase: Case) -> None:
    """The agent's loop under the grammar: the answer uses find_flight's result in
    convert_currency; the first turn sends find_flight, the next (its result in the history)
    only convert_currency with the price filled in (results.py), and the grammar allows both."""
    answer = code("# tool: find_flight, convert_currency", FF, USES["coder"])
    gcase.script(answer, answer)
    messages: list[Any] = [gcase.user("Find me a flight to New York, price in dollars")]
    first = gcase.ask(model="g-gbnf", messages=messages, tools=RESULT_TOOLS)
    assert first.calls() == [CALL_FF]
    assert accepts(gcase.seen[0]["grammar"], answer)
    (call,) = first.tool_calls
    messages += [
        assistant(call["id"], call["name"], json.loads(call["arguments"])),
        {"role": "tool", "tool_call_id": call["id"], "content": '["AF123", 420.0]'},
    ]
    second = gcase.ask(model="g-gbnf", messages=messages, tools=RESULT_TOOLS)
    assert second.calls() == [("convert_currency", {"amount_eur": 420.0, "to": "USD"})]
    assert gcase.seen[1]["grammar"] == gcase.seen[0]["grammar"]


def test_calls_in_blocks_of_their_own_are_allowed_and_read(gcase: Case) -> None:
    answer = f"# tool: find_flight\n{FF}\n\n# tool: convert_currency\n" + (
        "convert_currency(amount_eur=100, to='USD')"
    )
    gcase.script(answer)
    result = gcase.ask(
        model="g-gbnf", messages=[gcase.user("flight; 100 EUR in USD")], tools=RESULT_TOOLS
    )
    assert result.calls() == [CALL_FF, ("convert_currency", {"amount_eur": 100, "to": "USD"})]
    assert accepts(gcase.seen[0]["grammar"], answer)
