"""Tool calls sent while the answer still streams, when nothing after them can take them back.

With a repair round possible, a later error replaces the whole answer, calls included, so calls
wait for the end (hook.py). Without one (``early_calls_allowed``), each call of a fenced
tool-code block is read as soon as its line is complete: the answer up to that line is read like
a whole answer (``interpret``: extraction, literal calls, validation), and the calls it holds
beyond those already sent go out. Pure and synchronous, fed by the hook after each delta with
the :class:`~litellm_toolcode.stream.StreamAssembler` that tracks the fences.

Why only fenced code: unfenced calls are only tool code while no fenced block holds any, which
only the end can tell; inside a tool-code fence, later text can add calls but never change one
already read (a literal call statement is complete at its newline). Code the literal path cannot
read (loops, variables: the sandbox) stops early reading, and so do results of earlier calls in
the history (a later line using one drops that call); the end reads the whole answer as
always, and :func:`remaining` checks that it begins with the calls already sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .answer import Choice, ToolCall, interpret
from .bounds import SYNC_ANSWER_CHARS, check_budget
from .errors import ExecutionUnavailableError, ModelOutputError, UnknownToolError
from .extract import split_answer
from .results import Answered
from .schema import Toolset
from .stream import StreamAssembler

__all__ = ["EarlyCalls", "Release", "early_calls_allowed", "remaining"]


def early_calls_allowed(settings: Mapping[str, Any]) -> bool:
    """Whether no repair round can follow an answer of this alias, so its calls may go out as
    they are read. ``settings``: ``AliasSettings.model_dump()``, as the pre-call hook left it.

    Only ``max_repair_rounds: 0``. A grammar (``grammar``) does not make rounds moot: it cannot
    say which arguments are required, nor patterns or bounds, so a constrained answer can still
    fail validation and get a round that replaces calls already sent.
    """
    return settings.get("max_repair_rounds") == 0


@dataclass(frozen=True)
class Release:
    """Calls that may be sent now: ``position`` is the first one's index in the reply."""

    position: int
    calls: tuple[ToolCall, ...]


def _same(a: ToolCall, b: ToolCall) -> bool:
    return (a.name, a.arguments) == (b.name, b.arguments)


def _fits(calls: tuple[ToolCall, ...], choice: Choice) -> bool:
    """``tool_choice`` still satisfied by these calls (more may follow, none may go)."""
    if choice.mode == "none":
        return False
    if choice.mode == "function" and any(c.name != choice.function for c in calls):
        return False
    return choice.parallel or len(calls) <= 1


class EarlyCalls:
    """Reads calls from the fenced tool code an assembler has seen so far (see module doc)."""

    def __init__(self, toolset: Toolset, choice: Choice, answered: Answered | None = None):
        self._toolset = toolset
        self._names = toolset.names.callable_names()
        self._choice = choice
        self._answered = answered
        self._read_to = 0  # the code span end last read
        # A call whose result the history holds is dropped once a later line uses its result
        # (results.py): with known results, later text can change earlier calls.
        self._stopped = bool(answered is not None and answered.kernel_results)
        self.sent: tuple[ToolCall, ...] = ()

    def feed(self, assembler: StreamAssembler) -> Release | None:
        """The calls the answer so far adds to those sent, or None."""
        span = assembler.code_span
        if self._stopped or span is None or span[1] <= self._read_to:
            return None
        start, end = span
        text = assembler.scanned
        # Line by line, so what goes out does not depend on how the deltas were cut.
        position = len(self.sent)
        line_end = max(start, self._read_to)
        while not self._stopped and (line_end := text.find("\n", line_end, end) + 1) > 0:
            self._read(text, start, line_end)
        self._read_to = end
        if len(self.sent) == position:
            return None
        return Release(position=position, calls=self.sent[position:])

    def _read(self, text: str, start: int, end: int) -> None:
        if end > SYNC_ANSWER_CHARS:
            self._stopped = True  # each read is the whole prefix: not on the loop for long ones
            return
        if split_answer(text[start:end], self._names).code is None:
            return  # a snippet for the user (or not yet known to be tool code)
        try:
            with check_budget():  # the same budget as reading a whole answer on the loop
                calls = interpret(text[:end], self._toolset, self._answered).tool_calls
        except (ExecutionUnavailableError, UnknownToolError):
            self._stopped = True  # code for the sandbox, or not ours: the end decides
            return
        except ModelOutputError:
            return  # e.g. a call continued on the next line: wait for it
        sent = self.sent
        if len(calls) <= len(sent):
            return
        if not all(_same(a, b) for a, b in zip(sent, calls, strict=False)) or not _fits(
            calls, self._choice
        ):
            self._stopped = True  # the end will tell
            return
        self.sent = sent + calls[len(sent) :]  # the ids the client got, not the new reading's


def remaining(final: tuple[ToolCall, ...], sent: tuple[ToolCall, ...]) -> tuple[ToolCall, ...]:
    """The final reply's calls after those sent early; a ModelOutputError if the final reading
    does not begin with them (the client already has them)."""
    if len(final) < len(sent) or not all(_same(a, b) for a, b in zip(sent, final, strict=False)):
        raise ModelOutputError(
            "The calls already streamed differ from the answer's final reading "
            f"({[c.name for c in sent]} vs {[c.name for c in final]})."
        )
    return final[len(sent) :]
