"""Client names -> safe Python identifiers: tool functions, argument fields, model classes.

A name that is already a safe identifier keeps itself; others are mangled to readable ASCII and
made unique. Reserved names keep the generated module (and the Jupyter kernel it runs in)
working whatever the client calls its tools and properties.

A stub's parameter is not a model field: it only has to be a name Python keeps as written, so
every client property that is one (``list``, ``_from``, ``model_3d``, ``año_vehiculo``) is its
own parameter; the model field behind it may be renamed (``_from`` -> ``from_``, aliased).
"""

from __future__ import annotations

import builtins
import keyword
import re
import typing
import unicodedata
from collections.abc import Sequence

from pydantic import BaseModel

from ..spelling import forced_spellings
from .typexpr import _Class

# Names the generated module binds or uses in annotations: nothing a client sends may shadow them.
_MODULE_NAMES = frozenset(
    {"Annotated", "Any", "Literal", "BaseModel", "ConfigDict", "Field"}
    | {"str", "int", "float", "bool", "list", "dict", "tuple", "None"}
)
# Tool stubs are module globals (here and in the Jupyter kernel): keep builtins and IPython's
# injected names working.
_TOOL_RESERVED = (
    _MODULE_NAMES
    | frozenset(keyword.kwlist)
    | frozenset(dir(builtins))
    | {"display", "get_ipython", "In", "Out"}
)
# Property names are class attributes and stub parameters: a parameter may shadow a builtin
# (`type`, `id` stay readable and are what models write), but not BaseModel's API or a name the
# class body itself uses later.
_BASEMODEL_ATTRS = frozenset(n for n in dir(BaseModel) if not n.startswith("_"))
_FIELD_RESERVED = _MODULE_NAMES | frozenset(keyword.kwlist) | _BASEMODEL_ATTRS


def _keepable(name: str) -> bool:
    """Whether Python reads ``name`` back unchanged as a parameter or variable: an identifier,
    not a keyword, and NFKC-stable (the parser NFKC-normalizes identifiers: `ﬁle` is `file`)."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and unicodedata.normalize("NFKC", name) == name
    )


def _field_base(raw: str) -> str:
    """A field's name before reserved names are checked: the client's own when Python and
    Pydantic keep it (no leading underscore: Pydantic makes those private attributes)."""
    return raw if _keepable(raw) and not raw.startswith("_") else _identifier(raw, "field", "f_")


def _ascii_words(raw: str) -> str:
    """ASCII letters/digits/underscores of ``raw`` (accents dropped, anything else -> `_`)."""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^0-9A-Za-z_]+", "_", text)


def _identifier(raw: str, fallback: str, digit_prefix: str) -> str:
    """A readable ASCII identifier for ``raw`` (not yet checked against reserved names).

    Python NFKC-normalizes identifiers, so non-ASCII names could change under us: keep ASCII.
    """
    text = _ascii_words(raw)
    if not raw.endswith("_") or raw.startswith("__"):  # keep `class_`, drop dunder's trailer
        text = text.rstrip("_")
    text = text.lstrip("_")  # pydantic treats leading-underscore fields as private
    if not text:
        text = fallback
    if text[0].isdigit():
        text = digit_prefix + text
    return text


def _camel(raw: str, fallback: str = "Model") -> str:
    parts = [p for p in _ascii_words(raw).split("_") if p]
    text = "".join(p[0].upper() + p[1:] for p in parts) or fallback
    return f"{fallback}{text}" if text[0].isdigit() else text


def _assign_names(
    raws: Sequence[str],
    base: typing.Callable[[str], str],
    bad: typing.Callable[[str], bool],
    usable: typing.Callable[[str], bool],
    prefix: str,
    avoid: typing.Collection[str] = (),
    claimed: Sequence[typing.Collection[str]] = (),
) -> list[str]:
    """Safe unique names for ``raws``; a name already safe keeps itself ahead of mangled ones.

    ``bad`` says a client's name needs mangling; ``usable`` says a mangled candidate is fine
    (``model_name`` is bad but ``model_name_`` usable; ``model_dump_`` is not: pydantic protects
    that prefix, so it becomes ``f_model_dump``). Mangled names never take a name in ``avoid``;
    ``claimed[i]`` are names the i-th may not keep even when they are its own.
    """
    out: dict[int, str] = {}
    taken: set[str] = set()
    for i, raw in enumerate(raws):  # first pass: exact names win (`get_weather` over `get-weather`)
        mine = claimed[i] if claimed else ()
        if base(raw) == raw and not bad(raw) and raw not in taken and raw not in mine:
            out[i] = raw
            taken.add(raw)
    for i, raw in enumerate(raws):
        if i in out:
            continue
        stem = base(raw)
        if bad(stem):
            stem = f"{stem}_" if usable(f"{stem}_") else f"{prefix}{stem}"
        name, n = stem, 2
        while name in taken or not usable(name) or _blocked(name, raw, avoid, raws):
            name, n = f"{stem}_{n}", n + 1
        out[i] = name
        taken.add(name)
    return [out[i] for i in range(len(raws))]


def _blocked(name: str, raw: str, avoid: typing.Collection[str], raws: Sequence[str]) -> bool:
    """Whether a mangled ``name`` for ``raw`` hits ``avoid``; its own forced spelling (``from_``
    for ``from``) is fine unless it is also another client's name."""
    if name not in avoid:
        return False
    return name in raws or name not in forced_spellings(raw)


class _Namer:
    def __init__(self, taken: set[str]) -> None:
        self.taken = taken

    def claim(self, stem: str) -> str:
        name, n = stem, 2
        while name in self.taken:
            name, n = f"{stem}{n}", n + 1
        self.taken.add(name)
        return name


def _bad_tool_name(name: str) -> bool:
    return name in _TOOL_RESERVED


def _claimed(raws: Sequence[str]) -> list[set[str]]:
    """For each name, the other names' forced spellings (``spelling.forced_spellings``)."""
    forced = [forced_spellings(raw) for raw in raws]
    every = set().union(*forced)
    return [every - own if own else every for own in forced]


def _contested(raws: Sequence[str]) -> set[str]:
    """Names a stub must not take: every client name and every forced spelling of one. A
    stub name is then never another tool's or argument's spelling (always unambiguous)."""
    return set(raws).union(*(forced_spellings(raw) for raw in raws))


def _tool_names(names: Sequence[str]) -> list[str]:
    """The stubs' function names, one per client tool name, in order."""
    claimed = _claimed(names)
    return _assign_names(
        names,
        lambda raw: _identifier(raw, "tool", "t_"),
        _bad_tool_name,
        lambda name: not _bad_tool_name(name),
        "t_",
        avoid=_contested(names),
        claimed=claimed,
    )


def _param_names(originals: Sequence[str], fields: Sequence[str]) -> list[str]:
    """A stub's parameter names: the client's own where Python keeps it and no other property
    is forced into that spelling (``from_`` when ``from`` is there too), else the field's."""
    claimed = _claimed(originals)
    contested = _contested(originals)
    out: list[str | None] = [
        raw if _keepable(raw) and raw not in claimed[i] else None for i, raw in enumerate(originals)
    ]
    taken = {name for name in out if name is not None}
    for i, stem in enumerate(fields):
        if out[i] is None:
            name, n = stem, 2
            while name in taken or _blocked(name, originals[i], contested, originals):
                name, n = f"{stem}_{n}", n + 1
            out[i] = name
            taken.add(name)
    return [name for name in out if name is not None]


def _name_fields(cls: _Class, class_names: set[str]) -> None:
    """Give every field of ``cls`` its Python name (``_Field.py``)."""

    def usable(name: str) -> bool:
        return (
            name not in _FIELD_RESERVED
            and name not in class_names
            and not name.startswith(("model_dump", "model_validate"))
        )

    def bad(name: str) -> bool:  # any model_* could be a future BaseModel attribute
        return not usable(name) or name.startswith("model_")

    originals = [f.original for f in cls.fields]
    # A mangled field never takes another property's client name: with populate_by_name, a
    # key would then match one field by name and another by alias.
    names = _assign_names(originals, _field_base, bad, usable, "f_", avoid=set(originals))
    for f, name in zip(cls.fields, names, strict=True):
        f.py = name
    if cls.is_args:
        for f, param in zip(cls.fields, _param_names(originals, names), strict=True):
            f.param = param
