"""Streaming through the real proxy, without waiting: a prose delta goes out before the next
one arrives, and with no repair round to follow (the ``strict`` alias) each call goes out as
soon as its line is read, while the upstream is still answering; with a repair round possible
(``coder``) calls still wait for the end.

As in test_proxy_stream.py, by behaviour: the fake upstream pauses (``Gate``) until the client
holds what must already have reached it, and goes on by itself after the gate's timeout, which
the test then sees as ``gate.timed_out``.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import Case
from tests.fake_upstream import FakeUpstream, Gate, Scripted
from tests.test_proxy import TIME, WEATHER
from tests.test_proxy_stream import Seen, read_stream

HEAD = "```python\n# tool: get_weather\nget_weather(location='Rome')\n"
TAIL = "get_time(timezone='Europe/Rome')\n```"


@pytest.fixture
def case(upstream: FakeUpstream, client: openai.OpenAI) -> Case:
    return Case(upstream, client, stream=True)


def names(deltas: list[Any]) -> list[str]:
    return [d.function.name for d in deltas if d.function and d.function.name]


def read_until_calls(
    client: openai.OpenAI, gate: Gate, count: int, **request: Any
) -> tuple[Seen, list[Any]]:
    """Stream a request; once the upstream paused and the client holds ``count`` calls, note
    their deltas (returned with what was read) and let the upstream go on."""
    seen = Seen()
    paused: list[Any] = []
    stream = client.chat.completions.create(model=request.pop("model"), stream=True, **request)
    try:
        for chunk in stream:
            seen.chunks.append(chunk)
            # timed_out is set before the upstream goes on, so before the client sees more
            still_paused = gate.reached.is_set() and not (gate.release.is_set() or gate.timed_out)
            # each call is two deltas: index, id and name, then the arguments
            if still_paused and len(seen.call_deltas) >= 2 * count:
                paused = list(seen.call_deltas)
                gate.release.set()
    finally:
        gate.release.set()
    return seen, paused


def calls_of(deltas: list[Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """(index, name, arguments) of each call, reassembled from its deltas."""
    heads = {d.index: d.function.name for d in deltas if d.function and d.function.name}
    arguments: dict[int, str] = {}
    for d in deltas:
        arguments[d.index] = arguments.get(d.index, "") + (d.function.arguments or "")
    return [(i, heads[i], json.loads(arguments[i])) for i in sorted(heads)]


def test_a_first_prose_word_reaches_the_client_before_the_next_delta(
    case: Case, client: openai.OpenAI
) -> None:
    gate = Gate()
    # The upstream stops after its first delta: "The" cannot begin code, so it must go out now.
    case.script(Scripted(content="The weather is mild.", pause_after=4, gate=gate))
    seen = read_stream(client, gate, until="The", messages=[case.user("Paris?")], tools=[WEATHER])
    assert not gate.timed_out, "the first word waited for the next delta"
    assert seen.content_while_paused == "The"
    assert seen.content == "The weather is mild."


def test_without_repair_rounds_a_call_goes_out_while_the_upstream_still_answers(
    case: Case, client: openai.OpenAI
) -> None:
    gate = Gate()
    case.script(Scripted(content=HEAD + TAIL, pause_after=len(HEAD), gate=gate))
    seen, paused = read_until_calls(
        client, gate, 1, model="strict", messages=[case.user("Rome?")], tools=[WEATHER, TIME]
    )
    assert not gate.timed_out, "the first call waited for the end of the answer"
    assert calls_of(paused) == [(0, "get_weather", {"location": "Rome"})]
    assert calls_of(seen.call_deltas) == [
        (0, "get_weather", {"location": "Rome"}),
        (1, "get_time", {"timezone": "Europe/Rome"}),
    ]
    heads = [d for d in seen.call_deltas if d.function and d.function.name]
    assert len({d.id for d in heads}) == 2 and all(d.id.startswith("call_") for d in heads)
    assert seen.finish_reasons == ["tool_calls"] and seen.content == ""


def test_without_repair_rounds_a_named_tool_choice_call_goes_out_early_too(
    case: Case, client: openai.OpenAI
) -> None:
    gate = Gate()
    answer = HEAD + "get_weather(location='Oslo')\n```"
    case.script(Scripted(content=answer, pause_after=len(HEAD), gate=gate))
    seen, paused = read_until_calls(
        client,
        gate,
        1,
        model="strict",
        messages=[case.user("Rome and Oslo?")],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert not gate.timed_out
    assert names(paused) == ["get_weather"]
    assert names(seen.call_deltas) == ["get_weather", "get_weather"]
    assert seen.finish_reasons == ["tool_calls"]


def test_with_a_repair_round_possible_calls_wait_for_the_end(
    case: Case, client: openai.OpenAI
) -> None:
    # The gate's short timeout is how the upstream goes on when no call reaches the client.
    gate = Gate(timeout=1.0)
    case.script(Scripted(content=HEAD + TAIL, pause_after=len(HEAD), gate=gate))
    seen, paused = read_until_calls(
        client, gate, 1, model="coder", messages=[case.user("Rome?")], tools=[WEATHER, TIME]
    )
    assert gate.timed_out, "a call went out while a repair round could still replace it"
    assert paused == []
    assert names(seen.call_deltas) == ["get_weather", "get_time"]
    assert seen.finish_reasons == ["tool_calls"]


def test_a_later_bad_call_after_an_early_one_ends_in_an_error_event(
    case: Case, client: openai.OpenAI
) -> None:
    case.script(HEAD + "get_stock(symbol='ACME')\n```")
    seen = Seen()
    with pytest.raises(openai.APIError) as info:
        stream = client.chat.completions.create(
            model="strict", stream=True, messages=[case.user("Rome?")], tools=[WEATHER, TIME]
        )
        for chunk in stream:
            seen.chunks.append(chunk)
    assert "get_stock" in info.value.message
    assert names(seen.call_deltas) == ["get_weather"]  # sent before the bad line was read
    assert seen.finish_reasons == []
