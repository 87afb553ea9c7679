"""Which tool a call in the model's code names, and which parameter each written argument
means, for the literal reader (``check.py``): the stubs' own names, the client's spellings
(``spelling.py``), stubs namespaced as ``tools.f``, and what an ambiguous name is told."""

from __future__ import annotations

import ast
import difflib
import inspect
from collections.abc import Mapping

from .check_text import argument_error
from .errors import UnknownToolError
from .spelling import CallNames, dotted_name

__all__ = ["ToolNames"]


class ToolNames:
    """The names one request's code may call, and what each means."""

    def __init__(
        self,
        signatures: Mapping[str, inspect.Signature],
        model_names: frozenset[str],
        names: CallNames | None,
    ) -> None:
        self.signatures = signatures
        self.model_names = model_names
        self.names = names or CallNames.empty()
        self.imported: set[str] = set()  # `import math`: then `math.f()` is no tool `math.f`

    def parameter(self, node: ast.AST, function: str, written: str, *, quoted: bool) -> str:
        """The stub parameter a written argument name means (the name itself when none)."""
        meanings = self.names.argument(function, written, quoted=quoted)
        if len(meanings) > 1:
            scope = self.names.arguments[function]
            raise argument_error(
                node, function, scope.ambiguity(written, meanings, "argument"), written
            )
        return meanings[0] if meanings else written

    def tool_named(self, written: str) -> str | None:
        """The stub a written tool name means; UnknownToolError when it may mean two."""
        if written in self.signatures:
            return written
        meanings = self.names.tool(written)
        if len(meanings) > 1:
            message = self.names.tools.ambiguity(written, meanings, "tool")
            raise UnknownToolError(f"{message}. Call it by its function name.", name=written)
        return meanings[0] if meanings and meanings[0] in self.signatures else None

    def spelled_tool(self, func: ast.expr) -> str | None:
        """The tool ``func`` names by its stub or the client's spelling (``sum``,
        ``math.factorial``; not after ``import math``), else None."""
        dotted = dotted_name(func)
        if dotted is None or ("." in dotted and dotted.split(".")[0] in self.imported):
            return None
        return self.tool_named(dotted)

    def is_tool_call(self, node: ast.expr) -> bool:
        """A call the reader takes as a tool's: by its stub name or the client's spelling."""
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        if self.spelled_tool(func) is not None:
            return True
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name in self.signatures and name not in self.model_names

    def available(self) -> str:
        return ", ".join(sorted(self.signatures)) or "(none)"

    def did_you_mean(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.signatures), n=1)
        return f" (did you mean {close[0]}?)" if close else ""
