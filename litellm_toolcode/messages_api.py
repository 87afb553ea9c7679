"""``/v1/messages`` (Anthropic-style) in code mode: the request is read as a chat request with
LiteLLM's own adapter, rewritten by the chat stages, and written back as Anthropic ``system`` and
``messages``; the answer becomes Anthropic ``tool_use`` content blocks.

For ``call_type="anthropic_messages"`` LiteLLM's hooks see Anthropic shapes: ``messages`` with
content blocks, ``system``, ``tools=[{name, input_schema}]`` before the call, and a plain dict
(an Anthropic message) after it; per-request metadata lives in ``data["litellm_metadata"]``
(litellm-facts.md sections 3 and 7). ``LiteLLMAnthropicMessagesAdapter`` is internal in litellm
1.106.2 (pinned).

Not supported (HTTP 400 saying so): ``stream: true`` with tools on an enabled alias (LiteLLM's
streaming hook gets raw Anthropic SSE bytes there) and server tools (``type`` other than
``custom``). Requests without tools pass untouched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .config import AliasSettings
from .history import text_of
from .responses_api import METADATA, Settle
from .rewrite import STATE_KEY, refuse_unsupported, rewrite_request

__all__ = ["is_anthropic_message", "rewrite_messages_request", "settle_messages"]

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
    return view


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
    names = state.get(_NAMES) or {}
    content: list[Any] = [
        b
        for b in blocks
        if isinstance(b, Mapping) and b.get("type") in ("thinking", "redacted_thinking")
    ]
    if reply.content:
        content.append({"type": "text", "text": reply.content})
    for call in reply.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{call.id.removeprefix('call_')}",
                "name": names.get(call.name, call.name),
                "input": json.loads(call.arguments),
            }
        )
    response["content"] = content
    if reply.tool_calls:
        response["stop_reason"] = "tool_use"
    elif response.get("stop_reason") == "tool_use":
        response["stop_reason"] = "end_turn"
    totals = response.get("usage")
    if isinstance(totals, dict) and usage.total_tokens:
        totals["input_tokens"] = (totals.get("input_tokens") or 0) + usage.prompt_tokens
        totals["output_tokens"] = (totals.get("output_tokens") or 0) + usage.completion_tokens
    return response
