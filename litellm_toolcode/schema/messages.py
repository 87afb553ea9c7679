"""Error wording for bad calls: what the model reads in a repair round and the client in a
``model_error``, in the client's names and paths (``guests[0].name``), never Pydantic's.

Messages are clipped (``_clip``): a union of many models fails once per arm, and the message
goes back into the prompt.
"""

from __future__ import annotations

import collections
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import bounds
from ..errors import PatternTimeoutError, ToolArgumentError
from .literals import _clip, _json_path, _str_literal


def _argument_error(
    py_name: str,
    tool: str,
    model: type[BaseModel],
    exc: ValidationError,
    model_names: frozenset[str],
) -> ToolArgumentError:
    """Pydantic's errors for a call as one message in the client's names: the first bad
    argument, what is wrong with it and what was given, and which others are also wrong."""
    # A union of many models fails once per arm; the message is clipped to 300 characters, so
    # only the first errors are worth mapping back to the client's names.
    errors = exc.errors(include_url=False)[:_ERRORS_READ]
    paths = [_client_path(model, e["loc"], model_names) for e in errors]
    first = paths[0]
    details: list[str] = []
    both_number_arms = _both_number_arms(errors)
    for error, path in zip(errors, paths, strict=True):
        if path != first:
            continue
        if error["type"] == "missing":
            text = "required argument is missing"
        elif error["type"] == "extra_forbidden":
            text = "unexpected argument (not in the schema)"
        elif error["type"] in _NUMBER_ERRORS and both_number_arms:
            text = "Input should be a valid number"  # both arms of `int | float` failed
        else:
            text = str(error["msg"])
        if text not in details:
            details.append(text)
    where = f"argument {first!r}" if first else "arguments"
    message = f"{py_name}(): {where}: {' or '.join(details)}"
    if errors[0]["type"] not in ("missing", "extra_forbidden"):
        given = repr(errors[0].get("input"))
        message += f"; got {given if len(given) <= 60 else given[:57] + '...'}"
    others = list(dict.fromkeys(p for p in paths if p != first))
    if others:
        message += f" (also invalid: {', '.join(others)})"
    return ToolArgumentError(_clip(message), tool=tool, field=first or None)


_ERRORS_READ = 20
_NUMBER_ERRORS = frozenset(
    {"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"}
)


def _both_number_arms(errors: Sequence[Any]) -> bool:
    """Both arms of `int | float` failed (say "number", not "integer" or "float")."""
    types = {e["type"] for e in errors}
    return types <= _NUMBER_ERRORS and bool(types & {"float_type", "float_parsing"})


# pydantic adds the union member it tried to an error's location ("int", "list[str]", ...)
_UNION_TAG = re.compile(r"(?:str|int|float|bool|none|any|bytes|[a-z][a-z0-9-]*\[.*\])", re.S)


def _client_path(
    model: type[BaseModel], loc: Sequence[int | str], model_names: frozenset[str]
) -> str:
    """A pydantic error location as the client's path, e.g. ``guests[0].name``."""
    out = ""
    context: list[type[BaseModel]] = [model]
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
            continue
        found = None
        for candidate in context:
            for name, info in candidate.model_fields.items():
                if item in (info.alias, name):
                    found = (info.alias or name, info.annotation)
                    break
            if found:
                break
        if found:
            out += f".{found[0]}"
            context = _models_in(found[1])
        elif item in model_names:
            context = [m for m in context if m.__name__ == item] or context
        elif _UNION_TAG.fullmatch(item):
            continue
        elif item.isidentifier():  # an extra property, or a key of a dict-typed value
            out += f".{item}"
        else:
            out += f"[{_str_literal(item)}]"
    return out.lstrip(".")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _timeout_error(
    py_name: str, tool: str, dumped: Any, exc: bounds.CheckTimeout
) -> ToolArgumentError:
    """The check ran out of time: name the tool, the argument and the pattern, if any."""
    where = _path_of(dumped, exc.subject) if exc.subject is not None else None
    at = f"argument {where!r}" if where else "arguments"
    what = (
        f"matching the pattern {exc.pattern!r} took longer than "
        f"{bounds.PATTERN_MATCH_SECONDS * 1000:.0f} ms"
        if exc.pattern is not None
        else f"the JSON Schema check took longer than {bounds.CHECK_BUDGET_SECONDS:.2f} s"
    )
    return PatternTimeoutError(
        _clip(f"{py_name}(): {at}: {what}; write a simpler value that clearly fits"),
        tool=tool,
        field=where,
    )


def _path_of(value: Any, subject: str, prefix: str = "") -> str | None:
    """Where the string ``subject`` sits in ``value``, as a value or as a key (first found)."""
    todo: collections.deque[tuple[str, Any]] = collections.deque([(prefix, value)])
    while todo:
        path, item = todo.popleft()
        if item == subject and isinstance(item, str):
            return path
        if isinstance(item, Mapping):
            for key, sub in item.items():
                inner = _json_path(path, [key])
                if key == subject:
                    return inner
                todo.append((inner, sub))
        elif isinstance(item, list):
            todo.extend((_json_path(path, [i]), sub) for i, sub in enumerate(item))
    return None
