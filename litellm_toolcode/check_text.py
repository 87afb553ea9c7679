"""How the literal reader (``check.py``) words what it cannot read: the constructs that need
execution, the hint that goes with them, and syntax errors with the line at fault."""

from __future__ import annotations

import ast
import builtins

_NEEDS_EXECUTION = "needs code execution, which is not enabled for this model"
_LITERAL_HINT = (
    "Write each tool call as a plain call with literal argument values "
    "(strings, numbers, lists, dicts, True/False/None)."
)
_SEGMENT_LIMIT = 80
_BUILTINS = frozenset(dir(builtins))
# JSON spellings models carry over into Python.
_JSON_NAMES = {"true": "True", "false": "False", "null": "None", "none": "None"}
_CONSTRUCTS: dict[type[ast.AST], str] = {
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


def _syntax_message(error: SyntaxError, code: str) -> str:
    lineno = error.lineno or 1
    lines = code.splitlines()
    text = error.text if error.text is not None else ""
    if not text.strip() and 0 < lineno <= len(lines):
        text = lines[lineno - 1]
    text = text.rstrip("\n")
    return f"line {lineno}: {error.msg}" + (f"\n    {text.strip()}" if text.strip() else "")


def _truncate(text: str) -> str:
    text = " ".join(text.split())  # one line, whatever the layout
    return text if len(text) <= _SEGMENT_LIMIT else text[: _SEGMENT_LIMIT - 3] + "..."
