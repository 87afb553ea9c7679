"""Client values as Python source: literals, docstrings, and the short texts errors quote.

Everything a client sends reaches the generated module only through these functions (a JSON
value as a literal, a description as a docstring that parses back exactly), so a schema cannot
inject code. The lowest module of the package: it imports nothing of ours.
"""

from __future__ import annotations

import ast
import math
import typing
from collections.abc import Mapping, Sequence
from typing import Any


def _str_literal(text: str) -> str:
    source = repr(text)  # escapes quotes, backslashes, control characters and surrogates
    if source[0] == "'" and '"' not in text:
        source = f'"{source[1:-1]}"'  # house style; safe: the text has no quote of either kind
    return source


def _literal(value: Any) -> str:
    """A JSON value as Python source (raises TypeError for anything else)."""
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        return _str_literal(value)
    if isinstance(value, list | tuple):
        return f"[{', '.join(_literal(v) for v in value)}]"
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"object key {k!r} is not a string")
            items.append(f"{_str_literal(k)}: {_literal(v)}")
        return f"{{{', '.join(items)}}}"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _safe_literal(value: Any) -> str:
    try:
        return _literal(value)
    except (TypeError, ValueError):
        return _str_literal(str(value))


def _kwargs(kwargs: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{k}={_literal(v)}" for k, v in kwargs)


def _docstring(text: str, indent: str) -> str | None:
    """A docstring literal: triple-quoted when that parses back exactly, else repr."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return None
    lines = text.split("\n")
    body = lines[0] + "".join(f"\n{indent}{line}" if line.strip() else "\n" for line in lines[1:])
    if len(lines) > 1:
        body += f"\n{indent}"
    for prefix in ("r", "") if "\\" in body else ("",):
        for quote in ('"""', "'''"):
            source = f"{prefix}{quote}{body}{quote}"
            try:
                # Equal value means one plain string literal: any escape, implicit
                # concatenation or early close would change (or break) the parsed value.
                if ast.literal_eval(source) == body:
                    return source
            except Exception:  # any failure just means "try the next form"
                continue
    return _str_literal(text)


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_path(prefix: str, parts: typing.Iterable[Any]) -> str:
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{_str_literal(str(part))}]"
    return out.lstrip(".")
