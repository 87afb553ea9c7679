"""Type expressions: what a schema converts to, before it is written out as annotations.

Conversion builds these (shared: a $ref converts once); rendering writes them as source once
every class has its name. Frozen values, so equal types compare equal in unions.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class _Plain:
    text: str  # e.g. "str", "int | float"; `uses` are the typing names it needs
    uses: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Lit:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class _List:
    item: _Ty


@dataclass(frozen=True)
class _Tuple:
    items: tuple[_Ty, ...]


@dataclass(frozen=True)
class _Dict:
    value: _Ty


@dataclass(frozen=True)
class _Union:
    arms: tuple[_Ty, ...]


@dataclass(frozen=True, eq=False)
class _Ref:
    cls: _Class


@dataclass(frozen=True)
class _Con:
    inner: _Ty
    kwargs: tuple[tuple[str, Any], ...]  # Field() constraint arguments


_Ty = _Plain | _Lit | _List | _Tuple | _Dict | _Union | _Ref | _Con

_ANY = _Plain("Any", ("Any",))
_NONE = _Plain("None")
_STR = _Plain("str")
_INT = _Plain("int")
# `float` alone would turn JSON 18 into 18.0; the smart union keeps ints ints.
_NUMBER = _Plain("int | float")
_BOOL = _Plain("bool")


@dataclass(eq=False)
class _Field:
    original: str
    ty: _Ty
    required: bool
    default: Any
    description: str | None
    absent_none: bool = False  # `| None` added only so the field can be left out
    py: str = ""  # the model's field name
    param: str = ""  # the stub's parameter name (the client's own when Python keeps it)


@dataclass(eq=False)
class _Class:
    name: str
    stem: str  # prefix for the names of classes nested in this one
    tool: str
    doc: str | None
    is_args: bool = False
    fields: list[_Field] = field(default_factory=list)
    extra: bool = False
    extra_ty: _Ty | None = None  # the type of extra properties (additionalProperties schema)


def _union(arms: Sequence[_Ty]) -> _Ty:
    flat: list[_Ty] = []
    for arm in arms:
        for sub in arm.arms if isinstance(arm, _Union) else (arm,):
            if sub == _ANY:
                return _ANY
            if sub not in flat:
                flat.append(sub)
    # One Literal for all literal arms (Literal[False] | Literal[0] would read 0 as False), after
    # the other arms (a Literal[1] arm takes True before a bool arm could); None last reads best.
    literals = [ty for ty in flat if isinstance(ty, _Lit)]
    if len(literals) > 1:
        values: list[Any] = []
        for lit in literals:
            values.extend(
                v for v in lit.values if not any(type(v) is type(w) and v == w for w in values)
            )
        flat = [ty for ty in flat if not isinstance(ty, _Lit)] + [_Lit(tuple(values))]
    flat.sort(key=lambda ty: 2 if ty == _NONE else 1 if isinstance(ty, _Lit) else 0)
    return flat[0] if len(flat) == 1 else _Union(tuple(flat))


def _allows_none(ty: _Ty) -> bool:
    if ty in (_NONE, _ANY):
        return True
    if isinstance(ty, _Union):
        return any(_allows_none(arm) for arm in ty.arms)
    if isinstance(ty, _Lit):
        return None in ty.values
    if isinstance(ty, _Con):
        return _allows_none(ty.inner)
    return False


def _plain(ty: _Ty) -> _Ty:
    """The type without constraints (what the stub's signature shows)."""
    if isinstance(ty, _Con):
        return _plain(ty.inner)
    if isinstance(ty, _List):
        return _List(_plain(ty.item))
    if isinstance(ty, _Tuple):
        return _Tuple(tuple(_plain(i) for i in ty.items))
    if isinstance(ty, _Dict):
        return _Dict(_plain(ty.value))
    if isinstance(ty, _Union):
        return _union([_plain(a) for a in ty.arms])
    return ty


def _hoist(ty: _Ty) -> tuple[_Ty, tuple[tuple[str, Any], ...]]:
    """Move a field's own constraints into its Field(...) call (also through `| None`)."""
    if isinstance(ty, _Con):
        return ty.inner, ty.kwargs
    if isinstance(ty, _Union) and len(ty.arms) == 2 and ty.arms[1] == _NONE:
        first = ty.arms[0]
        if isinstance(first, _Con):
            return _Union((first.inner, _NONE)), first.kwargs
    return ty, ()


def _constrained(ty: _Ty) -> bool:
    return any(isinstance(node, _Con) for node in _nodes(ty))


def _nodes(ty: _Ty) -> typing.Iterator[_Ty]:
    """Each type expression inside ``ty`` once, depth first, left to right. Expressions are
    shared (a $ref converts once), so the tree written out can be exponentially larger."""
    seen: set[int] = set()
    todo = [ty]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, _List):
            todo.append(node.item)
        elif isinstance(node, _Dict):
            todo.append(node.value)
        elif isinstance(node, _Con):
            todo.append(node.inner)
        elif isinstance(node, _Tuple | _Union):
            todo.extend(reversed(node.items if isinstance(node, _Tuple) else node.arms))
