"""``stream: true`` on ``/v1/messages`` (Anthropic SSE, read with httpx: the anthropic SDK is not
installed) and ``/v1/responses`` (the openai SDK) for a code-mode alias, through the real proxy.

Prose goes out as the upstream writes it, code is held, calls follow once the answer is settled;
these tests check that the events are well formed, come while the upstream still writes, and add
up to the same answer as without streaming (test_endpoints.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Case, Proxy
from tests.fake_upstream import FakeUpstream, Gate, Scripted
from tests.test_endpoints import (
    WEATHER,
    assert_code_mode,
    assert_paris_and_oslo_tool_use,
    messages_request,
)
from tests.test_proxy import code


@pytest.fixture
def rcase(upstream: FakeUpstream, client: openai.OpenAI) -> Case:
    return Case(upstream, client, stream=False)


# --- /v1/messages ------------------------------------------------------------------------------


def sse_frames(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The complete SSE frames in ``text`` as (event name, data)."""
    frames = []
    for frame in text.replace("\r\n", "\n").split("\n\n")[:-1]:
        lines = frame.split("\n")
        event = next((line[6:].strip() for line in lines if line.startswith("event:")), None)
        data = "\n".join(line[5:].strip() for line in lines if line.startswith("data:"))
        if data:
            assert event is not None, f"frame without an event: line: {frame!r}"
            frames.append((event, json.loads(data)))
    return frames


@dataclass
class Until:
    """The upstream waits at ``gate`` until the client has seen ``text``; ``frames`` then holds
    the frames the client had. A proxy that waits for the whole answer never sends ``text``
    early, so the gate times out (``gate.timed_out``)."""

    gate: Gate
    text: str
    frames: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def stream_messages(
    proxy: Proxy, until: Until | None = None, **body: Any
) -> list[tuple[str, dict[str, Any]]]:
    """POST a /v1/messages request with ``stream: true``; its SSE frames as (event name, data)."""
    with httpx.stream("POST", **messages_request(proxy, stream=True, **body)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        text = ""
        for piece in response.iter_text():
            text += piece
            if until is not None and not until.gate.release.is_set():
                frames = sse_frames(text)
                sent = "".join(d["delta"].get("text", "") for _, d in frames if "delta" in d)
                if sent == until.text:
                    until.frames = frames
                    until.gate.release.set()
    return sse_frames(text)


def assemble(frames: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Rebuild the message as an Anthropic client does, checking the event grammar on the way."""
    names = [name for name, _ in frames]
    assert all(name == data["type"] for name, data in frames)
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    message = dict(frames[0][1]["message"])
    blocks: list[dict[str, Any]] = []
    open_index: int | None = None
    for name, data in frames[1:-2]:
        if name == "content_block_start":
            assert open_index is None and data["index"] == len(blocks)
            open_index = data["index"]
            blocks.append({**data["content_block"], "_json": ""})
        elif name == "content_block_delta":
            assert data["index"] == open_index
            block, delta = blocks[data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                block["_json"] += delta["partial_json"]
            else:
                raise AssertionError(f"unexpected delta {delta}")
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        else:
            assert name == "ping", name
    assert open_index is None
    for block in blocks:
        partial = block.pop("_json")
        if block["type"] == "tool_use":
            assert block["input"] == {}
            block["input"] = json.loads(partial)
    message["content"] = blocks
    message["stop_reason"] = frames[-2][1]["delta"]["stop_reason"]
    message["usage"] = frames[-2][1]["usage"]
    return message


def test_messages_stream_tool_use(rcase: Case, proxy: Proxy) -> None:
    rcase.script(
        "Let me look.\n"
        + code("# tool: get_weather", "get_weather(location='Paris')", "get_weather('Oslo')")
    )
    message = assemble(
        stream_messages(
            proxy,
            system="You are terse.",
            messages=[{"role": "user", "content": f"Paris and Oslo? [{rcase.key}]"}],
        )
    )
    assert_paris_and_oslo_tool_use(message)
    assert message["usage"]["output_tokens"] == 7
    (seen,) = rcase.seen
    assert_code_mode(seen)
    assert seen["stream"] is True
    assert seen["messages"][0]["content"].startswith("You are terse.")


def test_messages_stream_sends_prose_while_the_upstream_still_writes(
    rcase: Case, proxy: Proxy
) -> None:
    gate = Gate()
    prose = "Let me look.\n"
    answer = prose + code(
        "# tool: get_weather", "get_weather(location='Paris')", "get_weather('Oslo')"
    )
    rcase.script(Scripted(content=answer, pause_after=len(prose) + 5, gate=gate))
    until = Until(gate, "Let me look.")
    frames = stream_messages(
        proxy, until, messages=[{"role": "user", "content": f"Paris and Oslo? [{rcase.key}]"}]
    )
    assert not gate.timed_out
    early = [(name, data) for name, data in until.frames if name != "ping"]
    assert [name for name, _ in early[:2]] == ["message_start", "content_block_start"]
    assert {name for name, _ in early[2:]} == {"content_block_delta"}

    assert_paris_and_oslo_tool_use(assemble(frames))


def test_messages_stream_prose(rcase: Case, proxy: Proxy) -> None:
    rcase.script("Paris is the capital of France.")
    message = assemble(
        stream_messages(
            proxy,
            messages=[{"role": "user", "content": f"Capital of France? [{rcase.key}]"}],
        )
    )
    assert message["stop_reason"] == "end_turn"
    assert message["content"] == [{"type": "text", "text": "Paris is the capital of France."}]


def test_messages_stream_repair_round_counts_both_calls(rcase: Case, proxy: Proxy) -> None:
    rcase.script(
        code("# tool: get_weather", "get_weather(location='Rome', unit='kelvin')"),
        code("# tool: get_weather", "get_weather(location='Rome', unit='celsius')"),
    )
    message = assemble(
        stream_messages(
            proxy,
            tool_choice={"type": "tool", "name": "get_weather"},
            messages=[{"role": "user", "content": f"Rome [{rcase.key}]"}],
        )
    )
    uses = [(b["name"], b["input"]) for b in message["content"] if b["type"] == "tool_use"]
    assert uses == [("get_weather", {"location": "Rome", "unit": "celsius"})]
    assert len(rcase.seen) == 2
    assert message["usage"]["input_tokens"] == 2 * 11


def test_messages_stream_model_error_is_an_error_event(rcase: Case, proxy: Proxy) -> None:
    rcase.script(code("# tool: get_stock", "get_stock(symbol='ACME')"))
    frames = stream_messages(
        proxy,
        model="strict",
        messages=[{"role": "user", "content": f"ACME [{rcase.key}]"}],
    )
    names = [name for name, _ in frames if name != "ping"]
    assert names == ["message_start", "error"]
    error = frames[-1][1]
    assert error["type"] == "error" and "get_stock" in error["error"]["message"]


def test_messages_stream_disabled_alias_passes_through(rcase: Case, proxy: Proxy) -> None:
    native = {
        "id": "call_n1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Lyon"}'},
    }
    rcase.script(Scripted(content=None, tool_calls=[native]))
    message = assemble(
        stream_messages(
            proxy,
            model="plain",
            messages=[{"role": "user", "content": f"Lyon [{rcase.key}]"}],
        )
    )
    uses = [(b["name"], b["input"]) for b in message["content"] if b["type"] == "tool_use"]
    assert uses == [("get_weather", {"location": "Lyon"})]
    (seen,) = rcase.seen
    assert seen["tools"][0]["function"]["name"] == "get_weather"  # native, as LiteLLM bridged it


# --- /v1/responses ------------------------------------------------------------------------------


def stream_responses(client: openai.OpenAI, **kwargs: Any) -> list[Any]:
    with client.responses.create(stream=True, **kwargs) as events:
        return list(events)


def function_calls(items: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(i.name, json.loads(i.arguments)) for i in items if i.type == "function_call"]


def test_responses_stream_function_calls(rcase: Case, client: openai.OpenAI) -> None:
    rcase.script(
        "Checking.\n"
        + code(
            "# tool: get_weather", "get_weather(location='Paris')", "get_weather('Oslo', 'celsius')"
        )
    )
    events = stream_responses(
        client,
        model="coder",
        instructions="You are terse.",
        input=f"Weather in Paris and Oslo? [{rcase.key}]",
        tools=[WEATHER],
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    final = events[-1].response
    expected = [
        ("get_weather", {"location": "Paris"}),
        ("get_weather", {"location": "Oslo", "unit": "celsius"}),
    ]
    assert function_calls(final.output) == expected
    assert final.output_text == "Checking."
    # The events add up to the same items: each added, its arguments streamed, then done.
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert function_calls(done) == expected
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert [json.loads(e.delta) for e in deltas] == [args for _, args in expected]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.output_index for e in added] == [0, 1, 2]
    assert [e.item.type for e in added] == ["message", "function_call", "function_call"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Checking."
    (seen,) = rcase.seen
    assert_code_mode(seen)
    assert seen["stream"] is True


def test_responses_stream_sends_prose_while_the_upstream_still_writes(
    rcase: Case, client: openai.OpenAI
) -> None:
    gate = Gate()
    prose = "Checking.\n"
    answer = prose + code("# tool: get_weather", "get_weather(location='Paris')")
    rcase.script(Scripted(content=answer, pause_after=len(prose) + 5, gate=gate))
    events, early, text = [], None, ""
    with client.responses.create(
        stream=True, model="coder", input=f"Paris? [{rcase.key}]", tools=[WEATHER]
    ) as stream:
        for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta":
                text += event.delta
            if text == "Checking." and not gate.release.is_set():
                early = [e.type for e in events]
                gate.release.set()
    assert not gate.timed_out
    assert early is not None and early[-1] == "response.output_text.delta"
    assert "response.output_item.added" in early and "response.completed" not in early
    final = events[-1].response
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert final.output_text == "Checking."
    assert function_calls(final.output) == [("get_weather", {"location": "Paris"})]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == [(0, "message"), (1, "function_call")]
    (done,) = [e for e in events if e.type == "response.output_text.done"]
    assert done.text == "Checking." and done.item_id == final.output[0].id
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_responses_stream_helper_accumulates_the_calls(rcase: Case, client: openai.OpenAI) -> None:
    """The openai SDK's own stream state machine (``responses.stream``) accepts the events."""
    rcase.script(code("# tool: get_weather", "get_weather(location='Rome')"))
    with client.responses.stream(
        model="coder",
        input=f"Rome [{rcase.key}]",
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert function_calls(final.output) == [("get_weather", {"location": "Rome"})]


def test_responses_stream_prose(rcase: Case, client: openai.OpenAI) -> None:
    rcase.script("Paris.")
    events = stream_responses(
        client, model="coder", input=f"Capital of France? [{rcase.key}]", tools=[WEATHER]
    )
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Paris."
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Paris." and function_calls(final.response.output) == []


def test_responses_stream_model_error_is_response_failed(
    rcase: Case, client: openai.OpenAI
) -> None:
    rcase.script(code("# tool: get_stock", "get_stock(symbol='ACME')"))
    events = stream_responses(client, model="strict", input=f"ACME [{rcase.key}]", tools=[WEATHER])
    assert [e.type for e in events][-1] == "response.failed"
    assert "get_stock" in events[-1].response.error.message
    assert "response.completed" not in [e.type for e in events]


def test_responses_stream_disabled_alias_passes_through(rcase: Case, client: openai.OpenAI) -> None:
    native = {
        "id": "call_n1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location": "Lyon"}'},
    }
    rcase.script(Scripted(content=None, tool_calls=[native]))
    events = stream_responses(client, model="plain", input=f"Lyon [{rcase.key}]", tools=[WEATHER])
    final = events[-1]
    assert final.type == "response.completed"
    assert function_calls(final.response.output) == [("get_weather", {"location": "Lyon"})]
    (seen,) = rcase.seen
    assert seen["tools"][0]["function"]["name"] == "get_weather"
