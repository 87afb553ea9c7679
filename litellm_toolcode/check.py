"""Read tool calls from the model's code without running it: the literal fast path.

Most answers are a few calls with literal arguments (``get_weather("Paris", unit="C")``). Those
are read straight from the AST and bound to the tool stubs' signatures, so positional arguments,
negative numbers, nested lists/dicts and strings of any quoting come out exactly. Anything that
would need the code to run (loops, arithmetic, a method call) raises
``ExecutionUnavailableError``, so the hook can either run the code in the sandbox or answer with a
message that tells the model what to write instead. Messages name the line and the piece of code
at fault (wording: ``check_text.py``): in repair rounds the model reads them. This module reads
statements and calls; the literal values inside them are ``check_values.py``'s.

A tool's result is read where it stays literal (``g(v=f(...))``, ``g(v=x)``, ``f(...)[1]``):
it is the result answered earlier in the conversation (``results.Answered``), else the code stops
there (``ResultUsedError``). Every call read is recorded with ``bare``; ``results.resolve``
decides which go out.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .check_names import ToolNames
from .check_text import BUILTINS, CONSTRUCTS, NEEDS_EXECUTION, bind_error, syntax_message
from .check_values import NOT_READ, ValueReader, literal_key, plain
from .errors import (
    CodeSyntaxError,
    ExecutionUnavailableError,
    ModelOutputError,
    UnknownToolError,
)
from .results import LiteralCall, Pending, first_pending

if TYPE_CHECKING:
    from .results import Answered
    from .spelling import CallNames

__all__ = ["LiteralCall", "ResultUsedError", "read_literal_calls"]


class ResultUsedError(ExecutionUnavailableError):
    """The code uses a tool's result, which only exists after the client runs the tool.

    ``calls`` holds the calls read before that point: the hook may emit them and let the model
    continue with their results in the next turn (design.md section 4).
    """

    def __init__(
        self, message: str, *, function: str, line: int, calls: tuple[LiteralCall, ...]
    ) -> None:
        super().__init__(message)
        self.function = function
        self.line = line
        self.calls = calls


def read_literal_calls(
    code: str,
    signatures: Mapping[str, inspect.Signature],
    model_names: Collection[str] = (),
    names: CallNames | None = None,
    answered: Answered | None = None,
) -> tuple[LiteralCall, ...]:
    """Read the tool calls in ``code``, in order, with arguments bound by ``signatures``;
    ``names`` also reads the client's own spellings of tools and arguments (``Toolset.names``);
    a use of a call's result gets the result when ``answered`` knows it.

    Raises ``CodeSyntaxError`` (not Python), ``UnknownToolError`` (calls something that is not a
    tool), ``ToolArgumentError`` (arguments do not fit the signature or are not JSON-like) or
    ``ExecutionUnavailableError`` (the code needs to run; ``ResultUsedError`` when it uses a
    tool's result).
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise CodeSyntaxError(syntax_message(error, code)) from error
    except ValueError as error:  # e.g. a NUL byte in the source
        raise CodeSyntaxError(f"the code cannot be parsed: {error}") from error
    return _Reader(code, signatures, frozenset(model_names), names, answered).read(tree)


class _Reader(ValueReader):
    """Walks the module's statements; remembers which names hold tool results."""

    def __init__(
        self,
        code: str,
        signatures: Mapping[str, inspect.Signature],
        model_names: frozenset[str],
        names: CallNames | None,
        answered: Answered | None,
    ) -> None:
        super().__init__(code, ToolNames(signatures, model_names, names))
        self.answered = answered
        self.calls: list[LiteralCall] = []

    def read(self, tree: ast.Module) -> tuple[LiteralCall, ...]:
        for statement in tree.body:
            self._statement(statement)
        return tuple(self.calls)

    # statements

    def _statement(self, statement: ast.stmt) -> None:
        if isinstance(statement, ast.Import | ast.ImportFrom | ast.Pass):
            for alias in getattr(statement, "names", ()):
                self.tools.imported.add((alias.asname or alias.name).split(".")[0])
            return  # harmless: the stubs are already "imported"
        if isinstance(statement, ast.Expr):
            value = statement.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return  # a docstring-like note
            if isinstance(value, ast.Name) and self._names_a_tool(value):
                # `ls` on a line of its own: a shell's or a REPL's habit, which Python reads as
                # doing nothing. It is that tool called without arguments (the sandbox too:
                # sandbox/prelude.py `_MarkBare`); missing required ones are then named.
                value = ast.copy_location(ast.Call(func=value, args=[], keywords=[]), value)
            call = self._tool_call_of(value)
            if call is not None:
                self.calls.append(self._call(call))
                return
        elif (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            name = statement.targets[0].id
            call = self._tool_call_of(statement.value)
            if call is not None:
                literal = self._call(call, bare=False)
                self.calls.append(literal)
                found, result = self._lookup(literal)
                if found:
                    self._bind(name, result)
                else:
                    self.values.pop(name, None)
                    self.results[name] = (literal.function, statement.lineno, len(self.calls) - 1)
                return
            if isinstance(statement.value, ast.Subscript):
                result = self._subscript(statement.value)
                if result is not NOT_READ:
                    self._bind(name, result)
                    return
        self._check_result_use(statement)
        raise self._unavailable(statement, self._describe(statement))

    def _names_a_tool(self, name: ast.Name) -> bool:
        """A name of a tool, not a variable of the code's own (``x = f()`` then ``x``)."""
        if name.id in self.results or name.id in self.values:
            return False
        return self.tools.spelled_tool(name) is not None

    def _tool_call_of(self, value: ast.expr) -> ast.Call | None:
        """The call in ``f(...)``, ``await f(...)`` or ``print(f(...))``, else None."""
        if isinstance(value, ast.Await):
            value = value.value
        if not isinstance(value, ast.Call):
            return None
        if (
            isinstance(value.func, ast.Name)
            and value.func.id == "print"
            and not self.tools.tool_named("print")
        ):
            if len(value.args) == 1 and not value.keywords:
                inner = value.args[0]
                if isinstance(inner, ast.Await):
                    inner = inner.value
                if isinstance(inner, ast.Call):
                    return inner
            return None
        return value

    def _describe(self, statement: ast.stmt) -> str:
        node: ast.AST = statement.value if isinstance(statement, ast.Expr) else statement
        what = CONSTRUCTS.get(type(node))
        if what is None:
            what = "an expression" if isinstance(statement, ast.Expr) else "this statement"
        return f"{what} (`{self._segment(statement)}`)"

    # calls

    def _bind(self, name: str, value: Any) -> None:
        """``name = ...`` where the value is known (a result from the conversation)."""
        self.results.pop(name, None)
        self.values[name] = value

    def _lookup(self, call: LiteralCall) -> tuple[bool, Any]:
        return (False, None) if self.answered is None else self.answered.lookup(call)

    def _call(self, call: ast.Call, *, bare: bool = True) -> LiteralCall:
        function = self._function(call)
        signature = self.tools.signatures[function]
        positional_names = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        args: list[Any] = []
        for arg in call.args:
            if isinstance(arg, ast.Starred):
                if not isinstance(arg.value, ast.List | ast.Tuple):
                    self._check_result_use(arg)
                    raise self._unavailable(arg, f"unpacking `{self._segment(arg)}`")
                elements: Sequence[ast.expr] = arg.value.elts
            else:
                elements = [arg]
            for element in elements:
                index = len(args)
                field = positional_names[index] if index < len(positional_names) else None
                args.append(self._value(element, function, field))
        kwargs: dict[str, Any] = {}
        for keyword in call.keywords:
            if keyword.arg is not None:
                name = self.tools.parameter(keyword, function, keyword.arg, quoted=False)
                if name in kwargs:  # ast.parse lets `f(a=1, a=2)` through; compile doesn't
                    raise self._argument_error(
                        keyword, function, "given twice; pass each argument once", keyword.arg
                    )
                kwargs[name] = self._value(keyword.value, function, keyword.arg)
                continue
            if not isinstance(keyword.value, ast.Dict):
                self._check_result_use(keyword)
                raise self._unavailable(keyword, f"unpacking `{self._segment(keyword)}`")
            spread = self._value(keyword.value, function, None)
            for key, value in spread.items():
                name = self.tools.parameter(keyword, function, key, quoted=True)
                if name in kwargs:
                    raise self._argument_error(
                        call, function, "given twice; pass each argument once", name
                    )
                kwargs[name] = value
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            pending = first_pending([args, kwargs])
            if pending is not None:
                # `diff(diff("a", "b"))`: the outer call waits for the inner one's result, so the
                # answer stops there whether or not the outer call fits; the model writes it
                # again, with the result in front of it (the sandbox's recorder does the same).
                raise self._used(call, pending) from None
            written = call.func.id if isinstance(call.func, ast.Name) else function
            if (
                written != function
                and written in BUILTINS
                and not set(kwargs) & set(signature.parameters)
            ):
                # `sum([1, 2])` beside a tool the client named `sum` (no argument of the tool's
                # named): the builtin, as in the kernel (sandbox/prelude.py `_or_builtin`).
                raise self._unavailable(call, f"calling the built-in {written}()") from None
            raise bind_error(call, function, signature, error, kwargs) from None
        literal = LiteralCall(
            function, {name: plain(v) for name, v in bound.arguments.items()}, bare
        )
        pending = first_pending(literal.arguments)
        if pending is not None:  # not recorded: it needs a result only the client can give
            raise self._used(call, pending)
        return literal

    def _nested(self, node: ast.Call) -> Any:
        """A call whose value the code takes: recorded, then its known result or a Pending."""
        literal = self._call(node, bare=False)
        self.calls.append(literal)
        found, result = self._lookup(literal)
        return result if found else Pending(literal.function, node.lineno, len(self.calls) - 1)

    def _subscript(self, node: ast.Subscript) -> Any:
        """``f(...)[1]``, ``x["price"]``: a lookup with literal keys in a tool's result, done
        here when the result is known; ``NOT_READ`` when it is no such lookup."""
        keys: list[Any] = []
        base: ast.expr = node
        while isinstance(base, ast.Subscript):
            keys.insert(0, literal_key(base.slice))
            base = base.value
        if any(key is NOT_READ for key in keys):
            return NOT_READ  # the sandbox evaluates the keys
        if isinstance(base, ast.Name) and base.id in self.values:
            value = self.values[base.id]
        elif isinstance(base, ast.Name) and base.id in self.results:
            value = Pending(*self.results[base.id], name=base.id)
        elif self.tools.is_tool_call(base):
            assert isinstance(base, ast.Call)
            value = self._nested(base)
        else:
            return NOT_READ
        if isinstance(value, Pending):
            raise self._used(node, value)
        for key in keys:
            try:
                value = value[key]
            except (LookupError, TypeError) as exc:
                raise ModelOutputError(
                    f"line {node.lineno}: `{self._segment(node)}` raised "
                    f"{type(exc).__name__}: {exc} (the result it looks into is the tool's "
                    "answer earlier in the conversation)"
                ) from None
        return value

    def _function(self, call: ast.Call) -> str:
        func = call.func
        found = self.tools.spelled_tool(func)
        if found is not None:
            return found
        available = self.tools.available()
        if isinstance(func, ast.Name):
            name = func.id
            if name in self.tools.model_names:
                raise UnknownToolError(
                    f"line {call.lineno}: {name} is a data model, not a function. Call one of "
                    f"the functions ({available}) and pass {name}(...) as an argument.",
                    name=name,
                )
            self._check_result_use(call)
            if name in BUILTINS:
                raise self._unavailable(call, f"calling the built-in {name}()")
            raise UnknownToolError(
                f"line {call.lineno}: {name}() is not an available function"
                f"{self.tools.did_you_mean(name)}. The available functions are: {available}.",
                name=name,
            )
        if isinstance(func, ast.Attribute):
            if func.attr in self.tools.signatures:
                # `tools.get_weather(...)`: models like to namespace the stubs.
                return func.attr
            self._check_result_use(call)
            dotted = self._segment(func)
            raise UnknownToolError(
                f"line {call.lineno}: {dotted}() is not an available function"
                f"{self.tools.did_you_mean(func.attr)}. Call the functions by name; the available "
                f"functions are: {available}.",
                name=dotted,
            )
        self._check_result_use(call)
        raise self._unavailable(call, f"calling `{self._segment(func)}`")

    # errors

    def _check_result_use(self, node: ast.AST) -> None:
        """Raise ResultUsedError if ``node`` reads a variable that holds a tool's result."""
        for child in ast.walk(node):
            if (
                isinstance(child, ast.Name)
                and isinstance(child.ctx, ast.Load)
                and child.id in self.results
            ):
                raise self._used(node, Pending(*self.results[child.id], name=child.id))

    def _used(self, node: ast.AST, pending: Pending) -> ResultUsedError:
        line = getattr(node, "lineno", pending.line)
        held = f"`{pending.name}`, line {pending.line}" if pending.name else f"line {pending.line}"
        return ResultUsedError(
            f"line {line}: `{self._segment(node)}` uses the result of {pending.function}(...) "
            f"({held}); a tool's result is only known after the tool has run, and using it "
            f"here {NEEDS_EXECUTION}. Call the tools you need now with literal arguments; "
            "their results come back in the next turn.",
            function=pending.function,
            line=line,
            calls=tuple(
                replace(call, result_needed=True) if index == pending.index else call
                for index, call in enumerate(self.calls)
            ),
        )
