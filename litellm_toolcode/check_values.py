"""Literal values in the model's code, read without running it (the literal path's values).

``get_weather("Paris", unit="C")`` gives ``"Paris"`` and ``"C"``; lists, dicts, signed numbers
and the data models' constructors (``Guest(name="a")``) give their plain JSON-like values. A
value that needs the code to run raises ``ExecutionUnavailableError`` naming the line and the
piece at fault. Calls and results inside values (``g(v=f(...)[1])``) are the statement reader's
(``check.py``), which subclasses ``ValueReader``.
"""

from __future__ import annotations

import ast
from typing import Any

from .check_names import ToolNames
from .check_text import (
    CONSTRUCTS,
    JSON_NAMES,
    LITERAL_HINT,
    NEEDS_EXECUTION,
    argument_error,
    truncate,
)
from .errors import ExecutionUnavailableError, ToolArgumentError
from .results import Pending

__all__ = ["NOT_READ", "ValueReader", "literal_key", "plain"]

NOT_READ = object()  # an expression the literal path does not read as a result


class ValueReader:
    """Reads literal values; knows which names hold tool results (known, or ``Pending``)."""

    def __init__(self, code: str, tools: ToolNames) -> None:
        self.code = code
        self.tools = tools
        # variable -> (function, line, index in calls) of a result not known
        self.results: dict[str, tuple[str, int, int]] = {}
        self.values: dict[str, Any] = {}  # variable -> a result known from the conversation

    # what the statement reader adds (check.py): calls and results inside a value

    def _nested(self, node: ast.Call) -> Any:
        raise NotImplementedError

    def _subscript(self, node: ast.Subscript) -> Any:
        raise NotImplementedError

    def _check_result_use(self, node: ast.AST) -> None:
        raise NotImplementedError

    # values

    def _value(self, node: ast.expr, tool: str, field: str | None) -> Any:
        """The plain Python value of a literal expression."""
        if isinstance(node, ast.Constant):
            return self._constant(node, tool, field)
        if isinstance(node, ast.UnaryOp):
            number = _signed_number(node)
            if number is not None:
                return number
        elif isinstance(node, ast.List | ast.Tuple | ast.Set):
            items: list[Any] = []
            for element in node.elts:
                if isinstance(element, ast.Starred):
                    self._check_result_use(element)
                    raise self._unavailable(element, f"unpacking `{self._segment(element)}`")
                items.append(self._value(element, tool, field))
            return items
        elif isinstance(node, ast.Dict):
            return self._dict(node, tool, field)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in self.tools.model_names
        ):
            return self._model(node, tool, field)
        elif self.tools.is_tool_call(node):
            assert isinstance(node, ast.Call)
            return self._nested(node)
        elif isinstance(node, ast.Subscript):
            result = self._subscript(node)
            if result is not NOT_READ:
                return result
        elif isinstance(node, ast.Name):
            if node.id in self.values:
                return self.values[node.id]
            if node.id in self.results:
                return Pending(*self.results[node.id], name=node.id)
            hint = JSON_NAMES.get(node.id)
            raise self._unavailable(
                node, f"the name `{node.id}`" + (f" (did you mean {hint}?)" if hint else "")
            )
        self._check_result_use(node)
        construct = CONSTRUCTS.get(type(node))
        segment = f"`{self._segment(node)}`"
        raise self._unavailable(node, f"{construct} {segment}" if construct else segment)

    def _constant(self, node: ast.Constant, tool: str, field: str | None) -> Any:
        value = node.value
        if value is None or isinstance(value, str | bool | int | float):
            return value
        if isinstance(value, bytes):
            problem = "is a bytes literal; pass a str instead (drop the b prefix)"
        elif value is Ellipsis:
            problem = "is a placeholder (...); pass the actual value"
        else:
            problem = f"is a {type(value).__name__}, which has no JSON form"
        raise self._argument_error(node, tool, f"`{self._segment(node)}` {problem}", field)

    def _dict(self, node: ast.Dict, tool: str, field: str | None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**other}
                spread = self._value(value, tool, field) if isinstance(value, ast.Dict) else None
                if spread is None:
                    self._check_result_use(value)
                    raise self._unavailable(value, f"unpacking `**{self._segment(value)}`")
                result.update(spread)
                continue
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                self._check_result_use(key)
                raise self._argument_error(
                    key,
                    tool,
                    f"dict key `{self._segment(key)}` must be a quoted string, "
                    f'e.g. "{truncate(self._segment(key))}"',
                    field,
                )
            result[key.value] = self._value(value, tool, field)
        return result

    def _model(self, node: ast.Call, tool: str, field: str | None) -> dict[str, Any]:
        """``Guest(name="a", age=3)`` -> ``{"name": "a", "age": 3}``; validation comes later."""
        name = node.func.id if isinstance(node.func, ast.Name) else "model"
        if node.args:
            raise self._argument_error(
                node,
                tool,
                f"{name}(...) takes keyword arguments only, e.g. {name}(field=value)",
                field,
            )
        result: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is not None:
                result[keyword.arg] = self._value(keyword.value, tool, field)
            elif isinstance(keyword.value, ast.Dict):
                result.update(self._dict(keyword.value, tool, field))
            else:
                self._check_result_use(keyword)
                raise self._unavailable(keyword, f"unpacking `{self._segment(keyword)}`")
        return result

    # errors

    def _segment(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.code, node)
        return truncate(segment if segment is not None else ast.unparse(node))

    def _unavailable(self, node: ast.AST, what: str) -> ExecutionUnavailableError:
        line = getattr(node, "lineno", "?")
        return ExecutionUnavailableError(f"line {line}: {what} {NEEDS_EXECUTION}. {LITERAL_HINT}")

    def _argument_error(
        self, node: ast.AST, tool: str, problem: str, field: str | None
    ) -> ToolArgumentError:
        return argument_error(node, tool, problem, field)


def _signed_number(node: ast.expr) -> int | float | None:
    """``-3``, ``+2.5``, ``-(3)``: a number with signs in front, else None."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        number = _signed_number(node.operand)
        if number is None:
            return None
        return -number if isinstance(node.op, ast.USub) else number
    return None


def literal_key(node: ast.expr) -> Any:
    """The key of ``[...]`` when it is a literal str or int (not bool), else ``NOT_READ``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    number = _signed_number(node)
    return number if isinstance(number, int) else NOT_READ


def plain(value: Any) -> Any:
    """``*args`` binds a tuple: keep values JSON-shaped (lists, not tuples)."""
    return list(value) if isinstance(value, tuple) else value
