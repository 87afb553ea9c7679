"""Progressive streaming of a code-mode answer: what may reach the client now, what must wait.

Pure and synchronous, like pydantic-ai's ``_parts_manager.py``: the hook feeds the
upstream's content deltas in, gets back the content and reasoning deltas that may be sent now,
and at the end hands in the settled Reply to get the rest.

How it decides. The final word on an answer is ``extract.split_answer`` on the whole text (the
same as without streaming); the assembler only decides how far into the text that word can no
longer change. It scans the text line by line and keeps a *safe end*: text before it is sent as
``split_answer(text[:safe_end])`` says (content, or reasoning for ``<think>`` blocks); text after
it is held. Prose moves the safe end forward as it arrives. Holding starts where code may begin:

- a line that opens a fence (```` ``` ```` or ``~~~``): held until the fence closes, then the
  block is decided on its own (tool code or a snippet for the user) and released;
- a ``# tool:`` line, or a line that starts like a call to one of the tools (``f(``,
  ``x = f(``, ``print(f(``, ``await f(``, ``tools.f(``, or a line ending in ``(``/``\\`` after
  such a start): unfenced code is only looked for when no fenced block held tool code, so this
  is held until the answer ends, or until a fenced tool-code block closes (then it is prose);
- the first word of a line, until it can no longer start one of the above (usually one token);
- a partial ``<think>``/``</think>`` tag at the end, a lone trailing ``\\r``, trailing whitespace.

``<think>`` text streams as reasoning as it comes (only a possible closing tag is held back).
A tag inside an open fence is code, as in extract. Rare shapes where later text could change
what was already decided (a ``</think>`` after text was sent: a chat template that pre-filled
``<think>``; a think tag on a fence's opening line or after held unfenced code) stop progressive
output: the rest waits for the end. If what was sent is not a prefix of the final
answer (that pre-fill case, or a repair round that replaced the answer), :meth:`finish` sends the
final text after a paragraph break instead of pretending the sent text away.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import regex

from .extract import THINK_TAG, closes_fence, split_answer, start_in_thought

__all__ = ["StreamAssembler", "StreamEvent"]


@dataclass(frozen=True)
class StreamEvent:
    """A piece of text the client may get now."""

    kind: Literal["content", "reasoning"]
    text: str


_TAGS = ("<think>", "</think>")
# The same line shapes extract.py treats as a fence opening and a tool marker.
_FENCE_OPEN = regex.compile(r"[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*[^`\n]*?[ \t]*")
_MARKER = regex.compile(r"#\s*tool\s*:", regex.IGNORECASE)
# A name code assigns to or calls through: not a Title-case word ("The", "Sure"), so a sentence's
# first word goes out with its delta. Model code names variables and namespaces in lower case
# (PEP 8); a line like `Result = f(...)` would be sent as prose and the final answer follow it
# after a paragraph break (finish).
_NAME = r"(?![A-Z][a-z])\w+"
_PREFIX = rf"(?:await\s+)?(?:{_NAME}\s*=\s*)?(?:await\s+)?(?:print\s*\(\s*)?(?:await\s+)?"

_Mode = Literal["normal", "think", "fence", "held", "frozen"]


@lru_cache(maxsize=256)
def _call_starts(names: frozenset[str]) -> tuple[regex.Pattern[str], ...]:
    """Line starts that may begin unfenced tool code (extract's runs and broken tails)."""
    if not names:
        return ()
    alternatives = "|".join(regex.escape(n) for n in sorted(names, key=len, reverse=True))
    return (
        regex.compile(rf"{_PREFIX}(?:\(\s*)*(?:{_NAME}\.)?(?:{alternatives})\s*[(\\]"),
        # a statement continued on the next line: `x = (`, `x = \`, `print(`, `await \`
        regex.compile(
            rf"(?:{_NAME}\s*=\s*(?:await\b\s*)?|await\b\s*|print\s*\(\s*(?:await\b\s*)?)+"
            r"[(\\]?\s*$"
        ),
    )


def _partial_tag_at(text: str, start: int) -> int:
    """Where a trailing prefix of a think tag begins (``len(text)`` when there is none)."""
    for k in range(max(start, len(text) - len(_TAGS[1]) + 1), len(text)):
        tail = text[k:].lower()
        if any(tag.startswith(tail) for tag in _TAGS):
            return k
    return len(text)


def _rest(sent: str, final: str | None) -> str:
    if not final:
        return ""
    if final.startswith(sent):
        return final[len(sent) :]
    return ("\n\n" if sent else "") + final


class StreamAssembler:
    """Feed content deltas with :meth:`feed`; finish with :meth:`finish`.

    ``function_names`` are the code names of the tools (``Toolset.signatures``), empty when
    ``tool_choice`` is ``"none"``. ``hold_all`` sends nothing before the end (for answers that
    must call a tool: prose alone would be thrown away by a repair round); it still scans, so
    ``code_span`` follows the fenced blocks either way.
    """

    def __init__(
        self, function_names: Collection[str], *, hold_all: bool = False, in_thought: bool = False
    ) -> None:
        self._names = frozenset(function_names)
        # in_thought: the chat template opened a <think> block (extract.start_in_thought); the
        # first text waits here until it is known whether the model opens one itself too.
        self._opening: str | None = "" if in_thought else None
        self._starts = _call_starts(self._names)
        self._raw: list[str] = []
        self._text = ""  # normalized newlines; a trailing "\r" waits in _cr
        self._cr = False
        self._pos = 0  # where scanning resumes
        self._line_start = True
        # hold_all still scans (code_span), it only sends nothing before the end.
        self._hold_all = hold_all
        self._mode: _Mode = "normal"
        self._fence = ""
        self._fence_start = 0
        self._after_fence: _Mode = "normal"
        self._code_seen = False  # a fenced block held tool code: no unfenced code any more
        self._tags_seen = False
        self._safe = 0
        self._code_span: tuple[int, int] | None = None  # the latest fenced block read so far
        self._checked = 0  # the safe end when content/reasoning were last computed
        # Appending shortcut (no split_answer per delta): the kinds of text the safe end moved
        # over since the last release, the kind of the last non-blank text since anything else,
        # which output may simply be appended to, and the whitespace rstrip() cut from it.
        self._moves: set[str] = set()
        self._anchor: str | None = None
        self._appendable: str | None = None
        self._cut = ""
        self.content = ""  # sent so far
        self.reasoning = ""

    @property
    def text(self) -> str:
        """The whole answer as the upstream sent it."""
        return "".join(self._raw)

    @property
    def held(self) -> str:
        """Text received but not yet released (for tests and logs)."""
        return self._text[self._safe :]

    @property
    def code_span(self) -> tuple[int, int] | None:
        """(start, end) in ``scanned`` of the latest fenced block up to its last complete line
        (the whole block once it closed), for reading calls before the end (early.py)."""
        return self._code_span

    @property
    def scanned(self) -> str:
        """The text as scanned (newlines normalized): ``code_span`` indexes into it."""
        return self._text

    def feed(self, delta: str) -> list[StreamEvent]:
        """Take the next content delta; return what may be sent now."""
        if not delta:
            return []
        self._raw.append(delta)
        if self._opening is not None:
            self._opening += delta
            head = self._opening.lstrip().lower()
            if len(head) < len("<think>") and "<think>".startswith(head):
                return []
            delta = start_in_thought(self._opening) or ""
            self._opening = None
        if self._cr:
            delta = "\r" + delta
        self._cr = delta.endswith("\r")
        if self._cr:
            delta = delta[:-1]
        self._text += delta.replace("\r\n", "\n").replace("\r", "\n")
        self._scan()
        return [] if self._hold_all else self._release()

    def finish(self, content: str | None, reasoning: str | None) -> list[StreamEvent]:
        """The rest of the settled reply, after everything :meth:`feed` sent."""
        events: list[StreamEvent] = []
        if rest := _rest(self.reasoning, reasoning):
            events.append(StreamEvent("reasoning", rest))
        if rest := _rest(self.content, content):
            events.append(StreamEvent("content", rest))
        self._mode = "frozen"
        return events

    # --- scanning ---------------------------------------------------------------------------

    def _scan(self) -> None:
        text = self._text
        end = _partial_tag_at(text, self._pos)
        while True:
            before = (self._mode, self._pos, self._safe)
            if self._mode == "normal":
                self._scan_normal(end)
            elif self._mode == "think":
                self._scan_think(end)
            elif self._mode in ("fence", "held"):
                self._scan_lines(end)
            if self._mode == "frozen" or (self._mode, self._pos, self._safe) == before:
                return

    def _scan_normal(self, end: int) -> None:
        text, pos = self._text, self._pos
        tag = THINK_TAG.search(text, pos, end)
        newline = text.find("\n", pos, end)
        stop = min(newline if newline >= 0 else end, tag.start() if tag else end)
        piece = text[pos:stop]
        complete = stop < end
        if self._line_start:
            verdict = self._classify(piece, complete)
            if verdict == "undecided":
                return
            if verdict == "fence":
                if tag is not None and tag.start() == stop:
                    self._mode = "frozen"  # a think tag on a fence line: too odd to stream
                    return
                self._open_fence(piece, pos, "normal")
                return
            if verdict == "code":
                self._mode = "held"
                return
        self._advance(stop, "prose")
        if not complete:
            self._pos = stop
            self._line_start = self._line_start and not piece
            return
        if tag is None or (newline >= 0 and newline < tag.start()):
            self._advance(newline + 1, "prose")
            self._pos = newline + 1
            self._line_start = True
            return
        if tag.group(1):  # "</think>"
            if self._tags_seen:
                self._mode = "frozen"  # a stray closing tag: extract drops it mid-line
                return
            # Pre-filled "<think>": all before this was thought (already sent text diverges).
            self._tags_seen = True
            self._pos = tag.end()
            self._advance(self._pos, "other")
            self._line_start = True
            return
        self._tags_seen = True
        self._mode = "think"
        self._pos = tag.end()
        self._advance(self._pos, "other")

    def _scan_think(self, end: int) -> None:
        closing = THINK_TAG.search(self._text, self._pos, end)
        while closing is not None and not closing.group(1):
            closing = THINK_TAG.search(self._text, closing.end(), end)
        if closing is None:
            self._advance(end, "thought")
            self._pos = end
            return
        self._pos = closing.end()
        self._advance(self._pos, "other")
        self._mode = "normal"
        self._line_start = True

    def _scan_lines(self, end: int) -> None:
        """Inside a fence, or after held unfenced code: look at complete lines only."""
        text = self._text
        while True:
            newline = text.find("\n", self._pos, end)
            if newline < 0:
                return
            line = text[self._pos : newline]
            if self._mode == "fence":
                # A think tag inside a fence is code (extract's rule): only the closing matters.
                if closes_fence(line, self._fence):
                    self._close_fence(newline + 1)
                    return
                self._code_span = (self._fence_start, newline + 1)
            elif THINK_TAG.search(line):
                self._mode = "frozen"  # a thought after held unfenced code: wait for the end
                return
            elif _FENCE_OPEN.fullmatch(line) is not None:
                self._open_fence(line, self._pos, "held")
                return
            self._pos = newline + 1

    def _open_fence(self, line: str, pos: int, after: _Mode) -> None:
        match = _FENCE_OPEN.fullmatch(line)
        assert match is not None
        self._fence = match["fence"]
        self._fence_start = pos
        self._after_fence = after
        self._mode = "fence"
        self._pos = pos + len(line) + 1
        self._line_start = True

    def _close_fence(self, end: int) -> None:
        block = self._text[self._fence_start : end]
        self._code_span = (self._fence_start, end)
        if split_answer(block, self._names).code is not None:
            self._code_seen = True
        self._pos = end
        self._line_start = True
        if self._after_fence == "normal" or self._code_seen:
            # Decided: the block is tool code, or a snippet for the user; and held unfenced
            # code before a fenced tool-code block is prose after all.
            self._mode = "normal"
            self._advance(end, "other")
        else:
            self._mode = "held"

    def _advance(self, to: int, kind: str) -> None:
        """Move the safe end over ``prose``, ``thought`` or ``other`` text (tags, code)."""
        if to <= self._safe:
            return
        self._moves.add(kind)
        if kind == "other":
            self._anchor = None
        elif self._text[self._safe : to].strip():
            self._anchor = kind
        self._safe = to

    def _classify(self, piece: str, complete: bool) -> str:
        """What a line (``complete``, or its start so far) is: prose, code, or undecided."""
        partial = not complete
        if _FENCE_OPEN.fullmatch(piece, partial=partial) is not None:
            return "fence" if complete else "undecided"
        stripped = piece.lstrip()
        if not stripped:
            return "prose" if complete else "undecided"
        # Once a fenced block held tool code, extract looks for no unfenced code at all.
        patterns = () if self._code_seen else (_MARKER, *self._starts)
        undecided = False
        for pattern in patterns:
            found = pattern.match(stripped, partial=partial)
            if found is not None:
                # A pattern anchored at the line's end only decides once the line is complete.
                if not found.partial and (complete or not pattern.pattern.endswith("$")):
                    return "code"
                undecided = True
        return "undecided" if undecided else "prose"

    # --- releasing --------------------------------------------------------------------------

    def _release(self) -> list[StreamEvent]:
        if self._safe == self._checked:
            return []
        grown = self._text[self._checked : self._safe]
        moves, self._moves = self._moves, set()
        self._checked = self._safe
        kind = self._appendable
        if kind is not None and moves == {"prose" if kind == "content" else "thought"}:
            # Only more of the same paragraph or thought: split_answer would append it as is.
            sent = self.content if kind == "content" else self.reasoning
            longer = sent + self._cut + grown
            now = longer.rstrip()
            self._cut = longer[len(now) :]
            return self._send([(kind, now)])
        answer = split_answer(self._text[: self._safe], self._names)
        events = self._send([("reasoning", answer.reasoning), ("content", answer.content)])
        # Appending is exact only while the output ends where the text does: after prose or
        # thought that nothing else (code, tags) followed.
        anchor = {"prose": "content", "thought": "reasoning"}.get(self._anchor or "")
        sent = self.content if anchor == "content" else self.reasoning
        self._appendable = anchor if anchor is not None and sent else None
        head = self._text[: self._safe]
        self._cut = head[len(head.rstrip()) :]
        return events

    def _send(self, outputs: list[tuple[str, str | None]]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for kind, now in outputs:
            sent = self.reasoning if kind == "reasoning" else self.content
            if now is None or now == sent:
                continue
            if not now.startswith(sent):
                self._mode = "frozen"  # later text changed an earlier decision: wait for the end
                self._appendable = None
                return events
            events.append(StreamEvent(kind, now[len(sent) :]))  # type: ignore[arg-type]
            if kind == "reasoning":
                self.reasoning = now
            else:
                self.content = now
        return events
