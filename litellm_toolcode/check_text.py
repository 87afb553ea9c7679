"""The wording of check.py's errors: the model reads them in repair rounds, so each names the
line, the piece of code and the signature at fault."""

from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import re
from collections.abc import Mapping
from typing import Any

from .errors import ToolArgumentError

__all__ = [
    "BUILTINS",
    "CONSTRUCTS",
    "JSON_NAMES",
    "LITERAL_HINT",
    "NEEDS_EXECUTION",
    "argument_error",
    "bind_error",
    "syntax_message",
    "truncate",
]

SEGMENT_LIMIT = 80
NEEDS_EXECUTION = "needs code execution, which is not enabled for this model"
LITERAL_HINT = (
    "Write each tool call as a plain call with literal argument values "
    "(strings, numbers, lists, dicts, True/False/None)."
)
BUILTINS = frozenset(dir(builtins))
# JSON spellings models carry over into Python.
JSON_NAMES = {"true": "True", "false": "False", "null": "None", "none": "None"}

CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.For: "a for loop",
    ast.AsyncFor: "an async for loop",
    ast.While: "a while loop",
    ast.If: "an if statement",
    ast.With: "a with statement",
    ast.AsyncWith: "an async with statement",
    ast.FunctionDef: "a function definition",
    ast.AsyncFunctionDef: "a function definition",
    ast.ClassDef: "a class definition",
    ast.Try: "a try statement",
    ast.TryStar: "a try statement",
    ast.Match: "a match statement",
    ast.AugAssign: "an augmented assignment",
    ast.AnnAssign: "an annotated assignment",
    ast.Assign: "an assignment of something other than one tool call",
    ast.Delete: "a del statement",
    ast.Return: "a return statement",
    ast.Raise: "a raise statement",
    ast.Assert: "an assert statement",
    ast.Global: "a global statement",
    ast.Nonlocal: "a nonlocal statement",
    ast.Break: "a break statement",
    ast.Continue: "a continue statement",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Lambda: "a lambda",
    ast.JoinedStr: "an f-string",
    ast.BinOp: "arithmetic",
    ast.BoolOp: "a boolean operation",
    ast.Compare: "a comparison",
    ast.IfExp: "a conditional expression",
    ast.Subscript: "an indexing expression",
    ast.Attribute: "an attribute access",
    ast.NamedExpr: "an assignment expression",
    ast.Call: "a call",
    ast.Await: "an await expression",
}


def syntax_message(error: SyntaxError, code: str) -> str:
    lineno = error.lineno or 1
    lines = code.splitlines()
    text = error.text if error.text is not None else ""
    if not text.strip() and 0 < lineno <= len(lines):
        text = lines[lineno - 1]
    text = text.rstrip("\n")
    return f"line {lineno}: {error.msg}" + (f"\n    {text.strip()}" if text.strip() else "")


def truncate(text: str) -> str:
    text = " ".join(text.split())  # one line, whatever the layout
    return text if len(text) <= SEGMENT_LIMIT else text[: SEGMENT_LIMIT - 3] + "..."


def bind_error(
    call: ast.Call,
    tool: str,
    signature: inspect.Signature,
    error: TypeError,
    kwargs: Mapping[str, Any],
) -> ToolArgumentError:
    text = str(error)
    quoted = re.search(r"'([^']+)'", text)
    field = quoted.group(1) if quoted else None
    parameters = signature.parameters
    if text.startswith("missing a required argument"):
        problem = f"missing required argument {field!r}"
    elif text.startswith("got an unexpected keyword argument"):
        close = difflib.get_close_matches(field or "", list(parameters), n=1)
        problem = f"unexpected keyword argument {field!r}" + (
            f" (did you mean {close[0]!r}?)" if close else ""
        )
    elif text.startswith("too many positional arguments"):
        accepted = sum(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters.values()
        )
        given = len(call.args)
        problem = (
            f"too many positional arguments ({given} given, at most {accepted} accepted); "
            "pass the arguments by keyword"
        )
        field = None
    elif text.startswith("multiple values for argument"):
        problem = f"argument {field!r} is given twice (by position and by keyword)"
    elif "positional only" in text:
        problem = f"argument {field!r} must be passed by position"
    else:
        problem = text
    if field is not None and field not in parameters and field not in kwargs:
        field = None
    return ToolArgumentError(
        f"line {call.lineno}: {tool}(): {problem}. The signature is {tool}{signature}.",
        tool=tool,
        field=field,
    )


def argument_error(node: ast.AST, tool: str, problem: str, field: str | None) -> ToolArgumentError:
    line = getattr(node, "lineno", "?")
    where = f"argument {field!r}: " if field else ""
    return ToolArgumentError(f"line {line}: {tool}(): {where}{problem}", tool=tool, field=field)
