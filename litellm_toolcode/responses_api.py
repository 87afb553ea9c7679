"""``/v1/responses`` in code mode: the Responses request is read as a chat request, rewritten by
the same stages as ``/v1/chat/completions``, and written back in the Responses shape; the answer
becomes Responses ``function_call`` output items.

Why a module of its own: for ``call_type="aresponses"`` LiteLLM's hooks see the endpoint's own
shapes (``input``/``instructions``/flat ``tools`` before the call, a ``ResponsesAPIResponse``
after it), and the per-request metadata that reaches spend logs is ``data["litellm_metadata"]``,
not ``data["metadata"]`` (litellm-facts.md sections 3 and 7). The Responses <-> chat conversions
are LiteLLM's own (``LiteLLMCompletionResponsesConfig``, internal in litellm 1.106.2: pinned).

``stream: true`` is progressive (``stream_responses``: prose as it comes, code held, calls once
settled, or as each is read when no repair round can follow: early.py). Not supported (HTTP
400 with a message saying so): ``previous_response_id`` (the plugin needs the whole history to
show it as code), and non-function tools (web search, file search, MCP...). Requests without
tools pass untouched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from .answer import ToolCall
from .config import AliasSettings
from .early import EarlyCalls, remaining
from .errors import ModelOutputError, RequestError
from .grammar import GRAMMAR_FIELDS
from .history import text_of
from .rewrite import STATE_KEY, refuse_unsupported, rewrite_request, stream_assembler

__all__ = [
    "ENDPOINT",
    "METADATA",
    "chat_view",
    "endpoint_state",
    "rewrite_responses_request",
    "settle_responses",
    "stream_responses",
]

METADATA = "litellm_metadata"  # where LiteLLM keeps per-request metadata for this endpoint
ENDPOINT = "endpoint"  # in our state: which endpoint was rewritten (its streams differ)

# Fields of a Responses request that describe native tool calling.
_TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls")


def _config() -> Any:
    from litellm.responses.litellm_completion_transformation.transformation import (
        LiteLLMCompletionResponsesConfig,
    )

    return LiteLLMCompletionResponsesConfig


def _plain(value: Any) -> Any:
    """LiteLLM's converters may return pydantic objects inside dicts: make it plain JSON."""
    return json.loads(
        json.dumps(value, default=lambda o: o.model_dump() if hasattr(o, "model_dump") else str(o))
    )


def _chat_request(data: Mapping[str, Any]) -> dict[str, Any]:
    """The Responses request as the chat request our stages read."""
    refuse_unsupported(data, endpoint="/v1/responses", tool_types=("function",), kind="function")
    if data.get("previous_response_id"):
        raise RequestError(
            "previous_response_id is not supported for a code-mode alias: send the whole "
            "conversation in input (function_call and function_call_output items included)",
            param="previous_response_id",
        )
    extra = data.get("extra_body")
    if extra is not None and not isinstance(extra, Mapping):  # the grammar is merged into it
        raise RequestError(
            f"extra_body must be a JSON object of fields for the upstream, not a "
            f"{type(extra).__name__}",
            param="extra_body",
        )
    tools = data.get("tools") or []
    config = _config()
    chat_tools, _ = config.transform_responses_api_tools_to_chat_completion_tools(tools)
    messages = config.transform_responses_api_input_to_messages(
        data.get("input") or "", {"instructions": data.get("instructions")}
    )
    chat: dict[str, Any] = {
        "model": data.get("model"),
        "messages": _plain(messages),
        "tools": _plain(chat_tools),
    }
    if data.get("tool_choice") is not None:
        chat["tool_choice"] = _plain(config._transform_tool_choice(data["tool_choice"]))
    if data.get("parallel_tool_calls") is not None:
        chat["parallel_tool_calls"] = data["parallel_tool_calls"]
    return chat


def rewrite_responses_request(data: dict[str, Any], settings: AliasSettings) -> dict[str, Any]:
    """Rewrite a Responses request for an enabled alias in place (``data`` is returned)."""
    chat = _chat_request(data)
    chat["metadata"] = data.setdefault(METADATA, {})  # state and spend facts land there
    rewrite_request(chat, settings)
    chat["metadata"][STATE_KEY][ENDPOINT] = "/v1/responses"
    grammar = {k: chat[k] for k in GRAMMAR_FIELDS if k in chat}
    if grammar:  # LiteLLM's Responses-to-chat bridge drops unknown top-level keys, not these
        data["extra_body"] = {**(data.get("extra_body") or {}), **grammar}
    messages = chat["messages"]
    instructions = None
    if messages and messages[0].get("role") == "system":
        instructions = text_of(messages.pop(0).get("content"))
    for field in _TOOL_FIELDS:
        data.pop(field, None)
    data["instructions"] = instructions
    data["input"] = [
        {"type": "message", "role": m["role"], "content": text_of(m.get("content"))}
        for m in messages
    ]
    return data


def chat_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """What the shared post-call code reads of a request (``model``, ``messages``,
    ``metadata``), built from the rewritten Responses request."""
    messages: list[dict[str, Any]] = []
    if data.get("instructions"):
        messages.append({"role": "system", "content": data["instructions"]})
    for item in data.get("input") or []:
        if isinstance(item, Mapping) and item.get("role"):
            messages.append({"role": item["role"], "content": text_of(item.get("content"))})
    view = {"model": data.get("model"), "messages": messages, "metadata": data.get(METADATA)}
    for key in ("temperature", "top_p", "seed"):
        if data.get(key) is not None:
            view[key] = data[key]
    if data.get("max_output_tokens") is not None:
        view["max_tokens"] = data["max_output_tokens"]
    extra = data.get("extra_body")  # the grammar, where the rewrite put it
    if isinstance(extra, Mapping):  # repair rounds keep it
        view.update({k: extra[k] for k in GRAMMAR_FIELDS if k in extra})
    return view


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _message_text(item: Any) -> str:
    """The text of a ``message`` output item (object or plain dict)."""
    return "".join(
        str(_field(part, "text"))
        for part in _field(item, "content") or []
        if _field(part, "type") == "output_text" and _field(part, "text")
    )


def _answer_text(response: Any) -> str:
    return "".join(
        _message_text(item)
        for item in _field(response, "output") or []
        if _field(item, "type") == "message"
    )


Settle = Callable[[str | None, Mapping[str, Any], Mapping[str, Any], Any], Awaitable[Any]]


def endpoint_state(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pre-call hook's state for a ``/v1/responses`` or ``/v1/messages`` request (its
    ``ENDPOINT`` says which), or None when the request was not rewritten."""
    state = (data.get(METADATA) or {}).get(STATE_KEY)
    return state if isinstance(state, Mapping) else None


def _message_item(response_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{response_id}"[:64],
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call_item(call: ToolCall) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call.id.removeprefix('call_')}",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": "completed",
    }


async def _settle_output(
    data: Mapping[str, Any], state: Mapping[str, Any], response: Any, settle: Settle
) -> Any:
    """Read the answer in ``response`` (a ``ResponsesAPIResponse``) and replace its output by the
    reply, in place: ``function_call`` items for tool calls, a ``message`` item for prose."""
    from litellm.types.utils import Usage

    usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    settled = await settle(_answer_text(response), chat_view(data), state, usage)
    reply = settled.reply
    kept = [
        item for item in _field(response, "output") or [] if _field(item, "type") == "reasoning"
    ]
    output: list[Any] = list(kept)
    if reply.content:
        output.append(_message_item(str(getattr(response, "id", None) or "0"), reply.content))
    output.extend(_call_item(call) for call in reply.tool_calls)
    response.output = output
    extra = response.usage
    if extra is not None and usage.total_tokens:  # repair rounds: add their tokens
        extra.input_tokens = (extra.input_tokens or 0) + usage.prompt_tokens
        extra.output_tokens = (extra.output_tokens or 0) + usage.completion_tokens
        extra.total_tokens = (extra.total_tokens or 0) + usage.total_tokens
    return reply


async def settle_responses(data: Mapping[str, Any], response: Any, settle: Settle) -> Any:
    """The settled ``ResponsesAPIResponse`` (see ``_settle_output``), or None if not ours."""
    state = endpoint_state(data)
    if state is None:
        return None
    await _settle_output(data, state, response, settle)
    return response


# --- stream: true ---------------------------------------------------------------------------

_FIRST = ("response.created", "response.in_progress")  # sent as they arrive
_FAILED = ("response.failed", "error")  # the upstream failed: passed on, nothing more
_LAST = ("response.completed", "response.incomplete")  # holds the whole answer


def _kind(event: Any) -> str:
    kind = _field(event, "type")
    return str(getattr(kind, "value", kind))


def _message_events(
    index: int, item: Mapping[str, Any], delta: str, *, opening: bool, closing: bool
) -> list[dict[str, Any]]:
    """Events of a ``message`` output item: its opening, a text delta, its closing (``item``
    then holds the whole text)."""
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}
    events: list[dict[str, Any]] = []
    if opening:
        started = {**item, "status": "in_progress", "content": []}
        events += [
            {"type": "response.output_item.added", "output_index": index, "item": started},
            {"type": "response.content_part.added", **where, "part": part},
        ]
    if delta:
        events.append({"type": "response.output_text.delta", **where, "delta": delta})
    if closing:
        text = _message_text(item)
        events += [
            {"type": "response.output_text.done", **where, "text": text},
            {
                "type": "response.content_part.done",
                **where,
                "part": {**part, "text": text, "logprobs": []},
            },
            {"type": "response.output_item.done", "output_index": index, "item": dict(item)},
        ]
    return events


def _item_events(index: int, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One finished output item as the Responses API streams it."""
    kind, item_id = item.get("type"), item.get("id")
    if kind == "message":
        return _message_events(index, item, _message_text(item), opening=True, closing=True)
    if kind == "function_call":
        where = {"item_id": item_id, "output_index": index}
        arguments = str(item.get("arguments", ""))
        opening = {**item, "status": "in_progress", "arguments": ""}
        middle = [
            {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
            {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
        ]
    else:  # reasoning, kept as the upstream sent it
        opening, middle = dict(item), []
    return [
        {"type": "response.output_item.added", "output_index": index, "item": opening},
        *middle,
        {"type": "response.output_item.done", "output_index": index, "item": dict(item)},
    ]


class _Sent:
    """The output items sent so far, numbered in order, and the message item still open."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.message: dict[str, Any] | None = None
        self.text = ""  # the open message's text so far

    def say(self, response_id: str, text: str) -> list[dict[str, Any]]:
        opening = self.message is None
        if opening and self.items:
            text = text.lstrip()  # a new message after others: no paragraph break at its start
        if not text:
            return []
        if self.message is None:
            # a message after calls sent early is a second one: an id of its own (its index
            # first: the id is cut at 64 characters)
            later = any(i["type"] == "message" for i in self.items)
            self.message = _message_item(
                f"{len(self.items)}_{response_id}" if later else response_id, ""
            )
            self.items.append(self.message)
        self.text += text
        index = len(self.items) - 1
        return _message_events(index, self.message, text, opening=opening, closing=False)

    def close(self) -> list[dict[str, Any]]:
        if self.message is None:
            return []
        self.message["content"][0]["text"] = self.text
        index = self.items.index(self.message)
        self.message, self.text = None, ""
        return _message_events(index, self.items[index], "", opening=False, closing=True)

    def item(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """A finished item after the others (the open message, if any, is closed first)."""
        events = self.close()
        self.items.append(item)
        return [*events, *_item_events(len(self.items) - 1, item)]


async def stream_responses(
    data: Mapping[str, Any],
    state: Mapping[str, Any],
    response: AsyncIterator[Any],
    settle: Settle,
    early: EarlyCalls | None = None,
) -> AsyncGenerator[Any, None]:
    """A streamed Responses answer (LiteLLM's event objects) in code mode, progressive like chat
    completions (stream.py): ``response.created`` / ``response.in_progress`` as they arrive,
    prose as ``output_text`` deltas of a message item (output index 0) as the model writes it,
    possible code held. At ``response.completed`` the answer is settled exactly as without
    streaming; the rest of the text, then the other items (``function_call`` with its
    arguments, upstream reasoning) follow, and ``response.completed`` lists the same items in the
    same order. With ``early`` (no repair round can follow: early.py) each call's
    ``function_call`` item goes out as soon as its line is read, after closing the message
    item; prose after it is a message item of its own. Errors after the first event reach the
    client as ``response.failed`` (LiteLLM's own error event for this endpoint)."""
    from litellm.llms.openai.responses.transformation import OpenAIResponsesAPIConfig

    sent = 0

    def event_model(event: dict[str, Any]) -> Any:
        model = OpenAIResponsesAPIConfig.get_event_model_class(event["type"])
        return numbered(model.model_validate(event))

    def numbered(event: Any) -> Any:
        # Responses events are numbered in the order sent; bridged upstream events have None.
        nonlocal sent
        sent += 1
        if hasattr(event, "model_copy"):
            return event.model_copy(update={"sequence_number": sent - 1})
        return event

    assembler = stream_assembler(state)
    out = _Sent()
    response_id = "0"
    last: Any = None
    async for event in response:
        kind = _kind(event)
        if kind in _FIRST or kind in _FAILED:
            response_id = str(_field(_field(event, "response"), "id") or response_id)
            yield numbered(event)
            if kind in _FAILED:
                return
        elif kind == "response.output_text.delta":
            built: list[dict[str, Any]] = []
            for piece in assembler.feed(str(_field(event, "delta") or "")):
                if piece.kind == "content":  # <think> text is dropped, as unstreamed
                    built += out.say(response_id, piece.text)
            release = early.feed(assembler) if early is not None else None
            for call in release.calls if release is not None else ():
                built += out.item(_call_item(call))
            for one in built:
                yield event_model(one)
        elif kind in _LAST:
            last = event
    if last is None:
        raise ModelOutputError("The upstream stream ended without a response.completed event.")
    # No await between the last upstream event and settle: its spend-log facts must land.
    reply = await _settle_output(data, state, last.response, settle)
    calls_sent = early.sent if early is not None else ()
    remaining(reply.tool_calls, calls_sent)  # the client has those: the reading must begin so
    items = _plain(last.response.output)
    if not out.items:  # nothing sent yet: the same items, in the same order, as unstreamed
        for index, item in enumerate(items):
            for built_event in _item_events(index, item):
                yield event_model(built_event)
        yield numbered(last)
        return
    # What was sent stays first, with all the text the client got; then the rest.
    rest = "".join(
        piece.text
        for piece in assembler.finish(reply.content, reply.reasoning)
        if piece.kind == "content"
    )
    built = out.say(response_id, rest) if rest else []
    built += out.close()
    calls = [i for i in items if i.get("type") == "function_call"]
    others = [i for i in items if i.get("type") not in ("message", "function_call")]
    for item in [*others, *calls[len(calls_sent) :]]:
        built += out.item(item)
    last.response.output = out.items
    for one in built:
        yield event_model(one)
    yield numbered(last)
