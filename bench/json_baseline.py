"""The JSON-prompt baseline both accuracy benchmarks measure code mode against: LiteLLM's own
``function_call_prompt`` in front of the model, and the ``{"name", "arguments"}`` objects of its
answer read as the calls."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["json_calls", "json_objects", "json_prompt"]

_OPENING = re.compile(r"[\[{]")


def json_objects(text: str) -> Iterator[Any]:
    """Every top-level JSON value starting with ``{`` or ``[`` in ``text``, in order."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        match = _OPENING.search(text, index)
        if not match:
            return
        try:
            value, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            index = match.start() + 1
            continue
        yield value
        index = end


def json_calls(text: str) -> list[dict[str, Any]]:
    """The baseline's calls: every ``{"name": ..., "arguments": {...}}`` object in the answer
    (lenient on purpose: several objects, or a list of them, all count)."""
    calls = []
    for value in json_objects(text or ""):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                arguments = item.get("arguments", item.get("parameters", {}))
                if isinstance(arguments, str):
                    try:
                        arguments = json.loads(arguments)
                    except json.JSONDecodeError:
                        continue
                if isinstance(arguments, dict):
                    calls.append({item["name"]: arguments})
    return calls


def json_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
    """LiteLLM's own ``function_call_prompt`` text, made a little kinder to the baseline: the
    tools as JSON (LiteLLM writes Python reprs) in a system message that comes first (LiteLLM
    appends one after the user's message when there is none)."""
    from litellm.litellm_core_utils.prompt_templates.factory import function_call_prompt

    messages = [dict(m) for m in messages]
    if not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": ""})
    prompted = function_call_prompt(messages=messages, functions=[json.dumps(t) for t in tools])
    for message in prompted:
        if message["role"] == "system" and isinstance(message["content"], str):
            message["content"] = message["content"].strip()
    return prompted
