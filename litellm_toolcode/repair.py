"""Repair rounds: when an answer cannot be used, ask the same alias again with the error shown.

The loop is pure: the hook passes ``ask``, which sends messages to the upstream (through
LiteLLM's router) and returns the answer text. Bounded by ``max_rounds``; when rounds run out
the last error is raised, never a guess.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .answer import Choice, Executor, Reply, enforce, interpret, interpret_executing
from .bounds import runner
from .errors import ModelOutputError
from .extract import split_answer
from .prompt import render
from .results import Answered
from .schema import Toolset

__all__ = ["Ask", "Settled", "read_reply", "read_reply_executing", "settle"]

Ask = Callable[[list[dict[str, Any]], int], Awaitable[str | None]]
"""(messages, round number from 1) -> the upstream's answer text."""


@dataclass(frozen=True)
class Settled:
    reply: Reply
    rounds: int  # extra upstream calls made (repairs and the plain-answer round)
    errors: tuple[str, ...]  # the error kind of each rejected answer, in order
    bounds: tuple[str, ...] = ()  # the bounds (errors.ToolcodeError.bound) those errors hit


def read_reply(
    text: str | None, toolset: Toolset, choice: Choice, answered: Answered | None = None
) -> Reply:
    """One answer -> Reply, checked against ``choice``; raises ModelOutputError."""
    if choice.mode == "none":  # tools hidden: never read calls, only drop thoughts
        answer = split_answer(text, ())
        return Reply(content=answer.content, reasoning=answer.reasoning, tool_calls=())
    reply = interpret(text, toolset, answered)
    enforce(reply, choice)
    return reply


async def read_reply_executing(
    text: str | None,
    toolset: Toolset,
    choice: Choice,
    execute: Executor | None,
    answered: Answered | None = None,
) -> Reply:
    """``read_reply``, running code that needs execution with ``execute`` (when given).
    A long answer is read off the event loop (``bounds.runner``)."""
    run = runner(len(text or ""))
    if execute is None or choice.mode == "none":
        reply: Reply = await run(read_reply, text, toolset, choice, answered)
        return reply
    reply = await interpret_executing(text, toolset, execute, run, answered)
    enforce(reply, choice)
    return reply


async def settle(
    text: str | None,
    messages: Sequence[dict[str, Any]],
    toolset: Toolset,
    choice: Choice,
    *,
    max_rounds: int,
    ask: Ask,
    execute: Executor | None = None,
    answered: Answered | None = None,
    after_results: bool = False,
) -> Settled:
    """Read ``text``; on a ModelOutputError ask again (up to ``max_rounds`` times).

    ``execute`` runs code the literal path cannot read (the sandbox); without it such code is
    an ``ExecutionUnavailableError``. ``answered``: results of calls answered earlier in the
    conversation, which the code may use (results.py). ``after_results``: the client's last
    message is a tool result, which the plain-answer round's request then speaks of.
    """
    history = list(messages)
    errors: list[str] = []
    hit: list[str] = []
    rounds = 0
    while True:
        try:
            reply = await read_reply_executing(text, toolset, choice, execute, answered)
            break
        except ModelOutputError as exc:
            errors.append(type(exc).__name__)
            if exc.bound is not None:
                hit.append(exc.bound)
            if len(errors) > max_rounds:
                raise
            history += [
                {"role": "assistant", "content": text or ""},
                {
                    "role": "user",
                    "content": render(
                        "repair.j2",
                        error=exc.message,
                        demand=choice.demand(),
                        may_decline=choice.mode == "auto",
                    ),
                },
            ]
            rounds += 1
            text = await ask(history, rounds)
    if reply.content is None and not reply.tool_calls:
        # "# tool: none" and nothing else: the model decided no tool fits but wrote no answer
        # (design.md section 3 saw this in 198 of 198 cases), so ask for the prose answer.
        history += [
            {"role": "assistant", "content": text or ""},
            {"role": "user", "content": render("plain_answer.j2", after_results=after_results)},
        ]
        rounds += 1
        answer = split_answer(await ask(history, rounds), ())
        reply = Reply(content=answer.content, reasoning=reply.reasoning, tool_calls=())
    return Settled(reply=reply, rounds=rounds, errors=tuple(errors), bounds=tuple(hit))
