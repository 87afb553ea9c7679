"""Faults and bad input through the real proxy: each gets a clear OpenAI-shaped error or a
correct answer, nothing hangs, and the proxy keeps serving."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import (
    MASTER_KEY,
    Case,
    free_port,
    proxy_config,
    start_proxy,
    stop_proxy,
)
from tests.fake_upstream import FakeUpstream, Scripted
from tests.test_proxy import TIME, WEATHER, code, tool


def still_serving(upstream: FakeUpstream, client: openai.OpenAI) -> None:
    probe = Case(upstream, client, stream=False)
    probe.script(code("get_weather(location='Bern')"))
    result = probe.ask(messages=[probe.user("probe")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": "Bern"})]


# --- the upstream misbehaves --------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        Scripted(status=500, content="upstream exploded"),
        Scripted(status=503, content="overloaded"),
        Scripted(raw_body="this is not json"),
        Scripted(raw_body='{"id": "x", "object": "chat.completion", "choices": [{"index": 0'),
    ],
    ids=["500", "503", "garbage", "truncated-json"],
)
def test_upstream_failures_give_an_error_and_the_proxy_keeps_serving(
    case: Case, answer: Scripted, upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    case.script(*[answer] * 4)  # room for LiteLLM's own retries
    with pytest.raises(openai.APIError):
        case.ask(messages=[case.user("x")], tools=[WEATHER])
    still_serving(upstream, client)


def test_empty_choices_from_upstream(case: Case, upstream: FakeUpstream, client: Any) -> None:
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []}
    case.script(*[Scripted(raw_body=json.dumps(body))] * 4)
    try:
        result = case.ask(messages=[case.user("x")], tools=[WEATHER])
    except openai.APIError:
        pass  # a clear error is fine
    else:
        assert result.tool_calls == []  # or an empty answer, never invented calls
    still_serving(upstream, client)


def test_truncated_stream_is_an_error_not_a_half_call(
    upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    case = Case(upstream, client, stream=True)
    answer = code("# tool: get_weather", "get_weather(location='Oslo')")
    case.script(*[Scripted(content=answer, cut_stream_after=4)] * 4)
    try:
        result = case.ask(messages=[case.user("Oslo")], tools=[WEATHER])
    except openai.APIError:
        pass
    else:
        # whatever arrived, a tool call is never made from a cut-off answer
        assert result.tool_calls == []
    still_serving(upstream, client)


def test_huge_prose_answer_arrives_whole(case: Case) -> None:
    text = ("All work and no play makes Jack a dull boy. " * 70_000).strip()  # ~3 MB
    case.script(Scripted(content=text, chunk_size=65_536))
    result = case.ask(messages=[case.user("huge")], tools=[WEATHER])
    assert result.finish_reason == "stop"
    assert result.content == text


def test_hundreds_of_calls(case: Case) -> None:
    lines = [f"get_weather(location='city-{n}')" for n in range(300)]
    case.script(code("# tool: get_weather", *lines))
    result = case.ask(messages=[case.user("300 cities")], tools=[WEATHER])
    assert result.calls() == [("get_weather", {"location": f"city-{n}"}) for n in range(300)]
    assert len({c["id"] for c in result.tool_calls}) == 300


def test_upstream_timeout_is_an_error(upstream: FakeUpstream, client: openai.OpenAI) -> None:
    case = Case(upstream, client, stream=False)
    case.script(*[Scripted(content="late", delay=3.0)] * 4)
    with pytest.raises(openai.APIError):
        case.ask(messages=[case.user("slow")], tools=[WEATHER], extra_body={"timeout": 1})
    still_serving(upstream, client)


# --- bad input ----------------------------------------------------------------------------


def bad_request(case: Case, *fragments: str, **ask: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        case.ask(**ask)
    for fragment in fragments:
        assert fragment in info.value.message, (fragment, info.value.message)
    assert case.seen == [], "a bad request must not reach the upstream"


def test_too_many_tools(case: Case) -> None:
    tools = [tool(f"tool_{n}", "t", {"x": {"type": "string"}}, ["x"]) for n in range(1000)]
    bad_request(case, "1000 tools", "128", messages=[case.user("x")], tools=tools)


def test_megabyte_description(case: Case) -> None:
    huge = tool("verbose", "d" * 1_000_000, {"x": {"type": "string"}}, ["x"])
    bad_request(case, "tools[1]", "verbose", messages=[case.user("x")], tools=[WEATHER, huge])


def test_duplicate_tool_names(case: Case) -> None:
    bad_request(case, "get_weather", messages=[case.user("x")], tools=[WEATHER, WEATHER])


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {"type": "frobnicate"}}},
        {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}},
        {"type": "object", "properties": "not-a-dict"},
    ],
    ids=["unknown-type", "dangling-ref", "properties-not-object"],
)
def test_malformed_schemas(case: Case, schema: dict[str, Any]) -> None:
    broken = {"type": "function", "function": {"name": "broken", "parameters": schema}}
    bad_request(case, "broken", messages=[case.user("x")], tools=[WEATHER, broken])


def test_unknown_role(case: Case) -> None:
    bad_request(
        case,
        "wizard",
        messages=[case.user("x"), {"role": "wizard", "content": "abracadabra"}],
        tools=[WEATHER],
    )


# --- load ---------------------------------------------------------------------------------


def test_fifty_concurrent_clients_mixing_requests(
    upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    def one(n: int) -> None:
        case = Case(upstream, client, stream=n % 2 == 0)
        kind = n % 3
        if kind == 0:  # a tool call
            case.script(code(f"get_time(timezone='Zone/{n}')"))
            result = case.ask(messages=[case.user(f"time {n}")], tools=[WEATHER, TIME])
            assert result.calls() == [("get_time", {"timezone": f"Zone/{n}"})]
        elif kind == 1:  # prose with tools offered
            case.script(f"Answer number {n}.")
            result = case.ask(messages=[case.user(f"prose {n}")], tools=[WEATHER])
            assert (result.content, result.finish_reason) == (f"Answer number {n}.", "stop")
        else:  # no tools, plugin alias and plain alias
            case.script(f"Plain {n}.")
            model = "plain" if n % 4 == 2 else "coder"
            result = case.ask(messages=[case.user(f"plain {n}")], model=model)
            assert result.content == f"Plain {n}."

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        for future in [pool.submit(one, n) for n in range(50)]:
            future.result(timeout=120)


@pytest.mark.timeout(300)  # two proxy starts; each takes 20 s and more on a loaded machine
def test_proxy_restarted_mid_load(upstream: FakeUpstream, tmp_path: Path) -> None:
    """Kill -9 the proxy under load, start it again on the same port: every client gets a
    correct answer or a connection error (never a wrong answer, never a hang), and requests
    succeed again after the restart."""
    port = free_port()
    config = proxy_config(upstream.url)
    first = start_proxy(config, tmp_path / "first", port=port)
    client = openai.OpenAI(
        base_url=f"{first.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30
    )
    oks: list[int] = []  # 0: before the kill, 1: after the restart
    errors: list[str] = []
    unexpected: list[BaseException] = []
    phase = [0]
    stop = threading.Event()

    def worker(n: int) -> None:
        # Bounded by time, not by a count: a loaded machine takes 20 s and more to restart the
        # proxy, which a few hundred quick connection errors would not outlast.
        deadline = time.monotonic() + 240
        for i in itertools.count():
            if stop.is_set() or time.monotonic() > deadline:
                return
            case = Case(upstream, client, stream=(n + i) % 2 == 0)
            case.script(code(f"get_weather(location='c{n}-{i}')"))
            at = phase[0]
            try:
                result = case.ask(messages=[case.user("load")], tools=[WEATHER])
            except (openai.APIError, httpx.HTTPError) as exc:
                errors.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            except BaseException as exc:  # anything else is a failure of the test
                unexpected.append(exc)
                return
            if result.calls() != [("get_weather", {"location": f"c{n}-{i}"})]:
                unexpected.append(AssertionError(f"wrong answer {result.calls()}"))
                return
            oks.append(at)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    second = None
    try:
        wait_for(lambda: oks.count(0) >= 10, "answers before the kill")
        first.process.kill()
        first.process.wait()
        phase[0] = 1
        second = start_proxy(config, tmp_path / "second", port=port)
        wait_for(lambda: oks.count(1) >= 10, "answers after the restart")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if second is not None:
            stop_proxy(second)
    assert not unexpected, unexpected
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    assert errors, "the kill should have cut some requests"


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
