"""The model's text -> a Reply: prose, thoughts and validated tool calls.

Wires the pure stages: extraction (where is the code), checking (read literal calls from the
AST) and validation (each call against its tool's Pydantic model). Raises the errors of
``errors.py``; never guesses.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from .check import read_literal_calls
from .errors import ModelOutputError
from .extract import split_answer
from .schema_code import Toolset

__all__ = ["Reply", "ToolCall", "interpret", "new_call_id"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str  # the client's tool name, exactly as the client sent it
    arguments: str  # JSON text of the validated arguments


@dataclass(frozen=True)
class Reply:
    content: str | None
    reasoning: str | None  # thoughts found in the text (<think> blocks); never read as code
    tool_calls: tuple[ToolCall, ...]

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def interpret(text: str | None, toolset: Toolset) -> Reply:
    """Turn the upstream's answer into a Reply, or raise a ModelOutputError."""
    answer = split_answer(text, toolset.signatures.keys())
    if answer.code is None:
        return Reply(content=answer.content, reasoning=answer.reasoning, tool_calls=())
    literal_calls = read_literal_calls(answer.code, toolset.signatures, toolset.model_names)
    if not literal_calls:
        raise ModelOutputError(
            "The model's code block holds no function call. Call one of: "
            + ", ".join(toolset.signatures)
        )
    calls = tuple(
        ToolCall(
            id=new_call_id(),
            name=toolset.spec(call.function).name,
            arguments=json.dumps(
                toolset.validate(call.function, call.arguments), ensure_ascii=False
            ),
        )
        for call in literal_calls
    )
    return Reply(content=answer.content, reasoning=answer.reasoning, tool_calls=calls)
