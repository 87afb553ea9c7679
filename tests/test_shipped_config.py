"""The shipped ``config.yaml`` itself, as ``make run`` serves it, in front of the fake upstream
(which, like the default llama.cpp upstream, serves only ``/chat/completions``).

Every endpoint the README promises (chat completions with the openai SDK, ``/v1/responses``
with the openai SDK, ``/v1/messages`` with httpx: the anthropic SDK is not installed) answers a
tool request, streaming and not: code-mode tool calls on ``coder``, the upstream's own tool
calls on ``coder-native``. And a client error on one endpoint does not take the alias down for
the others (LiteLLM's cooldown; see the config's ``router_settings``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from scripts import serve
from tests._frameworks import agents_sdk_weather, messages_weather
from tests.conftest import MASTER_KEY, UPSTREAM_KEY, Case, Proxy, start_proxy, stop_proxy
from tests.fake_upstream import FakeUpstream, Scripted
from tests.grammar_matcher import accepts, problems
from tests.test_endpoints import WEATHER as RESPONSES_WEATHER
from tests.test_endpoints import assert_code_mode, messages_request
from tests.test_endpoints_stream import assemble, sse_frames
from tests.test_proxy import WEATHER, code

SHIPPED = Path(__file__).resolve().parent.parent / "config.yaml"
ENDPOINTS = ["chat", "responses", "messages"]
UPSTREAM_MODEL = "fake-shipped"


def _start_shipped(upstream: FakeUpstream, where: Path, local: bool) -> Proxy:
    """The proxy on the shipped config, its environment as ``make run`` sets it: in front of
    an upstream of your own, or (``local``) of the embedded llama.cpp."""
    env = {
        "TOOLCODE_UPSTREAM_BASE": upstream.url,
        "TOOLCODE_UPSTREAM_MODEL": f"openai/{UPSTREAM_MODEL}",
        "TOOLCODE_UPSTREAM_KEY": UPSTREAM_KEY,
        "LITELLM_MASTER_KEY": MASTER_KEY,  # scripts/serve.py passes the key this way
    }
    if local:
        serve.point_at_local_model(env, upstream.url)
    return start_proxy(SHIPPED.read_text(), where, env=env)


@pytest.fixture(scope="module")
def shipped(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    running = _start_shipped(upstream, tmp_path_factory.mktemp("shipped"), local=False)
    yield running
    stop_proxy(running)


@pytest.fixture(scope="module")
def shipped_local(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    running = _start_shipped(upstream, tmp_path_factory.mktemp("local"), local=True)
    yield running
    stop_proxy(running)


@pytest.fixture(scope="module")
def shipped_client(shipped: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{shipped.url}/v1", api_key=MASTER_KEY, max_retries=0)


@dataclass
class Answer:
    """What a client of any endpoint got: its tool calls, its text and whether it stopped for
    tool calls (``finish_reason: tool_calls``, ``function_call`` items, ``stop_reason:
    tool_use``)."""

    calls: list[tuple[str, dict[str, Any]]]
    text: str
    tool_stop: bool


class Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


def send(
    endpoint: str,
    stream: bool,
    proxy: Proxy,
    client: openai.OpenAI,
    model: str,
    text: str,
    **extra: Any,
) -> Answer:
    """One tool request (the weather tool) to ``endpoint``, with ``extra`` request fields such
    as ``temperature``; raises Refused on an HTTP error."""
    try:
        if endpoint == "chat":
            return _chat(stream, client, model, text, extra)
        if endpoint == "responses":
            return _responses(stream, client, model, text, extra)
        return _messages(stream, proxy, model, text, extra)
    except openai.APIStatusError as exc:
        raise Refused(exc.status_code, exc.message) from exc


def _chat(
    stream: bool, client: openai.OpenAI, model: str, text: str, extra: dict[str, Any]
) -> Answer:
    case = Case(upstream=None, client=client, stream=stream)  # type: ignore[arg-type]
    result = case.ask([{"role": "user", "content": text}], model=model, tools=[WEATHER], **extra)
    return Answer(result.calls(), result.content or "", result.finish_reason == "tool_calls")


def _responses(
    stream: bool, client: openai.OpenAI, model: str, text: str, extra: dict[str, Any]
) -> Answer:
    tools: Any = [RESPONSES_WEATHER]
    if stream:
        with client.responses.stream(model=model, input=text, tools=tools, **extra) as events:
            kinds = [event.type for event in events]
            assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
            response = events.get_final_response()
    else:
        response = client.responses.create(model=model, input=text, tools=tools, **extra)
    calls = [
        (item.name, json.loads(item.arguments))
        for item in response.output
        if item.type == "function_call"
    ]
    return Answer(calls, response.output_text, bool(calls))


def _messages(stream: bool, proxy: Proxy, model: str, text: str, extra: dict[str, Any]) -> Answer:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    if stream:
        with httpx.stream("POST", **messages_request(proxy, stream=True, **body)) as response:
            if response.status_code != 200:
                raise Refused(response.status_code, response.read().decode())
            raw = response.read().decode()
        message = assemble(sse_frames(raw))
    else:
        response = httpx.post(**messages_request(proxy, **body))
        if response.status_code != 200:
            raise Refused(response.status_code, response.text)
        message = response.json()
    blocks = message["content"]
    return Answer(
        [(b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"],
        "".join(b["text"] for b in blocks if b["type"] == "text"),
        message["stop_reason"] == "tool_use",
    )


def key() -> str:
    return f"shipped-{uuid.uuid4().hex[:12]}"


CODE_ANSWER = "Let me look.\n" + code(
    "# tool: get_weather", "get_weather(location='Paris')", "get_weather('Oslo')"
)
PARIS_AND_OSLO = [("get_weather", {"location": "Paris"}), ("get_weather", {"location": "Oslo"})]


@pytest.mark.parametrize("served", ["shipped", "shipped_local"], ids=["own-upstream", "local"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_code_mode_tool_calls_on_coder(
    endpoint: str,
    stream: bool,
    served: str,
    request: pytest.FixtureRequest,
    upstream: FakeUpstream,
) -> None:
    proxy: Proxy = request.getfixturevalue(served)
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
    k = key()
    upstream.script(k, Scripted(content=CODE_ANSWER))
    answer = send(endpoint, stream, proxy, client, "coder", f"Paris and Oslo? [{k}]")
    assert answer.calls == PARIS_AND_OSLO
    assert answer.text == "Let me look."
    assert answer.tool_stop
    (seen,) = upstream.requests(k)  # one request, to the upstream's /chat/completions
    assert_code_mode(seen)
    assert seen["model"] == UPSTREAM_MODEL
    assert bool(seen.get("stream")) is stream
    if served == "shipped":  # TOOLCODE_GRAMMAR unset (an upstream of your own): no grammar
        assert "grammar" not in seen
    else:  # make run's embedded llama.cpp: the tools' grammar
        assert problems(seen["grammar"]) == ""
        assert accepts(seen["grammar"], CODE_ANSWER)
        assert not accepts(seen["grammar"], "get_weather(city='Paris')")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_native_tool_calls_pass_through_on_coder_native(
    endpoint: str,
    stream: bool,
    shipped: Proxy,
    shipped_client: openai.OpenAI,
    upstream: FakeUpstream,
) -> None:
    k = key()
    native = {
        "id": "call_n1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Lyon"}'},
    }
    upstream.script(k, Scripted(content=None, tool_calls=[native]))
    answer = send(endpoint, stream, shipped, shipped_client, "coder-native", f"Lyon? [{k}]")
    assert answer.calls == [("get_weather", {"location": "Lyon"})]
    assert answer.tool_stop
    (seen,) = upstream.requests(k)
    # The tool reached the upstream as a native chat tool; no code-mode prompt.
    assert [t["function"]["name"] for t in seen["tools"]] == ["get_weather"]
    assert all("def get_weather(" not in str(m.get("content")) for m in seen["messages"])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("failing", ENDPOINTS)
def test_a_404_on_one_endpoint_leaves_the_alias_up_for_the_others(
    failing: str,
    stream: bool,
    shipped: Proxy,
    shipped_client: openai.OpenAI,
    upstream: FakeUpstream,
) -> None:
    """LiteLLM cools a deployment down after one upstream 404, even the only one of its alias
    (then every endpoint answers 429 for 5 s); the shipped config keeps that from happening."""
    k = key()
    others = [e for e in ENDPOINTS if e != failing]
    upstream.script(
        k,
        Scripted(status=404, content="no such route"),
        *[Scripted(content=CODE_ANSWER)] * len(others),
    )
    with pytest.raises(Refused) as refused:
        send(failing, stream, shipped, shipped_client, "coder", f"Paris and Oslo? [{k}]")
    assert refused.value.status == 404, refused.value
    for endpoint in others:
        answer = send(endpoint, stream, shipped, shipped_client, "coder", f"Again [{k}]")
        assert answer.calls == PARIS_AND_OSLO, endpoint
    assert len(upstream.requests(k)) == 1 + len(others)
    assert upstream.unplayed(k) == 0


def as_make_run_serves(model_info: Any) -> Any:
    """``model_info`` with ``os.environ/TOOLCODE_GRAMMAR`` as ``make run`` resolves it for the
    embedded llama.cpp (the README's example has that upstream written out)."""
    toolcode = (model_info or {}).get("toolcode")
    if not isinstance(toolcode, dict) or "grammar" not in toolcode:
        return model_info
    assert toolcode["grammar"] == "os.environ/TOOLCODE_GRAMMAR"
    return {**model_info, "toolcode": {**toolcode, "grammar": serve.LOCAL_GRAMMAR}}


def test_readme_switching_it_on_example_has_the_shipped_settings() -> None:
    """The README's config example carries every setting the shipped config has beyond the
    upstream itself, so a config copied from the README serves the same endpoints."""
    readme = (SHIPPED.parent / "README.md").read_text()
    section = readme[readme.index("## Switching it on") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    example = yaml.safe_load(section[start : section.index("\n```", start)])
    config = yaml.safe_load(SHIPPED.read_text())
    upstream_keys = {"model", "api_base", "api_key"}
    for shipped_entry in config["model_list"]:
        example_entry = next(
            e for e in example["model_list"] if e["model_name"] == shipped_entry["model_name"]
        )
        extra = {k: v for k, v in shipped_entry["litellm_params"].items() if k not in upstream_keys}
        assert {k: example_entry["litellm_params"].get(k) for k in extra} == extra
        assert example_entry.get("model_info") == as_make_run_serves(
            shipped_entry.get("model_info")
        )
    assert example["litellm_settings"] == config["litellm_settings"]
    assert example["router_settings"] == config["router_settings"]


# --- two-step tool flows on /v1/responses and /v1/messages -------------------------------------
# The same flows run against the real model in test_frameworks_real.py.


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
@pytest.mark.parametrize("flow", ["agents_sdk", "messages"])
def test_two_step_tool_flow(
    flow: str, stream: bool, shipped: Proxy, upstream: FakeUpstream
) -> None:
    k = key()
    upstream.script(
        k,
        Scripted(content=code("# tool: get_weather", "get_weather(city='Paris')")),
        Scripted(content="It is 17 degrees in Paris."),
    )
    run = agents_sdk_weather if flow == "agents_sdk" else messages_weather
    ran, answer = run(
        f"{shipped.url}/v1", MASTER_KEY, "coder", f"Temperature in Paris? [{k}]", stream
    )
    assert ran == ["Paris"]
    assert answer == "It is 17 degrees in Paris."
    first, second = upstream.requests(k)
    assert_code_mode(first)
    assert_code_mode(second)
    history = json.dumps(second["messages"])
    assert "get_weather(city=" in history and '\\"temperature\\": 17' in history
