"""The model's text -> a Reply: prose, thoughts and validated tool calls.

Wires the pure stages: extraction (where is the code), checking (read literal calls from the
AST) and validation (each call against its tool's Pydantic model). Raises the errors of
``errors.py``; never guesses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from .bounds import MAX_CALLS_PER_ANSWER, Run, runner
from .check import LiteralCall, ResultUsedError, read_literal_calls
from .errors import (
    ExecutionUnavailableError,
    LimitError,
    ModelOutputError,
    ToolChoiceError,
    UnknownToolError,
)
from .extract import Answer, split_answer
from .results import Answered, resolve
from .schema import Toolset

__all__ = [
    "Choice",
    "Executor",
    "Reply",
    "ToolCall",
    "enforce",
    "interpret",
    "interpret_executing",
    "new_call_id",
]

Executor = Callable[[str, Toolset, Mapping[str, str]], Awaitable[tuple[LiteralCall, ...]]]
"""(code, toolset, known results: call key -> JSON text) -> every call the code made when run
(the sandbox), up to where it stopped, not yet validated nor resolved (results.resolve)."""


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


@dataclass(frozen=True)
class Choice:
    """What the request's ``tool_choice`` and ``parallel_tool_calls`` demand of an answer."""

    mode: str = "auto"  # auto | none | required | function
    function: str | None = None  # the client's tool name, for mode "function"
    parallel: bool = True

    def demand(self) -> str | None:
        """The demand in words, for the prompt of a repair round."""
        if self.mode == "function":
            return f"You must call the function for tool {self.function!r}."
        if self.mode == "required":
            return "You must call at least one function."
        if not self.parallel:
            return "Make exactly one call."
        return None


def enforce(reply: Reply, choice: Choice) -> None:
    """Raise ToolChoiceError when ``reply`` breaks what ``choice`` demands."""
    names = [call.name for call in reply.tool_calls]
    if choice.mode == "required" and not names:
        raise ToolChoiceError("tool_choice is 'required' but the answer calls no function")
    if choice.mode == "function" and (not names or set(names) != {choice.function}):
        raise ToolChoiceError(
            f"tool_choice demands a call to {choice.function!r}, "
            f"but the answer calls {names or 'nothing'}"
        )
    if not choice.parallel and len(names) > 1:
        raise ToolChoiceError(
            f"parallel_tool_calls is false but the answer makes {len(names)} calls; "
            "make exactly one call"
        )


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def interpret(text: str | None, toolset: Toolset, answered: Answered | None = None) -> Reply:
    """Turn the upstream's answer into a Reply, or raise a ModelOutputError. ``answered``: the
    results of calls answered earlier in the conversation (none when not given)."""
    answer = split_answer(text, toolset.names.callable_names())
    if answer.code is None:
        return Reply(content=answer.content, reasoning=answer.reasoning, tool_calls=())
    answered = answered or Answered.of(toolset)
    literal_calls: tuple[LiteralCall, ...]
    try:
        literal_calls = read_literal_calls(
            answer.code, toolset.signatures, toolset.model_names, toolset.names, answered
        )
    except ResultUsedError as exc:
        # The code needs a tool's result: emit the calls before that point; the client runs
        # them and the model continues with their results next turn (design.md section 4).
        if not exc.calls:
            raise
        literal_calls = exc.calls
    return _reply(answer, toolset, literal_calls, answered)


async def interpret_executing(
    text: str | None,
    toolset: Toolset,
    execute: Executor,
    run: Run | None = None,
    answered: Answered | None = None,
) -> Reply:
    """Like ``interpret``, but code the literal path cannot read is run by ``execute`` (the
    sandbox, given the known results); the calls it recorded are resolved and validated here
    like literal ones. The CPU-bound steps go through ``run`` (default: as the answer's size
    says, ``bounds.runner``)."""
    run = run or runner(len(text or ""))
    answered = answered or Answered.of(toolset)
    try:
        reply: Reply = await run(interpret, text, toolset, answered)
        return reply
    except (ExecutionUnavailableError, UnknownToolError) as exc:
        # `obj.method()` is no tool in the literal path, but may be fine Python to run
        if isinstance(exc, UnknownToolError) and "." not in exc.name:
            raise
        answer = await run(split_answer, text, toolset.names.callable_names())
        if answer.code is None:
            raise
    calls = await execute(answer.code, toolset, answered.kernel_results)
    executed: Reply = await run(_reply, answer, toolset, calls, answered)
    return executed


def _reply(
    answer: Answer, toolset: Toolset, events: tuple[LiteralCall, ...], answered: Answered
) -> Reply:
    if len(events) > MAX_CALLS_PER_ANSWER:
        raise LimitError(
            f"The answer makes {len(events)} calls; at most {MAX_CALLS_PER_ANSWER} are "
            "read from one answer. Make fewer calls.",
            bound="answer_calls",
        )
    literal_calls = resolve(events, answered)
    if not literal_calls:
        raise ModelOutputError(
            "The model's code block holds no function call. Call one of: "
            + ", ".join(toolset.signatures)
        )
    calls = tuple(
        ToolCall(
            id=new_call_id(),
            name=toolset.spec(call.function).name,
            arguments=json.dumps(answered.validated(call), ensure_ascii=False),
        )
        for call in literal_calls
    )
    return Reply(content=answer.content, reasoning=answer.reasoning, tool_calls=calls)
