"""Calls sent before the end on ``/v1/messages`` and ``/v1/responses``, through the real proxy:
with no repair round to follow (the ``strict`` alias) each call's ``tool_use`` block or
``function_call`` item goes out as soon as its line is read, while the upstream still writes;
with a repair round possible (``coder``) calls wait for the end (early.py).

As in test_proxy_stream_early.py, by behaviour: the fake upstream pauses (``Gate``) after the
first call's line until the client holds that call, and goes on by itself after the gate's
timeout, which the test then sees as ``gate.timed_out``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Case, Proxy
from tests.fake_upstream import FakeUpstream, Gate, Scripted
from tests.test_endpoints import ANTHROPIC_WEATHER, WEATHER, messages_request
from tests.test_endpoints_stream import assemble, sse_frames
from tests.test_proxy import TIME

PROSE = "Let me look.\n"
HEAD = "```python\n# tool: get_weather\nget_weather(location='Rome')\n"
TAIL = "get_time(timezone='Europe/Rome')\n```"
ROME = [("get_weather", {"location": "Rome"}), ("get_time", {"timezone": "Europe/Rome"})]
ANTHROPIC_TIME = {
    "name": "get_time",
    "description": TIME["function"]["description"],
    "input_schema": TIME["function"]["parameters"],
}
RESPONSES_TIME = {"type": "function", **TIME["function"]}


@pytest.fixture
def rcase(upstream: FakeUpstream, client: openai.OpenAI) -> Case:
    return Case(upstream, client, stream=False)


def paused_answer(answer: str, gate: Gate) -> Scripted:
    return Scripted(content=answer, pause_after=len(PROSE + HEAD), gate=gate)


# --- /v1/messages ------------------------------------------------------------------------------


def messages_until_tool_use(
    proxy: Proxy, gate: Gate, model: str, key: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """Stream a /v1/messages request; once the upstream paused and the client holds a whole
    ``tool_use`` block, note the frames so far and let the upstream go on. (paused, all)"""
    request = messages_request(
        proxy,
        stream=True,
        model=model,
        tools=[ANTHROPIC_WEATHER, ANTHROPIC_TIME],
        messages=[{"role": "user", "content": f"Rome? [{key}]"}],
    )
    paused: list[tuple[str, dict[str, Any]]] = []
    text = ""
    try:
        with httpx.stream("POST", **request) as response:
            assert response.status_code == 200, response.read()
            for piece in response.iter_text():
                text += piece
                still_paused = gate.reached.is_set() and not (
                    gate.release.is_set() or gate.timed_out
                )
                frames = sse_frames(text)
                if still_paused and any(
                    name == "content_block_stop" and blocks_of(frames)[d["index"]] == "tool_use"
                    for name, d in frames
                ):
                    paused = frames
                    gate.release.set()
    finally:
        gate.release.set()
    return paused, sse_frames(text)


def blocks_of(frames: list[tuple[str, dict[str, Any]]]) -> dict[int, str]:
    return {
        d["index"]: d["content_block"]["type"]
        for name, d in frames
        if name == "content_block_start"
    }


def uses(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(b["name"], b["input"]) for b in message["content"] if b["type"] == "tool_use"]


def test_messages_without_repair_rounds_a_tool_use_goes_out_while_the_upstream_answers(
    rcase: Case, proxy: Proxy
) -> None:
    gate = Gate()
    rcase.script(paused_answer(PROSE + HEAD + TAIL, gate))
    paused, frames = messages_until_tool_use(proxy, gate, "strict", rcase.key)
    assert not gate.timed_out, "the first call waited for the end of the answer"
    starts = [d["content_block"] for name, d in paused if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use"]
    assert starts[1]["name"] == "get_weather"
    message = assemble(frames)  # checks the event grammar: one block open at a time
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "tool_use"]
    assert message["content"][0]["text"] == "Let me look."
    assert uses(message) == ROME
    ids = [b["id"] for b in message["content"][1:]]
    assert ids[0] == starts[1]["id"] and len(set(ids)) == 2
    assert message["stop_reason"] == "tool_use"


def test_messages_with_a_repair_round_possible_tool_use_waits_for_the_end(
    rcase: Case, proxy: Proxy
) -> None:
    gate = Gate(timeout=1.0)
    rcase.script(paused_answer(PROSE + HEAD + TAIL, gate))
    paused, frames = messages_until_tool_use(proxy, gate, "coder", rcase.key)
    assert gate.timed_out, "a call went out while a repair round could still replace it"
    assert paused == []
    assert uses(assemble(frames)) == ROME


def test_messages_prose_after_an_early_tool_use_is_a_text_block_of_its_own(
    rcase: Case, proxy: Proxy
) -> None:
    rcase.script(PROSE + HEAD + TAIL + "\nBoth are on their way.")
    _, frames = messages_until_tool_use(proxy, Gate(timeout=0.0), "strict", rcase.key)
    message = assemble(frames)
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "tool_use", "text"]
    assert [message["content"][i]["text"] for i in (0, 3)] == [
        "Let me look.",
        "Both are on their way.",
    ]
    assert uses(message) == ROME


def test_messages_a_later_bad_call_after_an_early_tool_use_is_an_error_event(
    rcase: Case, proxy: Proxy
) -> None:
    rcase.script(PROSE + HEAD + "get_stock(symbol='ACME')\n```")
    _, frames = messages_until_tool_use(proxy, Gate(timeout=0.0), "strict", rcase.key)
    names = [name for name, _ in frames if name != "ping"]
    assert names[-1] == "error" and "message_stop" not in names
    assert "get_stock" in frames[-1][1]["error"]["message"]
    starts = [d["content_block"] for name, d in frames if name == "content_block_start"]
    assert [(b["type"], b.get("name")) for b in starts] == [
        ("text", None),
        ("tool_use", "get_weather"),
    ]


# --- /v1/responses ------------------------------------------------------------------------------


def responses_until_call(
    client: openai.OpenAI, gate: Gate, model: str, key: str
) -> tuple[list[Any], list[Any]]:
    """Stream a /v1/responses request; once the upstream paused and the client holds a whole
    ``function_call`` item, note the events so far and let the upstream go on. (paused, all)"""
    events: list[Any] = []
    paused: list[Any] = []
    try:
        with client.responses.create(
            stream=True, model=model, input=f"Rome? [{key}]", tools=[WEATHER, RESPONSES_TIME]
        ) as stream:
            for event in stream:
                events.append(event)
                still_paused = gate.reached.is_set() and not (
                    gate.release.is_set() or gate.timed_out
                )
                if still_paused and any(
                    e.type == "response.output_item.done" and e.item.type == "function_call"
                    for e in events
                ):
                    paused = list(events)
                    gate.release.set()
    finally:
        gate.release.set()
    return paused, events


def function_calls(items: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(i.name, json.loads(i.arguments)) for i in items if i.type == "function_call"]


def test_responses_without_repair_rounds_a_call_goes_out_while_the_upstream_answers(
    rcase: Case, client: openai.OpenAI
) -> None:
    gate = Gate()
    rcase.script(paused_answer(PROSE + HEAD + TAIL, gate))
    paused, events = responses_until_call(client, gate, "strict", rcase.key)
    assert not gate.timed_out, "the first call waited for the end of the answer"
    assert "response.completed" not in [e.type for e in paused]
    early = [e.item for e in paused if e.type == "response.output_item.done"]
    assert [i.type for i in early] == ["message", "function_call"]
    assert function_calls(early) == ROME[:1]
    final = events[-1].response
    assert events[-1].type == "response.completed"
    assert [i.type for i in final.output] == ["message", "function_call", "function_call"]
    assert final.output_text == "Let me look."
    assert function_calls(final.output) == ROME
    assert final.output[1].call_id == early[1].call_id  # the id the client already has
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.output_index for e in added] == [0, 1, 2]
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [i.id for i in done] == [i.id for i in final.output]
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_responses_with_a_repair_round_possible_calls_wait_for_the_end(
    rcase: Case, client: openai.OpenAI
) -> None:
    gate = Gate(timeout=1.0)
    rcase.script(paused_answer(PROSE + HEAD + TAIL, gate))
    paused, events = responses_until_call(client, gate, "coder", rcase.key)
    assert gate.timed_out, "a call went out while a repair round could still replace it"
    assert paused == []
    assert function_calls(events[-1].response.output) == ROME


def test_responses_prose_after_an_early_call_is_a_message_of_its_own(
    rcase: Case, client: openai.OpenAI
) -> None:
    rcase.script(PROSE + HEAD + TAIL + "\nBoth are on their way.")
    with client.responses.stream(
        model="strict",
        input=f"Rome? [{rcase.key}]",
        tools=[WEATHER, RESPONSES_TIME],  # type: ignore[list-item]
    ) as stream:  # the openai SDK's own stream state machine accepts the events
        for _ in stream:
            pass
        final = stream.get_final_response()
    kinds = [i.type for i in final.output]
    assert kinds == ["message", "function_call", "function_call", "message"]
    texts = [i.content[0].text for i in final.output if i.type == "message"]
    assert texts == ["Let me look.", "Both are on their way."]
    assert final.output[0].id != final.output[3].id
    assert function_calls(final.output) == ROME


def test_responses_a_later_bad_call_after_an_early_one_is_response_failed(
    rcase: Case, client: openai.OpenAI
) -> None:
    rcase.script(PROSE + HEAD + "get_stock(symbol='ACME')\n```")
    _, events = responses_until_call(client, Gate(timeout=0.0), "strict", rcase.key)
    assert events[-1].type == "response.failed"
    assert "get_stock" in events[-1].response.error.message
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert function_calls(done) == ROME[:1]
