"""``/v1/messages`` (Anthropic-style) in code mode: the request is read as a chat request with
LiteLLM's own adapter, rewritten by the chat stages, and written back as Anthropic ``system`` and
``messages``; the answer becomes Anthropic ``tool_use`` content blocks.

For ``call_type="anthropic_messages"`` LiteLLM's hooks see Anthropic shapes: ``messages`` with
content blocks, ``system``, ``tools=[{name, input_schema}]`` before the call, and a plain dict
(an Anthropic message) after it; per-request metadata lives in ``data["litellm_metadata"]``
(litellm-facts.md sections 3 and 7). ``LiteLLMAnthropicMessagesAdapter`` is internal in litellm
1.106.2 (pinned).

``stream: true`` is progressive: LiteLLM's streaming hook gets raw Anthropic SSE bytes; their
text goes through the same assembler as chat completions (prose out at once, code held; calls
as each is read when no repair round can follow: early.py).
Not supported (HTTP 400 saying so): server tools (``type`` other than ``custom``). Requests
without tools pass untouched.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from .answer import Reply, ToolCall
from .config import AliasSettings
from .early import EarlyCalls, remaining
from .grammar import GRAMMAR_FIELDS
from .history import text_of
from .responses_api import ENDPOINT, METADATA, Settle
from .rewrite import STATE_KEY, refuse_unsupported, rewrite_request, stream_assembler

__all__ = [
    "is_anthropic_message",
    "rewrite_messages_request",
    "settle_messages",
    "stream_messages",
]

_NAMES = "anthropic_tool_names"  # in our state: truncated chat tool name -> client's name


def _plain(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda o: o.model_dump() if hasattr(o, "model_dump") else str(o))
    )


def rewrite_messages_request(data: dict[str, Any], settings: AliasSettings) -> dict[str, Any]:
    """Rewrite an Anthropic Messages request for an enabled alias in place."""
    from litellm.llms.anthropic.pass_through.adapters.transformation import (
        LiteLLMAnthropicMessagesAdapter,
    )

    # Anthropic client tools have no type or "custom"; others are server tools.
    refuse_unsupported(data, endpoint="/v1/messages", tool_types=(None, "custom"), kind="client")
    chat, names = LiteLLMAnthropicMessagesAdapter().translate_anthropic_to_openai(dict(data))
    chat = _plain(chat)
    chat["metadata"] = data.setdefault(METADATA, {})
    rewrite_request(chat, settings)
    chat["metadata"][STATE_KEY][_NAMES] = dict(names or {})
    data.update({k: chat[k] for k in GRAMMAR_FIELDS if k in chat})  # the grammar, if any
    chat["metadata"][STATE_KEY][ENDPOINT] = "/v1/messages"
    messages = chat["messages"]
    system = None
    if messages and messages[0].get("role") == "system":
        system = text_of(messages.pop(0).get("content"))
    for field in ("tools", "tool_choice"):
        data.pop(field, None)
    if system:
        data["system"] = system
    else:
        data.pop("system", None)
    data["messages"] = [{"role": m["role"], "content": text_of(m.get("content"))} for m in messages]
    return data


def is_anthropic_message(response: Any) -> bool:
    return isinstance(response, dict) and response.get("type") == "message"


def _chat_view(data: Mapping[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if data.get("system"):
        messages.append({"role": "system", "content": text_of(data["system"])})
    for message in data.get("messages") or []:
        messages.append({"role": message["role"], "content": text_of(message.get("content"))})
    view: dict[str, Any] = {
        "model": data.get("model"),
        "messages": messages,
        "metadata": data.get(METADATA),
    }
    for key in ("temperature", "top_p", "max_tokens"):
        if data.get(key) is not None:
            view[key] = data[key]
    view.update({k: data[k] for k in GRAMMAR_FIELDS if k in data})  # repair rounds keep it
    return view


def _tool_use(call: ToolCall, names: Mapping[str, str]) -> dict[str, Any]:
    """A call's ``tool_use`` block, under the client's own tool name."""
    return {
        "type": "tool_use",
        "id": f"toolu_{call.id.removeprefix('call_')}",
        "name": names.get(call.name, call.name),
        "input": json.loads(call.arguments),
    }


def _tool_uses(reply: Reply, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """A ``tool_use`` block per call."""
    return [_tool_use(call, names) for call in reply.tool_calls]


def _reply_content(kept: list[Any], reply: Reply, names: Mapping[str, str]) -> list[Any]:
    """The message content for a reply: ``kept`` (upstream thinking blocks), the prose, then the
    ``tool_use`` blocks."""
    text = [{"type": "text", "text": reply.content}] if reply.content else []
    return [*kept, *text, *_tool_uses(reply, names)]


def _stop_reason(reply: Reply, upstream: Any) -> Any:
    if reply.tool_calls:
        return "tool_use"
    return "end_turn" if upstream in (None, "tool_use") else upstream


def _is_thinking(block: Any) -> bool:
    return isinstance(block, Mapping) and block.get("type") in ("thinking", "redacted_thinking")


async def settle_messages(data: Mapping[str, Any], response: dict[str, Any], settle: Settle) -> Any:
    """Replace the Anthropic message's content by the reply (``tool_use`` blocks for calls)."""
    from litellm.types.utils import Usage

    state = (data.get(METADATA) or {}).get(STATE_KEY)
    if not isinstance(state, Mapping):
        return None
    blocks = response.get("content") or []
    text = "".join(
        str(b.get("text", "")) for b in blocks if isinstance(b, Mapping) and b.get("type") == "text"
    )
    usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    settled = await settle(text, _chat_view(data), state, usage)
    reply = settled.reply
    kept = [b for b in blocks if _is_thinking(b)]
    response["content"] = _reply_content(kept, reply, state.get(_NAMES) or {})
    response["stop_reason"] = _stop_reason(reply, response.get("stop_reason"))
    totals = response.get("usage")
    if isinstance(totals, dict) and usage.total_tokens:
        totals["input_tokens"] = (totals.get("input_tokens") or 0) + usage.prompt_tokens
        totals["output_tokens"] = (totals.get("output_tokens") or 0) + usage.completion_tokens
    return response


# --- stream: true ---------------------------------------------------------------------------


def _frame(event: dict[str, Any]) -> bytes:
    # Anthropic clients pick events by the ``event:`` line, so every frame carries one.
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _sse_events(buffer: str) -> tuple[list[dict[str, Any]], str]:
    """The complete SSE frames in ``buffer`` as event dicts, and the incomplete rest."""
    events: list[dict[str, Any]] = []
    *frames, rest = buffer.replace("\r\n", "\n").split("\n\n")
    for frame in frames:
        data = "\n".join(
            line[5:].lstrip() for line in frame.split("\n") if line.startswith("data:")
        )
        if data:
            event = json.loads(data)
            if isinstance(event, dict):
                events.append(event)
    return events, rest


def _block_frames(index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One finished content block as Anthropic streams it: start, its delta(s), stop."""
    kind = block.get("type")
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": block["text"]}]
    elif kind == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": ""}
        deltas = [{"type": "thinking_delta", "thinking": block.get("thinking", "")}]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:  # redacted_thinking: whole in its start event
        start, deltas = dict(block), []
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]


class _Blocks:
    """Numbers the content blocks sent to the client; a text block stays open for more text."""

    def __init__(self) -> None:
        self.count = 0
        self.text_open = False

    def text(self, text: str) -> list[dict[str, Any]]:
        if not self.text_open and self.count:
            text = text.lstrip()  # a text block after others: no paragraph break at its start
        if not text:
            return []
        events = []
        if not self.text_open:
            start = {"type": "text", "text": ""}
            events.append(
                {"type": "content_block_start", "index": self.count, "content_block": start}
            )
            self.text_open = True
        delta = {"type": "text_delta", "text": text}
        return [*events, {"type": "content_block_delta", "index": self.count, "delta": delta}]

    def close_text(self) -> list[dict[str, Any]]:
        if not self.text_open:
            return []
        self.text_open = False
        self.count += 1
        return [{"type": "content_block_stop", "index": self.count - 1}]

    def block(self, block: Mapping[str, Any]) -> list[dict[str, Any]]:
        events = [*self.close_text(), *_block_frames(self.count, block)]
        self.count += 1
        return events


def _message_start(data: Mapping[str, Any]) -> dict[str, Any]:
    """For an upstream stream that sent text before (or without) its own ``message_start``."""
    return {
        "type": "message_start",
        "message": {
            "id": "msg_toolcode",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": data.get("model"),
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        },
    }


async def stream_messages(
    data: Mapping[str, Any],
    state: Mapping[str, Any],
    response: AsyncIterator[Any],
    settle: Settle,
    early: EarlyCalls | None = None,
) -> AsyncGenerator[bytes, None]:
    """A streamed Anthropic message (raw SSE bytes, as LiteLLM hands them to the hook) in code
    mode, progressive like chat completions (stream.py): prose goes out in a text block as the
    model writes it, possible code is held; once the answer is settled (repair rounds included)
    come the rest of the text, a ``tool_use`` block per call, ``message_delta`` with the stop
    reason and usage, and ``message_stop``. With ``early`` (no repair round can follow:
    early.py) each call's ``tool_use`` block goes out as soon as its line is read, after closing
    the text block; prose after it is a text block of its own. Upstream thinking blocks are
    sent whole, before the text if none was sent yet. Errors after ``message_start`` are an
    ``error`` event."""
    from litellm.types.utils import Usage

    decode = codecs.getincrementaldecoder("utf-8")().decode  # a frame may split a character
    buffer = ""
    started = False
    assembler = stream_assembler(state)
    out = _Blocks()
    thinking: dict[int, dict[str, Any]] = {}  # upstream thinking blocks by upstream index
    stop_reason: Any = None
    totals: dict[str, Any] = {}
    async for chunk in response:
        buffer += decode(chunk) if isinstance(chunk, bytes) else str(chunk)
        events, buffer = _sse_events(buffer)
        for event in events:
            kind = event.get("type")
            if kind == "message_start" and not started:
                started = True
                yield _frame(event)
            elif kind == "error":  # the upstream failed mid-stream: the client gets its error
                yield _frame(event)
                return
            elif kind == "content_block_start":
                block = dict(event.get("content_block") or {})
                if _is_thinking(block):
                    thinking[int(event["index"])] = block
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                thought = thinking.get(int(event["index"]))
                if thought is not None:
                    for field in ("thinking", "signature"):
                        if field in delta:
                            thought[field] = thought.get(field, "") + str(delta[field])
                elif "text" in delta:
                    frames: list[dict[str, Any]] = []
                    for sent in assembler.feed(str(delta["text"])):
                        if sent.kind == "content":  # <think> text is dropped, as unstreamed
                            frames += out.text(sent.text)
                    release = early.feed(assembler) if early is not None else None
                    for call in release.calls if release is not None else ():
                        frames += out.block(_tool_use(call, state.get(_NAMES) or {}))
                    if frames and not started:
                        started = True
                        yield _frame(_message_start(data))
                    for frame in frames:
                        yield _frame(frame)
            elif kind == "message_delta":
                stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                totals.update(event.get("usage") or {})
    if not started:
        yield _frame(_message_start(data))
    usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    # No await between the last upstream event and settle: its spend-log facts must land.
    settled = await settle(assembler.text, _chat_view(data), state, usage)
    reply = settled.reply
    # the client has the calls sent early: the final reading must begin with them
    calls = remaining(reply.tool_calls, early.sent if early is not None else ())
    frames = []
    kept = [thinking[i] for i in sorted(thinking)]
    if not out.text_open:  # no text open: thinking before the text, as unstreamed
        for block in kept:
            frames += out.block(block)
        kept = []
    for rest in assembler.finish(reply.content, reply.reasoning):
        if rest.kind == "content":
            frames += out.text(rest.text)
    for block in [*kept, *(_tool_use(call, state.get(_NAMES) or {}) for call in calls)]:
        frames += out.block(block)
    frames += out.close_text()
    for frame in frames:
        yield _frame(frame)
    totals["input_tokens"] = (totals.get("input_tokens") or 0) + usage.prompt_tokens
    totals["output_tokens"] = (totals.get("output_tokens") or 0) + usage.completion_tokens
    yield _frame(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(reply, stop_reason), "stop_sequence": None},
            "usage": totals,
        }
    )
    yield _frame({"type": "message_stop"})
