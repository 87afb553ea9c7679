"""OpenAI chat history -> code-mode history the upstream model can read.

Assistant turns with ``tool_calls`` become the Python block the model would have written, and
``tool`` results become a user message tying each result to its call. The upstream never sees
``role: tool`` or ``content: null`` with ``tool_calls`` (llama.cpp answers those with HTTP 500).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import RequestError
from .prompt import render

__all__ = ["CodeHistory", "rewrite_messages", "text_of"]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})

CallRenderer = Callable[[str, Mapping[str, Any]], str]
"""(client tool name, arguments) -> one line of Python showing the call."""


@dataclass(frozen=True)
class CodeHistory:
    client_system: str | None  # the client's leading system/developer messages, joined
    messages: tuple[dict[str, Any], ...]  # everything after them, rewritten
    # The client's last message is a tool result: the model's next answer follows results.
    ends_with_results: bool = False


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return str(content)


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {"arguments": raw}
    return value if isinstance(value, dict) else {"arguments": value}


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters cut]"


def rewrite_messages(
    messages: Sequence[Mapping[str, Any]],
    render_call: CallRenderer,
    *,
    max_result_chars: int,
) -> CodeHistory:
    """Rewrite a chat history for an upstream that knows nothing of native tool calling."""
    leading: list[str] = []
    index = 0
    while index < len(messages) and messages[index].get("role") in ("system", "developer"):
        leading.append(text_of(messages[index].get("content")))
        index += 1

    calls: dict[str, str] = {}  # tool_call_id -> rendered call, for tying results to calls
    out: list[dict[str, Any]] = []
    pending: list[dict[str, str]] = []  # consecutive tool results become one user message

    def flush() -> None:
        if pending:
            out.append({"role": "user", "content": render("history_results.j2", results=pending)})
            pending.clear()

    for position in range(index, len(messages)):
        message = messages[position]
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in calls:
                raise RequestError(
                    f"messages[{position}]: a tool message with tool_call_id {call_id!r} "
                    "answers no earlier assistant tool call",
                    param="messages",
                )
            text = _truncate(text_of(message.get("content")), max_result_chars)
            pending.append({"call": calls[call_id], "text": text})
            continue
        flush()
        if role not in _ROLES:
            raise RequestError(
                f"messages[{position}]: unknown role {role!r}; expected one of "
                + ", ".join(sorted(_ROLES)),
                param="messages",
            )
        if role == "assistant" and message.get("tool_calls"):
            lines: list[str] = []
            names: list[str] = []
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                name = str(function.get("name", ""))
                line = render_call(name, _arguments(function.get("arguments")))
                calls[str(call.get("id"))] = line
                lines.append(line)
                names.append(line.split("(", 1)[0])
            content = render(
                "history_call.j2",
                prose=text_of(message.get("content")).strip(),
                names=list(dict.fromkeys(names)),
                calls=lines,
            )
            out.append({"role": "assistant", "content": content})
        else:
            out.append(dict(message))
    ends_with_results = bool(pending)
    flush()
    client_system = "\n\n".join(part for part in leading if part.strip()) or None
    return CodeHistory(client_system, tuple(out), ends_with_results)
