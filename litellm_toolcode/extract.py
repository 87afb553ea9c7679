"""Find the tool-call code in a model's answer, apart from its prose and its thoughts.

The prompt asks for one ```python block whose first line is ``# tool: <name>`` (or ``# tool: none``
followed by a plain answer). Real models deviate: other fence styles, no fence, prose around the
calls, several blocks, a truncated block, ``<think>`` reasoning. This module is pure text work; it
never runs code and only uses ``ast`` to decide whether a piece of text is tool code. A block that
looks like tool code but does not parse is still returned as code, so the checker can report the
syntax error (and a repair round can fix it) instead of the broken code reaching the client as
prose.
"""

from __future__ import annotations

import ast
import bisect
import re
import textwrap
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .spelling import dotted_name

__all__ = ["Answer", "split_answer", "start_in_thought"]


@dataclass(frozen=True)
class Answer:
    """A model answer split into the parts the hook treats differently."""

    code: str | None
    """Tool-call code to read (several blocks joined by a newline), or None."""
    content: str | None
    """The prose outside the tool code, stripped, or None if there is none."""
    reasoning: str | None
    """The text of ``<think>`` blocks (joined), or None."""


# Shared with stream.py (not public): the streamed and the whole answer must split alike.
# THINK_TAG spells the tag for the stream's scanner, _THOUGHT_TOKENS for _strip_thoughts' split
# (keeping tags and newlines): keep the two alike.
THINK_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
_THOUGHT_TOKENS = re.compile(r"(</?think>|\n)", re.IGNORECASE)
_OPENS_THOUGHT = re.compile(r"\s*<think>", re.IGNORECASE)
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$")
_TOOL_COMMENT = re.compile(r"^#\s*tool\s*:\s*(?P<target>.*?)\s*$", re.IGNORECASE)
# Fence languages whose blocks may hold tool calls; any other language (json, bash, ...) is prose.
# "tool_code" is what Gemma-style models write out of habit.
_PY_LANGS = frozenset({"", "python", "py", "python3", "py3", "ipython", "tool_code", "tool_call"})
# Models sometimes write `tools.f(...)` or `default_api.f(...)`; the checker accepts those too.
_NAMESPACES = frozenset({"tools", "tool", "functions", "default_api", "api"})
_NONE_TARGETS = frozenset({"none", "no", "no tool", "null", "n/a"})
# A line that may start unfenced tool code, and one that may end it (a call ends with ")").
_RUN_START = re.compile(r"^(?:#\s*tool\s*:|await\b|print\s*\(|[A-Za-z_][\w.]*\s*(?:=|\())", re.I)
_RUN_END = re.compile(r"\)\s*(?:#.*)?$")
# SyntaxError messages that mean "the text stopped in the middle", i.e. a truncated answer.
_TRUNCATED = ("never closed", "unexpected eof", "unterminated", "expected an indented block")
# Bounds the quadratic search for unfenced calls on long prose answers.
_MAX_RUN_ATTEMPTS = 500
_MAX_RUN_LINES = 400


@dataclass
class _Block:
    """A fenced block: original fence lines (kept for prose) and the body lines between them.

    Mutable only while ``_segment`` collects its lines.
    """

    open_line: str
    body: list[str]
    close_line: str | None
    lang: str

    def lines(self) -> list[str]:
        closing = [] if self.close_line is None else [self.close_line]
        return [self.open_line, *self.body, *closing]


@dataclass(frozen=True)
class _Code:
    """Marks code removed from the prose; breaks the content into paragraphs there."""

    source: str


_Item = str | _Block | _Code


def split_answer(text: str | None, function_names: Collection[str]) -> Answer:
    """Split ``text`` into tool-call code, prose content and ``<think>`` reasoning."""
    if text is None:
        return Answer(code=None, content=None, reasoning=None)
    names = frozenset(function_names)
    parts, thoughts = _strip_thoughts(text.replace("\r\n", "\n").replace("\r", "\n"))
    reasoning = _join_paragraphs(thoughts)
    items = _classify_blocks(_segment(_join_paragraphs(parts) or ""), names)
    if not any(isinstance(item, _Code) for item in items):
        items = _find_unfenced_code(items, names)
    code_parts = [item.source for item in items if isinstance(item, _Code)]
    return Answer(
        code="\n".join(code_parts) if code_parts else None,
        content=_render_content(items),
        reasoning=reasoning,
    )


# --- thoughts -------------------------------------------------------------------------------


def start_in_thought(text: str | None) -> str | None:
    """``text`` read as the rest of a ``<think>`` block the chat template opened before it.

    A model that opens the block itself anyway keeps its own tag (no empty thought in front).
    """
    if text is None or _OPENS_THOUGHT.match(text):
        return text
    return "<think>" + text


def _strip_thoughts(text: str) -> tuple[list[str], list[str]]:
    """Return (prose parts, thoughts): ``<think>`` blocks, closed or not, are thoughts.

    A tag counts only outside an open fence (``_segment``'s fences, over the lines it will
    see), so ``search(q="<think>")`` in a code block stays code. Inside a thought, fences do not
    matter: the first ``</think>`` closes it. A tag ends the line it is on: the text after a
    thought starts a new line (parts are joined as paragraphs).
    """
    parts: list[str] = []
    thoughts: list[str] = []
    part = ""  # the current prose part, or the current thought while thinking
    line = ""  # the current line as _segment will see it
    fence: str | None = None
    thinking = tags_seen = False
    for token in _THOUGHT_TOKENS.split(text):
        tag = token.lower()  # only a tag token can equal "<think>" / "</think>"
        if thinking:
            if tag == "</think>":  # the first one closes the thought, fence or not
                thoughts.append(part)
                part, line, thinking = "", "", False
            else:
                part += token
        elif fence is not None or tag not in ("<think>", "</think>"):  # text (tags in a fence)
            part += token
            if token != "\n":
                line += token
            elif fence is not None:
                fence = None if closes_fence(line, fence) else fence
                line = ""
            else:
                fence = _opened_fence(line)
                line = ""
        elif tag == "<think>":
            parts.append(part)
            fence = _opened_fence(line)  # the fence line goes on after the thought
            part, line, thinking, tags_seen = "", "", True, True
        elif not tags_seen:  # a lone "</think>": the template pre-filled "<think>"
            thoughts.append(part)
            part, line, tags_seen = "", "", True
        # else: a stray "</think>" (e.g. a second one) is noise, not prose
    (thoughts if thinking else parts).append(part)  # a thought cut off: the rest is thought
    return parts, thoughts


def _opened_fence(line: str) -> str | None:
    opening = _FENCE_OPEN.match(line)
    return opening["fence"] if opening else None


def _trim_blank_lines(text: str) -> str:
    """Drop blank lines at both ends and trailing spaces; keep the first line's indentation."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def _join_paragraphs(parts: Sequence[str]) -> str | None:
    kept = [trimmed for part in parts if (trimmed := _trim_blank_lines(part))]
    return "\n\n".join(kept).strip() or None


# --- fenced blocks --------------------------------------------------------------------------


def _segment(text: str) -> list[_Item]:
    """Split text into prose lines and fenced blocks (an unclosed last fence runs to the end;
    one with nothing after it is dropped)."""
    items: list[_Item] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = _FENCE_OPEN.match(lines[i])
        if match is None:
            items.append(lines[i])
            i += 1
            continue
        fence = match["fence"]
        block = _Block(lines[i], [], None, match["info"].split(" ")[0].strip().lower())
        i += 1
        while i < len(lines):
            line = lines[i]
            i += 1
            if closes_fence(line, fence):
                stripped = line.strip()
                if stripped == fence[0] * len(stripped):
                    block.close_line = line
                else:  # `f(x=1)```: the model closed the fence on the code's last line.
                    block.body.append(line.rstrip()[: -len(fence)])
                    block.close_line = fence
                break
            block.body.append(line)
        # A fence left open with nothing after it carries nothing: it is the stray closing fence
        # of unfenced code (`get_weather(city="Paris")` then a lone ```), not prose.
        if block.close_line is not None or "".join(block.body).strip():
            items.append(block)
    return items


def closes_fence(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened by ``fence`` (also on a code line: ``f()```)."""
    stripped = line.strip()
    if stripped.startswith(fence[:3]) and stripped == fence[0] * len(stripped):
        return len(stripped) >= len(fence)
    return fence[0] == "`" and stripped.endswith(fence)


def _classify_blocks(items: list[_Item], names: frozenset[str]) -> list[_Item]:
    """Replace each tool-code block with a _Code; drop blocks that only said ``# tool: none``."""
    result: list[_Item] = []
    for item in items:
        if not isinstance(item, _Block) or item.lang not in _PY_LANGS:
            result.append(item)
            continue
        body = item.body
        first = next((k for k, line in enumerate(body) if line.strip()), None)
        marker = _TOOL_COMMENT.match(body[first].strip()) if first is not None else None
        target = _normalize_target(marker["target"]) if marker else ""
        if target in _NONE_TARGETS:
            assert first is not None  # a marker implies a first line
            rest = body[:first] + body[first + 1 :]
            if any(line.strip() for line in rest):
                result.append(_Block(item.open_line, rest, item.close_line, item.lang))
            continue
        source = _dedent(body)
        if target or _calls_known(source, names):
            result.append(_Code(source))
        else:  # e.g. a Python snippet the user asked for: it is part of the answer
            result.append(item)
    return result


def _normalize_target(target: str) -> str:
    return target.strip("`'\".,;: ").lower()


def _dedent(lines: Sequence[str]) -> str:
    return _trim_blank_lines(textwrap.dedent("\n".join(lines)))


def _calls_tool(func: ast.expr, names: frozenset[str]) -> bool:
    """``f()`` and ``tools.f()`` for a tool ``f``; ``a.b()`` for a client tool named ``a.b``."""
    if dotted_name(func) in names:
        return True
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in _NAMESPACES
        and func.attr in names
    )


def _calls_known(source: str, names: frozenset[str]) -> bool:
    """Whether the code calls one of the tools (by regex when it does not parse)."""
    if not names:
        return False
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _known_call_regex(names).search(source) is not None
    # A snippet that defines its own function of that name is an example, not a tool call.
    defined = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    return any(
        isinstance(node, ast.Call) and _calls_tool(node.func, names - defined)
        for node in ast.walk(tree)
    )


def _known_call_regex(names: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\s*\(")


# --- unfenced code --------------------------------------------------------------------------


def _is_known_call_statement(statement: ast.stmt, names: frozenset[str]) -> bool:
    """``f(...)``, ``x = f(...)``, ``print(f(...))`` or ``await f(...)`` with f a tool."""
    if isinstance(statement, ast.Assign):
        if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
            return False
    elif not isinstance(statement, ast.Expr):
        return False
    value = statement.value
    if isinstance(value, ast.Await):
        value = value.value
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "print"
        and "print" not in names
        and len(value.args) == 1
        and not value.keywords
    ):
        value = value.args[0]
        if isinstance(value, ast.Await):
            value = value.value
    return isinstance(value, ast.Call) and _calls_tool(value.func, names)


def _check_run(lines: Sequence[str], names: frozenset[str]) -> tuple[bool, int | None]:
    """(whether the lines are only tool calls, the first line that rules that out if known).

    Top-level statements end at newlines, so lines after a bad line cannot make it good: a
    shorter run that could still succeed ends before that line.
    """
    source = "\n".join(lines)
    try:
        tree = ast.parse(textwrap.dedent(source) if lines[0][:1].isspace() else source)
    except SyntaxError as error:
        return False, error.lineno
    except ValueError:
        return False, None
    for statement in tree.body:
        if not _is_known_call_statement(statement, names):
            return False, statement.lineno
    return bool(tree.body), None


def _call_runs(lines: Sequence[str], names: frozenset[str]) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) line ranges that are bare tool calls, longest first."""
    starts = [
        k
        for k, line in enumerate(lines)
        if _RUN_START.match(line.strip())
        and not (
            (marker := _TOOL_COMMENT.match(line.strip()))
            and _normalize_target(marker["target"]) in _NONE_TARGETS
        )
    ]
    ends = [k + 1 for k, line in enumerate(lines) if _RUN_END.search(line.strip())]
    runs: list[tuple[int, int]] = []
    attempts = 0
    position = 0
    for start in starts:
        if start < position:
            continue
        limit = min(len(lines), start + _MAX_RUN_LINES)
        while attempts < _MAX_RUN_ATTEMPTS:
            index = bisect.bisect_right(ends, limit) - 1  # the longest run still possible
            end = ends[index] if index >= 0 else 0
            if end <= start:
                break
            attempts += 1
            found, bad_line = _check_run(lines[start:end], names)
            if found:
                runs.append((start, end))
                position = end
                break
            limit = start + bad_line - 1 if bad_line is not None else end - 1
    return runs


def _broken_tail(lines: Sequence[str], names: frozenset[str]) -> int | None:
    """Start of unfenced code that does not parse but clearly is meant as tool calls.

    Either a ``# tool: <name>`` marker line, or a tool call cut off mid-way (truncated answer).
    """
    call_start = re.compile(
        rf"^\s*(?:await\s+)?(?:\w+\s*=\s*)?(?:print\s*\(\s*)?(?:\w+\.)?"
        rf"{_known_call_regex(names).pattern if names else '(?!)'}"
    )
    for k, line in enumerate(lines):
        marker = _TOOL_COMMENT.match(line.strip())
        if marker and _normalize_target(marker["target"]) not in _NONE_TARGETS | {""}:
            return k
        if call_start.match(line):
            try:
                ast.parse(textwrap.dedent("\n".join(lines[k:])))
            except SyntaxError as error:
                if any(sign in str(error.msg).lower() for sign in _TRUNCATED):
                    return k
            except ValueError:
                pass
    return None


def _find_unfenced_code(items: list[_Item], names: frozenset[str]) -> list[_Item]:
    """Find bare tool calls among the prose lines (no fenced block held any)."""
    first_text = next((item for item in items if not isinstance(item, str) or item.strip()), None)
    if isinstance(first_text, str):
        marker = _TOOL_COMMENT.match(first_text.strip())
        if marker and _normalize_target(marker["target"]) in _NONE_TARGETS:
            # "# tool: none" then the answer: the marker is for us, not for the user.
            index = items.index(first_text)
            return items[:index] + items[index + 1 :]
    result: list[_Item] = []
    region: list[str] = []
    for item in [*items, None]:
        if isinstance(item, str):
            region.append(item)
            continue
        result.extend(_split_region(region, names))
        region = []
        if item is not None:
            result.append(item)
    return result


def _split_region(lines: list[str], names: frozenset[str]) -> list[_Item]:
    result: list[_Item] = []
    position = 0
    runs = _call_runs(lines, names)
    if not runs:
        tail = _broken_tail(lines, names)
        runs = [] if tail is None else [(tail, len(lines))]
    for start, end in runs:
        result.extend(lines[position:start])
        result.append(_Code(_dedent(lines[start:end])))
        position = end
    result.extend(lines[position:])
    return result


# --- content --------------------------------------------------------------------------------


def _render_content(items: Sequence[_Item]) -> str | None:
    """The prose, with a paragraph break where code was taken out."""
    paragraphs: list[list[str]] = [[]]
    for item in items:
        if isinstance(item, _Code):
            paragraphs.append([])
        elif isinstance(item, _Block):
            paragraphs[-1].extend(item.lines())
        else:
            paragraphs[-1].append(item)
    return _join_paragraphs(["\n".join(lines) for lines in paragraphs])
