"""The names a model may write for a tool or an argument, and which one each of them means.

A call may use the stub's name (what the prompt shows) or the client's own name (what the model
reads in descriptions and earlier turns: ``sum(...)`` for a tool ``sum`` whose stub is ``sum_``,
``math.factorial(...)``, ``**{"from": ...}``). Python forces some client names into another
spelling, and those are read as the client's name too: a keyword takes a trailing underscore
(``from`` -> ``from_``) and the parser NFKC-normalizes identifiers (``ﬁle`` -> ``file``). A
written name that two tools or two arguments may claim is an error naming both; the stub names
never are (``schema/naming.py`` gives no stub a name another tool or argument claims).
"""

from __future__ import annotations

import ast
import keyword
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["CallNames", "Spellings", "dotted_name", "forced_spellings"]


def forced_spellings(name: str) -> frozenset[str]:
    """What Python makes of ``name`` when a model writes it: NFKC form, keyword + ``_``."""
    out: set[str] = set()
    normal = unicodedata.normalize("NFKC", name)
    if normal != name and normal.isidentifier() and not keyword.iskeyword(normal):
        out.add(normal)
    if keyword.iskeyword(normal):
        out.add(normal + "_")
    return frozenset(out)


@dataclass(frozen=True)
class Spellings:
    """One scope of names (a request's tools, or one tool's arguments): written -> meanings."""

    _written: Mapping[str, tuple[str, ...]]  # stub, client or forced spelling -> stub names
    _client: Mapping[str, str]  # the client's exact name -> stub name
    _label: Mapping[str, str]  # stub name -> the client's name

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Spellings:
        """``pairs``: (stub name, client name) for every tool or argument of the scope."""
        written: dict[str, set[str]] = {}
        client: dict[str, str] = {}
        label: dict[str, str] = {}
        for stub, name in pairs:
            client[name] = stub
            label[stub] = name
            for spelling in {stub, name, *forced_spellings(name)}:
                written.setdefault(spelling, set()).add(stub)
        return cls(
            MappingProxyType({k: tuple(sorted(v)) for k, v in written.items()}),
            MappingProxyType(client),
            MappingProxyType(label),
        )

    def lookup(self, written: str, *, quoted: bool = False) -> tuple[str, ...]:
        """The stub names ``written`` may mean: none (not a name of this scope), one, or more
        (ambiguous). ``quoted``: a dict key (``**{"from": 1}``), where the client's exact name
        wins, since no parser touched it."""
        if quoted and written in self._client:
            return (self._client[written],)
        return self._written.get(written, ())

    def label(self, stub: str) -> str:
        """The client's name behind a stub name (the stub name itself when unknown)."""
        return self._label.get(stub, stub)

    def aliases(self) -> dict[str, tuple[str, ...]]:
        """Every written name that is not simply a stub's own name -> what it means."""
        return {k: v for k, v in self._written.items() if v != (k,)}

    def names(self) -> frozenset[str]:
        return frozenset(self._written)

    def ambiguity(self, written: str, meanings: Iterable[str], kind: str) -> str:
        """The message for a ``written`` name that means several ``kind``s (tool/argument)."""
        options = " or ".join(
            f"{kind} {self.label(stub)!r} (write {stub})" for stub in sorted(meanings)
        )
        return f"the name {written!r} is ambiguous: it may mean {options}"


@dataclass(frozen=True)
class CallNames:
    """The spellings of a request's tools and of each tool's arguments."""

    tools: Spellings
    arguments: Mapping[str, Spellings]  # stub function name -> its arguments' spellings

    @classmethod
    def empty(cls) -> CallNames:
        return cls(Spellings.of(()), MappingProxyType({}))

    def tool(self, written: str) -> tuple[str, ...]:
        return self.tools.lookup(written)

    def argument(self, function: str, written: str, *, quoted: bool = False) -> tuple[str, ...]:
        scope = self.arguments.get(function)
        return scope.lookup(written, quoted=quoted) if scope is not None else ()

    def callable_names(self) -> frozenset[str]:
        """Every name a call to a tool may be written with (finding code in an answer): names
        and dotted names (``math.factorial``), not ``get-weather``, which Python cannot call."""
        return frozenset(
            name
            for name in self.tools.names()
            if all(part.isidentifier() for part in name.split("."))
        )


def dotted_name(node: ast.expr) -> str | None:
    """How code names what it calls: ``a.b.c`` for attributes on a name (``math.factorial``),
    ``a`` for a name, else None (``f()()``, ``x[0]()``)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base is not None else None
    return None
