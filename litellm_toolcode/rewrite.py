"""A tool-bearing chat request -> the code-mode request the upstream receives."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import asdict
from typing import Any

from .answer import Choice
from .bounds import off_loop
from .config import AliasSettings
from .errors import RequestError
from .grammar import grammar_fields, tool_grammar
from .history import rewrite_messages
from .prompt import system_prompt
from .results import Answered, KnownResult, known_results
from .schema import Toolset, build_toolset, cached_toolset
from .stream import StreamAssembler

__all__ = [
    "STATE_KEY",
    "TOOL_FIELDS",
    "refuse_unsupported",
    "request_answered",
    "request_toolset",
    "rewrite_request",
    "stream_assembler",
]

# Fields of native tool calling the upstream must not see for an enabled alias.
TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call")
# Where the pre-call hook leaves what the post-call hooks need, inside LiteLLM's own
# request metadata (never forwarded upstream for chat completions).
STATE_KEY = "toolcode_request"


def _choice(data: Mapping[str, Any], toolset: Toolset) -> Choice:
    choice = data.get("tool_choice")
    parallel = data.get("parallel_tool_calls") is not False
    if choice is None or choice in ("auto", "none", "required"):
        return Choice(mode=choice or "auto", parallel=parallel)
    if isinstance(choice, Mapping) and choice.get("type", "function") == "function":
        name = (choice.get("function") or {}).get("name")
        if name not in {spec.name for spec in toolset.tools}:
            raise RequestError(
                f"tool_choice names function {name!r}, which is not in tools",
                param="tool_choice",
            )
        return Choice(mode="function", function=name, parallel=parallel)
    raise RequestError(f"tool_choice {choice!r} is not supported", param="tool_choice")


def _check_size(tools: list[Any], settings: AliasSettings) -> None:
    if len(tools) > settings.max_tools:
        raise RequestError(
            f"{len(tools)} tools given; this model accepts at most {settings.max_tools}",
            param="tools",
            bound="tools",
        )
    total = 0
    for index, tool in enumerate(tools):
        size = len(json.dumps(tool, ensure_ascii=False, default=str))
        total += size
        if size > settings.max_tool_chars:
            name = ((tool.get("function") or {}) if isinstance(tool, Mapping) else {}).get("name")
            raise RequestError(
                f"tools[{index}] ({name!r}) is {size} characters of JSON; this model accepts "
                f"at most {settings.max_tool_chars} per tool",
                param="tools",
                bound="tool_chars",
            )
    if total > settings.max_tools_chars:
        raise RequestError(
            f"the tools are {total} characters of JSON together; this model accepts at most "
            f"{settings.max_tools_chars} (model_info.toolcode.max_tools_chars)",
            param="tools",
            bound="tools_chars",
        )


def refuse_unsupported(
    data: Mapping[str, Any], *, endpoint: str, tool_types: Collection[str | None], kind: str
) -> None:
    """Refuse (HTTP 400) tools whose ``type`` is not in ``tool_types`` on LiteLLM's other
    endpoints: server tools run at the provider, so they have no Python stub."""
    others = sorted(
        {
            str(t.get("type")) if isinstance(t, Mapping) else "?"
            for t in data.get("tools") or []
            if not (isinstance(t, Mapping) and t.get("type") in tool_types)
        }
    )
    if others:
        raise RequestError(
            f"only {kind} tools are supported on {endpoint} for a code-mode alias, "
            f"not {', '.join(others)}",
            param="tools",
        )


def rewrite_request(data: dict[str, Any], settings: AliasSettings) -> dict[str, Any]:
    """Replace native tool fields by a code prompt and a rewritten history (``data`` is mutated)."""
    tools = data.get("tools")
    if not isinstance(tools, list) or not tools:
        raise RequestError("tools must be a non-empty list", param="tools")
    _check_size(tools, settings)
    toolset = build_toolset(tools)
    choice = _choice(data, toolset)
    # Results of calls answered in the history, for code that uses them (results.py); read
    # from the client's messages, which the rewrite below replaces.
    known = known_results(
        data.get("messages") or [], toolset, max_result_chars=settings.max_tool_result_chars
    )
    history = rewrite_messages(
        data.get("messages") or [],
        toolset.render_call,
        max_result_chars=settings.max_tool_result_chars,
    )
    system = (
        system_prompt(toolset.prompt_source, history.client_system)
        if choice.mode != "none"
        else history.client_system
    )
    messages = list(history.messages)
    if system:
        messages.insert(0, {"role": "system", "content": system})
    for field in TOOL_FIELDS:
        data.pop(field, None)
    data["messages"] = messages
    # tool_choice none asks for no call: nothing to constrain. A top-level key reaches
    # OpenAI-compatible upstreams as is (LiteLLM merges non-OpenAI keys into extra_body).
    grammar = settings.grammar if choice.mode != "none" else "none"
    if grammar != "none":
        text = tool_grammar(toolset, choice.mode, choice.function, choice.parallel)
        data.update(grammar_fields(grammar, text))
    metadata = data.setdefault("metadata", {})
    metadata[STATE_KEY] = {
        "tools": tools,
        "toolset": toolset.key,
        "names": sorted(toolset.names.callable_names()),  # stub and client spellings
        "choice": asdict(choice),
        "settings": settings.model_dump(),
        "results": [[r.key, r.text, r.is_json, r.call, r.times] for r in known],
        "after_results": history.ends_with_results,
    }
    spend = metadata.get("spend_logs_metadata") or {}
    metadata["spend_logs_metadata"] = {
        **spend,
        "toolcode_tool_choice": choice.mode,
        "toolcode_tools": len(tools),
        "toolcode_grammar": grammar,
    }
    return data


async def request_toolset(state: Mapping[str, Any]) -> Toolset:
    """The Toolset of a request ``rewrite_request`` rewrote (``state`` is what it left under
    ``STATE_KEY``): the one the pre-call hook built, or built again off the event loop."""
    found = cached_toolset(state.get("toolset"))
    return found if found is not None else await off_loop(build_toolset, state["tools"])


def request_answered(state: Mapping[str, Any], toolset: Toolset) -> Answered:
    """The answered calls of a request ``rewrite_request`` rewrote, for reading its answer."""
    known = [
        KnownResult(
            key=str(key), text=str(text), is_json=bool(is_json), call=str(call), times=int(n)
        )
        for key, text, is_json, call, n in state.get("results") or []
    ]
    return Answered.of(toolset, known)


def stream_assembler(state: Mapping[str, Any]) -> StreamAssembler:
    """The streaming assembler for the answer to a request ``rewrite_request`` rewrote
    (``state`` is what it left under ``STATE_KEY``)."""
    choice = Choice(**state["choice"])
    names = () if choice.mode == "none" else tuple(state["names"])
    return StreamAssembler(
        names,
        # an answer that must call a tool: prose alone would be replaced by a repair round
        hold_all=choice.mode in ("required", "function"),
        in_thought=bool(state["settings"].get("think_prefilled")),
    )
