"""Streaming through the real proxy: progressive prose, held code, OpenAI-shaped deltas, errors.

Progressive delivery is shown by behaviour: the fake upstream pauses mid-answer (``Gate``) and
the client must already hold the prose while the upstream waits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from tests.conftest import Case
from tests.fake_upstream import FakeUpstream, Gate, Scripted
from tests.test_proxy import TIME, WEATHER, code


@pytest.fixture
def case(upstream: FakeUpstream, client: openai.OpenAI) -> Case:
    """These tests read raw streams themselves: one streaming case each."""
    return Case(upstream, client, stream=True)


@dataclass
class Seen:
    """What a client read from one raw stream."""

    chunks: list[Any] = field(default_factory=list)
    content_while_paused: str | None = None  # content received while the upstream waited

    @property
    def content(self) -> str:
        return "".join(c.choices[0].delta.content or "" for c in self.chunks if c.choices)

    @property
    def reasoning(self) -> str:
        return "".join(
            getattr(c.choices[0].delta, "reasoning_content", None) or ""
            for c in self.chunks
            if c.choices
        )

    @property
    def call_deltas(self) -> list[Any]:
        return [t for c in self.chunks if c.choices for t in c.choices[0].delta.tool_calls or []]

    @property
    def finish_reasons(self) -> list[str]:
        return [
            c.choices[0].finish_reason
            for c in self.chunks
            if c.choices and c.choices[0].finish_reason
        ]


def read_stream(
    client: openai.OpenAI, gate: Gate | None = None, until: str = "", **request: Any
) -> Seen:
    """Stream a request. With ``gate``: once the client holds content ending in ``until``,
    note whether the upstream is still paused, then let it go on. A proxy that held that
    content back leaves the upstream waiting until its timeout (``gate.timed_out``)."""
    seen = Seen()
    stream = client.chat.completions.create(
        model=request.pop("model", "coder"), stream=True, **request
    )
    try:
        for chunk in stream:
            seen.chunks.append(chunk)
            if (
                gate is not None
                and not gate.release.is_set()
                and gate.reached.is_set()
                and seen.content.endswith(until)
            ):
                seen.content_while_paused = seen.content
                gate.release.set()
    finally:
        if gate is not None:
            gate.release.set()  # never leave the upstream waiting
    return seen


def test_prose_reaches_the_client_while_the_upstream_is_still_answering(
    case: Case, client: openai.OpenAI
) -> None:
    gate = Gate()
    prose = "The capital of France is Paris. It lies on the Seine"
    case.script(Scripted(content=prose + ", and it is lovely.", pause_after=len(prose), gate=gate))
    seen = read_stream(
        client, gate, until="on the Seine", messages=[case.user("Capital?")], tools=[WEATHER]
    )
    assert not gate.timed_out, "the client got no prose before the upstream finished"
    assert seen.content_while_paused == prose
    assert seen.content == prose + ", and it is lovely."
    assert seen.finish_reasons == ["stop"]


def test_the_response_starts_with_the_upstreams_first_chunk_while_code_is_held(
    case: Case, client: openai.OpenAI
) -> None:
    # LiteLLM starts the HTTP response with the hook's first chunk: it must not wait for text.
    gate = Gate()
    answer = code("# tool: get_weather", "get_weather(location='Rome')")
    case.script(Scripted(content=answer, pause_after=len("```python\n# tool"), gate=gate))
    stream = client.chat.completions.create(
        model="coder", stream=True, messages=[case.user("Rome?")], tools=[WEATHER]
    )
    try:
        first = next(iter(stream))
        upstream_paused = gate.reached.is_set() and not gate.release.is_set()
    finally:
        gate.release.set()
    rest = list(stream)
    assert upstream_paused and not gate.timed_out
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content is None and not first.choices[0].delta.tool_calls
    assert all(c.choices[0].delta.role is None for c in rest if c.choices)
    names = [
        t.function.name for c in rest if c.choices for t in c.choices[0].delta.tool_calls or []
    ]
    assert [n for n in names if n] == ["get_weather"]


def test_an_answer_rejected_before_any_text_ends_the_started_stream_with_an_error_event(
    case: Case, client: openai.OpenAI
) -> None:
    case.script(code("# tool: get_stock", "get_stock(symbol='ACME')"))
    stream = client.chat.completions.create(  # HTTP 200: the stream started
        model="strict", stream=True, messages=[case.user("ACME?")], tools=[WEATHER]
    )
    seen = Seen()
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.chunks.append(chunk)
    assert "get_stock" in info.value.message
    assert [c.choices[0].delta.role for c in seen.chunks] == ["assistant"]
    assert seen.content == "" and seen.call_deltas == [] and seen.finish_reasons == []


def test_prose_streams_then_the_call_goes_out_as_tool_call_deltas(
    case: Case, client: openai.OpenAI
) -> None:
    gate = Gate()
    prose = "Let me check the weather for you.\n\n"
    answer = prose + code("# tool: get_weather", "get_weather(location='Rome')")
    case.script(Scripted(content=answer, pause_after=len(prose) + 9, gate=gate))
    seen = read_stream(
        client,
        gate,
        until="for you.",
        messages=[case.user("Rome?")],
        tools=[WEATHER],
        stream_options={"include_usage": True},
    )
    assert not gate.timed_out
    # The fence had begun ("```python" is 9 characters) but none of it reached the client.
    assert seen.content_while_paused == "Let me check the weather for you."
    assert seen.content == "Let me check the weather for you."
    head, *rest = seen.call_deltas
    assert (head.index, head.type, head.function.name) == (0, "function", "get_weather")
    assert head.id.startswith("call_")
    assert head.function.arguments == ""
    assert all(d.index == 0 and d.id is None and d.function.name is None for d in rest)
    assert json.loads("".join(d.function.arguments for d in rest)) == {"location": "Rome"}
    assert seen.finish_reasons == ["tool_calls"]
    # The usage chunk comes last, with no choices.
    assert seen.chunks[-1].choices == [] and seen.chunks[-1].usage.prompt_tokens == 11


def test_no_usage_chunk_unless_asked(case: Case, client: openai.OpenAI) -> None:
    case.script(code("get_weather(location='Rome')"))
    seen = read_stream(client, messages=[case.user("Rome?")], tools=[WEATHER])
    assert all(getattr(c, "usage", None) is None for c in seen.chunks)
    assert seen.finish_reasons == ["tool_calls"]
    assert seen.chunks[-1].choices[0].finish_reason == "tool_calls"


def test_think_streams_as_reasoning_and_is_never_read_as_code(
    case: Case, client: openai.OpenAI
) -> None:
    thought = "<think>Maybe get_weather(location='Wrong')? No, Madrid."
    answer = thought + "</think>\n" + code("get_weather(location='Madrid')")
    case.script(Scripted(content=answer, reasoning_content="Upstream thinks."))
    seen = read_stream(client, messages=[case.user("Madrid")], tools=[WEATHER])
    assert seen.reasoning == "Upstream thinks.\nMaybe get_weather(location='Wrong')? No, Madrid."
    assert seen.content == ""
    names = [d.function.name for d in seen.call_deltas if d.function.name]
    assert names == ["get_weather"]
    args = json.loads("".join(d.function.arguments or "" for d in seen.call_deltas))
    assert args == {"location": "Madrid"}


# "thinker" has think_prefilled: the chat template wrote "<think>", the answer starts inside it
@pytest.mark.parametrize(("model", "opening"), [("coder", "<think>"), ("thinker", "")])
def test_reasoning_reaches_the_client_while_the_upstream_is_still_thinking(
    case: Case, client: openai.OpenAI, model: str, opening: str
) -> None:
    gate = Gate()
    thought = opening + "The user asks about Madrid, so "
    case.script(
        Scripted(
            content=thought + "I answer.</think>It is sunny.", pause_after=len(thought), gate=gate
        )
    )
    stream = client.chat.completions.create(
        model=model, stream=True, messages=[case.user("Madrid")], tools=[WEATHER]
    )
    reasoning = ""
    while_paused = None
    content = ""
    for chunk in stream:
        if not chunk.choices:
            continue
        reasoning += getattr(chunk.choices[0].delta, "reasoning_content", None) or ""
        content += chunk.choices[0].delta.content or ""
        if reasoning.endswith("Madrid, so") and not gate.release.is_set():
            while_paused = reasoning if gate.reached.is_set() else None
            gate.release.set()
    assert not gate.timed_out
    assert while_paused == "The user asks about Madrid, so"
    assert reasoning == "The user asks about Madrid, so I answer."
    assert content == "It is sunny."


ANSWERS = [
    "The capital of France is Paris.",
    "Let me check.\n\n"
    + code("# tool: get_weather", "get_weather(location='Rome')")
    + "\n\nBack soon.",
    "Here is how:\n\n" + code("def add(a, b):", "    return a + b") + "\n\nUse it well.",
    "Sure.\nget_weather(location='Lima')\nget_time(timezone='America/Lima')",
    "<think>Rome or Madrid? get_weather(location='X')</think>\n" + code("get_time('Europe/Rome')"),
    code("# tool: none") + "\n\nNo tool fits: the capital of France is Paris.",
    "Two:\n" + code("get_weather(location='A')", "get_weather(location='B', unit='celsius')"),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=[a[:24] for a in ANSWERS])
def test_the_sdk_reassembles_the_stream_to_the_non_streaming_answer(
    upstream: FakeUpstream, client: openai.OpenAI, answer: str
) -> None:
    results = []
    for stream in (False, True):
        case = Case(upstream, client, stream=stream)
        case.script(Scripted(content=answer, chunk_size=3))
        results.append(case.ask(messages=[case.user("q")], tools=[WEATHER, TIME]))
    whole, streamed = results
    assert streamed.content == whole.content
    assert streamed.calls() == whole.calls()
    assert streamed.finish_reason == whole.finish_reason
    assert streamed.reasoning_content == whole.reasoning_content


def test_an_error_after_prose_was_sent_ends_the_stream_with_an_error_event(
    case: Case, client: openai.OpenAI
) -> None:
    case.script("Let me check.\n\n" + code("# tool: get_stock", "get_stock(symbol='ACME')"))
    seen = Seen()
    with pytest.raises(openai.APIError) as info:
        stream = client.chat.completions.create(
            model="strict", stream=True, messages=[case.user("ACME?")], tools=[WEATHER]
        )
        for chunk in stream:
            seen.chunks.append(chunk)
    assert "get_stock" in info.value.message
    assert seen.content == "Let me check."  # sent before the code was known to be wrong
    assert seen.call_deltas == [] and seen.finish_reasons == []  # never half a call


def test_a_repair_round_while_streaming_sends_the_repaired_calls(
    case: Case, client: openai.OpenAI
) -> None:
    case.script(
        "Checking.\n" + code("# tool: get_forecast", "get_forecast(city='Oslo')"),
        code("get_weather(location='Oslo')"),
    )
    seen = read_stream(client, messages=[case.user("Oslo?")], tools=[WEATHER])
    assert seen.content == "Checking."  # the first answer's prose stays; nothing taken back
    assert [d.function.name for d in seen.call_deltas if d.function.name] == ["get_weather"]
    assert seen.finish_reasons == ["tool_calls"]
    assert len(case.seen) == 2


def test_tool_choice_required_sends_no_prose_before_the_end(
    case: Case, client: openai.OpenAI
) -> None:
    case.script("It is probably sunny.", code("get_weather(location='Oslo')"))
    seen = read_stream(
        client, messages=[case.user("Oslo?")], tools=[WEATHER], tool_choice="required"
    )
    assert seen.content == ""  # the prose answer was rejected, so it never reached the client
    assert [d.function.name for d in seen.call_deltas if d.function.name] == ["get_weather"]


def test_a_cut_upstream_stream_ends_in_an_error_not_a_hang(
    case: Case, client: openai.OpenAI
) -> None:
    answer = "Let me check.\n\n" + code("get_weather(location='Rome')")
    case.script(Scripted(content=answer, chunk_size=4, cut_stream_after=6))
    seen = Seen()
    with pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model="coder", stream=True, messages=[case.user("Rome?")], tools=[WEATHER]
        )
        for chunk in stream:
            seen.chunks.append(chunk)
    assert seen.call_deltas == [] and seen.finish_reasons == []
    assert "get_weather" not in seen.content


def test_a_truncated_answer_is_repaired_while_streaming(case: Case, client: openai.OpenAI) -> None:
    # The upstream stopped mid-call (max_tokens): the answer is read as it is, like without
    # streaming, and the repair round's call goes out.
    case.script(
        Scripted(content="```python\nget_weather(location='Ro", finish_reason="length"),
        code("get_weather(location='Rome')"),
    )
    seen = read_stream(client, messages=[case.user("Rome?")], tools=[WEATHER])
    assert seen.content == ""
    args = json.loads("".join(d.function.arguments or "" for d in seen.call_deltas))
    assert args == {"location": "Rome"}


def test_upstream_reasoning_and_think_join_as_without_streaming(
    upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    results = []
    for stream in (False, True):
        case = Case(upstream, client, stream=stream)
        case.script(
            Scripted(
                content="<think>Rome, so get_time.</think>\n" + code("get_time('Europe/Rome')"),
                reasoning_content="The upstream's own thought.",
            )
        )
        results.append(case.ask(messages=[case.user("q")], tools=[WEATHER, TIME]))
    whole, streamed = results
    assert whole.reasoning_content == "The upstream's own thought.\nRome, so get_time."
    assert streamed.reasoning_content == whole.reasoning_content
    assert streamed.calls() == whole.calls() == [("get_time", {"timezone": "Europe/Rome"})]
