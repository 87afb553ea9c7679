"""OpenAI ``tools`` (JSON Schema) -> one Python module: Pydantic argument models + typed stubs.

The generated source is the single source of truth for validation: the host ``exec``s exactly
that source and validates every call with the models it defines (the sandbox kernel runs the same
source later). The model reads it less the argument models that only repeat their stub
(``Toolset.prompt_source``): whole blocks left out, nothing rewritten. Everything taken from the
client (names, descriptions, enum values, defaults) reaches the source only as a checked Python
identifier or a Python literal, so a schema cannot inject code.
"""

from __future__ import annotations

import ast
import builtins
import collections
import functools
import hashlib
import inspect
import json
import keyword
import math
import re
import traceback
import typing
import unicodedata
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import jsonschema  # type: ignore[import-untyped]
import regex
from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, SchemaValidator, core_schema

from . import bounds
from .errors import PatternTimeoutError, SchemaError, ToolArgumentError, UnknownToolError

__all__ = ["ToolSpec", "Toolset", "build_toolset", "cached_toolset"]

_ENV = Environment(
    loader=PackageLoader("litellm_toolcode", "templates"),
    autoescape=False,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)
_FILENAME = "<toolcode tools>"
_MAX_DEPTH = 48  # deeper schemas are refused instead of hitting Python's recursion limit
# Type expressions the generated code of one request may hold (a 128-tool BFCL-like list needs
# a few thousand); past it, conversion stops with a SchemaError instead of growing the text.
_MAX_RENDERED_TYPES = 50_000
_R = TypeVar("_R")
_LINE_WIDTH = 100
# Descriptions of top-level arguments live in the stub's docstring (what the model reads when it
# writes a call); repeating them as Field(description=...) would double the prompt's tokens.
_ARGS_FIELD_DESCRIPTIONS = False

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

# JSON Schema types plus the aliases BFCL and hand-written schemas use.
_TYPE_ALIASES = {
    "string": "string",
    "str": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "null": "null",
    "none": "null",
    "object": "object",
    "dict": "object",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "any": "any",
    "": "any",  # an empty type name says nothing, like no type at all
    # Java and JavaScript type names (BFCL's simple_java / simple_javascript function docs)
    "byte": "integer",
    "short": "integer",
    "long": "integer",
    "bigint": "integer",
    "char": "string",
    "arraylist": "array",
    "queue": "array",
    "stack": "array",
    "hashmap": "object",
    "hashtable": "object",
}
# Keys that describe a schema without constraining it (kept out of anyOf/oneOf arm merging).
_ANNOTATION_KEYS = frozenset(
    {"description", "title", "default", "examples", "nullable", "$comment", "deprecated"}
)
_MISSING: Any = object()
# JSON Schema keywords Pydantic cannot express. They are shown to the model next to the field
# they constrain, and checked after Pydantic (on the JSON the client gets) by the jsonschema
# library, for the tools that use them.
_RESIDUAL_KEYS = frozenset(
    {
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "if",
        "then",
        "else",
        "not",
        "contains",
        "minContains",
        "maxContains",
        "additionalItems",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
# Where subschemas sit inside a schema (anything else is data: enum values, property names).
_SUB_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUB_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUB_ONE = (
    "additionalProperties",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_NOTE_LIMIT = 200


# ---------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class ToolSpec:
    name: str  # the client's tool name, exactly as sent
    py_name: str  # safe Python function name used in the code
    description: str
    model_name: str  # name of the generated pydantic class for the arguments
    parameters: Mapping[str, Any]  # client's JSON schema as sent


@dataclass(frozen=True, eq=False)
class Toolset:
    """A request's tools as code, with the models that validate calls to them."""

    key: str  # sha256 hex of the canonical tools JSON
    tools: tuple[ToolSpec, ...]
    source: str  # the generated module source
    # what the model is shown: `source` without the argument models that only repeat their
    # stub's signature (bench/prompt-log.md: the repeats cost accuracy on BFCL simple)
    prompt_source: str
    signatures: Mapping[str, inspect.Signature]  # py_name -> signature of the stub
    model_names: frozenset[str]  # every generated pydantic class name
    _models: Mapping[str, type[BaseModel]] = field(repr=False)  # py_name -> arguments model
    # class name -> fields whose None only stands for "not given" (the schema has no null)
    _absent_none: Mapping[str, frozenset[str]] = field(repr=False)
    _var_keyword: Mapping[str, str] = field(repr=False)  # py_name -> name of its **kwargs
    _arg_names: Mapping[str, Mapping[str, str]] = field(repr=False)  # py_name -> {orig: py}
    # py_name -> jsonschema validator of the client's schema, for tools whose schema says more
    # than Pydantic can (uniqueItems, not, if/then/else, argument sets, ...)
    _residual: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def spec(self, py_name: str) -> ToolSpec:
        for tool in self.tools:
            if tool.py_name == py_name:
                return tool
        available = ", ".join(t.py_name for t in self.tools) or "(none)"
        raise UnknownToolError(
            f"unknown function {py_name!r}; available functions: {available}", name=py_name
        )

    def validate(self, py_name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check a call's arguments (keyed by stub parameter names) with the tool's model.

        Returns JSON-ready arguments keyed by the client's original property names; arguments
        the call left out stay out.
        """
        spec = self.spec(py_name)
        model = self._models[py_name]
        data = dict(arguments)
        var_kw = self._var_keyword.get(py_name)
        if var_kw is not None and isinstance(data.get(var_kw), Mapping):
            # signature binding collects extra keyword arguments under the **kwargs name
            data.update(data.pop(var_kw))
        try:
            # Strict JSON validation: a JSON true is not the number 1, "3" is not 3 and 1 is not
            # true (Python-mode lax validation would coerce all three).
            raw = json.dumps(data, allow_nan=False, ensure_ascii=False)
            instance = model.model_validate_json(raw.encode("utf-8"), strict=True)
            dumped = instance.model_dump(mode="json", by_alias=True, exclude_unset=True)
        except ValidationError as exc:
            raise _argument_error(spec, model, exc, self.model_names) from exc
        except (PydanticSerializationError, ValueError, TypeError, OverflowError) as exc:
            raise ToolArgumentError(
                _clip(f"{py_name}(): arguments are not JSON values: {exc}"), tool=spec.name
            ) from exc
        swapped = _bool_number_swap(instance, data, "")
        if swapped is not None:  # Literal[1, 2] takes True for 1 even in strict mode
            where, given = swapped
            raise ToolArgumentError(
                _clip(
                    f"{py_name}(): argument {where!r}: "
                    + ("a boolean is not a number" if isinstance(given, bool) else "not a boolean")
                    + f"; got {given!r}"
                ),
                tool=spec.name,
                field=where or None,
            )
        _drop_absent_none(instance, dumped, self._absent_none)
        checker = self._residual.get(py_name)
        if checker is not None:
            try:
                with bounds.check_budget():
                    error = jsonschema.exceptions.best_match(checker.iter_errors(dumped))
            except bounds.CheckTimeout as exc:
                raise _timeout_error(spec, dumped, exc) from None
            if error is not None:
                where = _json_path("", error.absolute_path)
                at = f"argument {where!r}" if where else "arguments"
                raise ToolArgumentError(
                    _clip(f"{py_name}(): {at}: {error.message}"),
                    tool=spec.name,
                    field=where or None,
                )
        return dumped

    def argument_names(self, py_name: str) -> Mapping[str, str]:
        """The stub's parameter names: client property name -> Python parameter name."""
        self.spec(py_name)
        return self._arg_names[py_name]

    def render_call(self, name: str, arguments: Mapping[str, Any]) -> str:
        """One line of Python showing a call to the client tool ``name`` (for history)."""
        spec = next((t for t in self.tools if t.name == name), None)
        py_name = spec.py_name if spec else _identifier(name, "tool", "t_")
        mapping = self._arg_names.get(py_name, {}) if spec else {}
        parts: list[str] = []
        leftovers: dict[str, Any] = {}
        for key, value in arguments.items():
            py = mapping.get(key)
            if py is None and key.isidentifier() and key.isascii() and not keyword.iskeyword(key):
                py = key
            if py is None:
                leftovers[key] = value
            else:
                parts.append(f"{py}={_safe_literal(value)}")
        if leftovers:
            parts.append(f"**{_safe_literal(leftovers)}")
        return f"{py_name}({', '.join(parts)})"


def build_toolset(tools: Sequence[Mapping[str, Any]]) -> Toolset:
    """Build (or fetch from the cache) the code view of an OpenAI ``tools`` list."""
    if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
        raise SchemaError("tools must be a list of tool objects", tool="tools")
    try:
        canonical = json.dumps(tools, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        ordered = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"tools are not JSON: {exc}", tool="tools") from exc
    key = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    # Equal tools hit the cache whatever their key order; the first request's order (the
    # property order stubs follow) is carried along but not part of the cache key.
    return _build_cached(key, canonical, _Uncached(ordered))


# ---------------------------------------------------------------------------------------------
# Cache


class _Uncached:
    """Carries a value through lru_cache without taking part in the key."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Uncached)


@functools.lru_cache(maxsize=256)
def _build_cached(key: str, canonical: str, ordered: _Uncached) -> Toolset:
    del canonical  # part of the cache key only (guards against hash collisions)
    toolset = _Builder(key, json.loads(ordered.value)).build()
    _LIVE[key] = toolset
    return toolset


# key -> every Toolset still held (by the cache above or by a request in flight): the
# post-call hooks find theirs without hashing the tools again
_LIVE: weakref.WeakValueDictionary[str, Toolset] = weakref.WeakValueDictionary()


def cached_toolset(key: object) -> Toolset | None:
    """The Toolset ``build_toolset`` made for ``key`` (``Toolset.key``), if it is still held."""
    return _LIVE.get(key) if isinstance(key, str) else None


# ---------------------------------------------------------------------------------------------
# Type expressions (rendered to annotation source once all class names are known)


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
    py: str = ""


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


class _TooLarge(Exception):
    """The code for the tools would hold more than ``_MAX_RENDERED_TYPES`` type expressions."""


@dataclass
class _RenderBudget:
    left: int = 0


class _Annotations:
    """Renders type expressions, noting typing imports and references to later classes."""

    def __init__(self, defined: set[str], used: set[str], budget: _RenderBudget) -> None:
        self.defined = defined
        self.used = used
        self.forward = False
        self.budget = budget

    def render(self, ty: _Ty) -> str:
        # Types are shared (a $ref converts once), but text repeats them: arms that reach the
        # same anyOf through $ref multiply with every level, so the text is bounded instead.
        self.budget.left -= 1
        if self.budget.left < 0:
            raise _TooLarge
        if isinstance(ty, _Plain):
            self.used.update(ty.uses)
            return ty.text
        if isinstance(ty, _Lit):
            self.used.add("Literal")
            return f"Literal[{', '.join(_literal(v) for v in ty.values)}]"
        if isinstance(ty, _List):
            return f"list[{self.render(ty.item)}]"
        if isinstance(ty, _Tuple):
            return f"tuple[{', '.join(self.render(i) for i in ty.items) or '()'}]"
        if isinstance(ty, _Dict):
            return f"dict[str, {self.render(ty.value)}]"
        if isinstance(ty, _Union):
            return " | ".join(self.render(a) for a in ty.arms)
        if isinstance(ty, _Ref):
            if ty.cls.name not in self.defined:
                self.forward = True
            return ty.cls.name
        self.used.update(("Annotated", "Field"))
        return f"Annotated[{self.render(ty.inner)}, Field({_kwargs(ty.kwargs)})]"


# ---------------------------------------------------------------------------------------------
# Literals and names


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
) -> list[str]:
    """Safe unique names for ``raws``; a name already safe keeps itself ahead of mangled ones.

    ``bad`` says a client's name needs mangling; ``usable`` says a mangled candidate is fine
    (``model_name`` is bad but ``model_name_`` usable; ``model_dump_`` is not: pydantic protects
    that prefix, so it becomes ``f_model_dump``).
    """
    out: dict[int, str] = {}
    taken: set[str] = set()
    for i, raw in enumerate(raws):  # first pass: exact names win (`get_weather` over `get-weather`)
        if base(raw) == raw and not bad(raw) and raw not in taken:
            out[i] = raw
            taken.add(raw)
    for i, raw in enumerate(raws):
        if i in out:
            continue
        stem = base(raw)
        if bad(stem):
            stem = f"{stem}_" if usable(f"{stem}_") else f"{prefix}{stem}"
        name, n = stem, 2
        while name in taken or not usable(name):
            name, n = f"{stem}_{n}", n + 1
        out[i] = name
        taken.add(name)
    return [out[i] for i in range(len(raws))]


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


# ---------------------------------------------------------------------------------------------
# JSON Schema -> type expressions


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates ("\\ud800" in the request JSON)
        return False
    return True


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@functools.lru_cache(maxsize=1024)
def _pattern_ok(pattern: str) -> bool:
    # pydantic-core's Rust regex (linear time, no look-around); others are shown, not enforced
    try:
        SchemaValidator(core_schema.str_schema(pattern=pattern))
    except Exception:
        return False
    return True


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """allOf-style merge: properties and required are combined, other keys from ``extra`` win."""
    out = dict(base)
    for k, v in extra.items():
        if k == "properties" and isinstance(out.get(k), Mapping) and isinstance(v, Mapping):
            out[k] = {**out[k], **v}
        elif k == "required" and isinstance(out.get(k), list) and isinstance(v, list):
            out[k] = list(dict.fromkeys([*out[k], *v]))
        else:
            out[k] = v
    return out


def _description(schema: Any) -> str | None:
    if not isinstance(schema, Mapping):
        return None
    text = schema.get("description")
    text = text.strip() if isinstance(text, str) else ""
    fmt = schema.get("format")
    if not isinstance(fmt, str):
        arms = schema.get("anyOf") or schema.get("oneOf") or []
        fmt = next(
            (
                a["format"]
                for a in arms
                if isinstance(a, Mapping) and isinstance(a.get("format"), str)
            ),
            None,
        )
    if fmt:  # formats are not enforced (JSON Schema makes them annotations): tell the model
        text = f"{text} (format: {fmt})" if text else f"format: {fmt}"
    return text or None


class _Converter:
    """Converts one tool's parameters schema; classes go to ``classes`` as they are made."""

    def __init__(
        self,
        tool: str,
        root: Mapping[str, Any],
        namer: _Namer,
        classes: list[_Class],
        shared: dict[str, _Ty],
    ) -> None:
        self.tool = tool
        self.root = root
        self.namer = namer
        self.classes = classes
        self.shared = shared  # across tools: a $ref's closure (canonical JSON) -> its type
        self.refs: dict[str, _Ty] = {}
        self.inlining: set[str] = set()
        self.notes: list[str] = []  # what Pydantic cannot express, for the field being filled
        self.field_path = "parameters"
        self.tool_notes: list[str] = []  # the same for the arguments as a whole

    def note(self, schema: Mapping[str, Any], path: str) -> None:
        residual = _residual(schema)
        if not residual:
            return
        where = path[len(self.field_path) :].lstrip(".") if path.startswith(self.field_path) else ""
        text = json.dumps(residual, ensure_ascii=False)
        text = _clip(f"{where}: {text}" if where else text, _NOTE_LIMIT)
        if text not in self.notes:
            self.notes.append(text)

    def error(self, message: str, path: str) -> SchemaError:
        return SchemaError(message, tool=self.tool, path=path)

    def new_class(self, hint: str, doc: Any, is_args: bool = False) -> _Class:
        name = self.namer.claim(hint)
        stem = hint[: -len("Args")] if is_args else name
        doc = doc.strip() if isinstance(doc, str) and doc.strip() else None
        cls = _Class(name=name, stem=stem, tool=self.tool, doc=doc, is_args=is_args)
        self.classes.append(cls)
        return cls

    # -- arguments

    def arguments(self, cls: _Class, params: Mapping[str, Any]) -> bool:
        """Fill the arguments class; returns whether extra keyword arguments are allowed."""
        schema: Any = params
        if "$ref" in schema:
            schema = self.deref(schema, "parameters")
        if "allOf" in schema:
            schema = self.merge_all_of(schema, "parameters")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                schema = self.argument_sets(schema, key)
        kind = schema.get("type", "object")
        kinds = kind if isinstance(kind, list) else [kind]
        if not all(isinstance(k, str) and _TYPE_ALIASES.get(k.lower()) == "object" for k in kinds):
            raise self.error(
                f"parameters must be an object schema, not type {kind!r}", "parameters.type"
            )
        self.notes = []
        self.note(schema, "parameters")
        self.tool_notes.extend(self.notes)
        self.notes = []
        self.fill(cls, schema, "parameters", 0)
        return bool(cls.extra)

    def argument_sets(self, schema: Mapping[str, Any], key: str) -> dict[str, Any]:
        """A union of argument sets -> one object with every argument; the sets become a note
        (and the jsonschema check enforces them)."""
        arms = schema[key]
        if not isinstance(arms, list) or not arms:
            raise self.error(f"{key} must be a non-empty list", f"parameters.{key}")
        base = {k: v for k, v in schema.items() if k != key}
        props: dict[str, Any] = dict(base.get("properties") or {})
        required_sets: list[set[str]] = []
        shown: list[str] = []
        for i, raw in enumerate(arms):
            arm = self.deref(raw, f"parameters.{key}[{i}]")
            if "allOf" in arm:
                arm = self.merge_all_of(arm, f"parameters.{key}[{i}]")
            arm_props = arm.get("properties") or {}
            if not isinstance(arm_props, Mapping):
                raise self.error("properties must be an object", f"parameters.{key}[{i}]")
            for name, sub in arm_props.items():
                if name in props and props[name] != sub:
                    earlier = props[name]
                    arms_of = earlier["anyOf"] if set(earlier) == {"anyOf"} else [earlier]
                    props[name] = {"anyOf": [*arms_of, sub]}
                else:
                    props[name] = sub
            required = arm.get("required")
            names = (
                [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
            )
            required_sets.append(set(names))
            shown.append("(" + ", ".join(names or list(arm_props) or ["no arguments"]) + ")")
        common = required_sets[0].intersection(*required_sets[1:])
        listed = base.get("required")
        base_required: list[Any] = listed if isinstance(listed, list) else []
        merged = dict(base)
        merged["properties"] = props
        merged["required"] = list(dict.fromkeys([*base_required, *sorted(common)]))
        how = "exactly one" if key == "oneOf" else "at least one"
        self.tool_notes.append(f"Give {how} of these argument sets: {' | '.join(shown)}")
        return merged

    # -- schema walking

    def pointer(self, ref: Any, path: str) -> tuple[Any, str]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise self.error(f"only local $ref (#/...) is supported, got {ref!r}", path)
        found = _resolve(self.root, ref)
        if found is None:
            raise self.error(f"$ref {ref!r} points to nothing", path)
        return found

    def deref(self, schema: Any, path: str) -> Mapping[str, Any]:
        seen: set[str] = set()
        while isinstance(schema, Mapping) and "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or ref in seen:
                raise self.error(f"circular $ref {ref!r}", path)
            seen.add(ref)
            target, path = self.pointer(ref, path)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge(target, rest) if rest and isinstance(target, Mapping) else target
        if not isinstance(schema, Mapping):
            raise self.error("expected a schema object", path)
        return schema

    def merge_all_of(self, schema: Mapping[str, Any], path: str) -> dict[str, Any]:
        items = schema["allOf"]
        if not isinstance(items, list) or not items:
            raise self.error("allOf must be a non-empty list", f"{path}.allOf")
        merged: dict[str, Any] = {}
        for i, item in enumerate(items):
            merged = _merge(merged, self.deref(item, f"{path}.allOf[{i}]"))
        return _merge(merged, {k: v for k, v in schema.items() if k != "allOf"})

    def closure(self, ref: str, path: str) -> str | None:
        """Canonical JSON of ``ref`` and every definition it reaches (None: the root itself).

        Two tools whose definitions are equal down to every $ref they use share one class.
        """
        found: dict[str, Any] = {}
        todo = [ref]
        while todo:
            current = todo.pop()
            if current in found:
                continue
            if current == "#":
                return None
            target, _ = self.pointer(current, path)
            found[current] = target
            todo.extend(_refs_in(target))
        return json.dumps([ref, found], sort_keys=True, ensure_ascii=False)

    def ref(self, ref: Any, path: str, depth: int) -> _Ty:
        if isinstance(ref, str) and ref in self.refs:
            return self.refs[ref]
        key = self.closure(ref, path) if isinstance(ref, str) else None
        if key is not None and key in self.shared:
            self.refs[ref] = self.shared[key]
            return self.refs[ref]
        ty = self._ref(ref, path, depth)
        if key is not None:
            self.shared[key] = ty
        return ty

    def _ref(self, ref: Any, path: str, depth: int) -> _Ty:
        target, where = self.pointer(ref, path)
        name = _camel(where.rsplit(".", 1)[-1]) if ref != "#" else "Model"
        props = target.get("properties") if isinstance(target, Mapping) else None
        plain_object = (
            isinstance(props, Mapping)
            and props
            and not any(k in target for k in ("anyOf", "oneOf", "allOf", "$ref", "enum", "const"))
            and target.get("type", "object") in ("object", "dict")
            and not target.get("nullable")
        )
        if plain_object:  # a named class, made before its fields so recursion can refer to it
            self.note(target, where)
            cls = self.new_class(name, target.get("description"))
            self.refs[ref] = _Ref(cls)
            key = self.closure(ref, path)
            if key is not None:
                self.shared[key] = self.refs[ref]
            self.fill(cls, target, where, depth + 1)
            return self.refs[ref]
        if ref in self.inlining:  # a recursive non-object definition: accept anything there
            return _ANY
        self.inlining.add(ref)
        try:
            ty = self.convert(target, where, name, depth + 1, doc_ok=True)
        finally:
            self.inlining.discard(ref)
        self.refs[ref] = ty
        return ty

    def convert(self, schema: Any, path: str, hint: str, depth: int, doc_ok: bool = False) -> _Ty:
        if depth > _MAX_DEPTH:
            raise self.error("schema is nested too deeply", path)
        if schema is True or (isinstance(schema, Mapping) and not schema):
            return _ANY
        if not isinstance(schema, Mapping):
            raise self.error(f"expected a schema object, got {json.dumps(schema)[:40]}", path)
        self.note(schema, path)
        nullable = schema.get("nullable") is True
        if "$ref" in schema:
            ty = self.ref(schema["$ref"], f"{path}.$ref", depth)
            return _union([ty, _NONE]) if nullable else ty
        if "allOf" in schema:
            items = schema["allOf"]
            rest = {k for k in schema if k != "allOf"}
            if isinstance(items, list) and len(items) == 1 and rest <= _ANNOTATION_KEYS:
                ty = self.convert(items[0], f"{path}.allOf[0]", hint, depth + 1, doc_ok)
            else:
                merged = self.merge_all_of(schema, path)
                ty = self.convert(merged, path, hint, depth + 1, doc_ok)
            return _union([ty, _NONE]) if nullable else ty
        for key in ("anyOf", "oneOf"):
            if key in schema:
                arms = schema[key]
                if not isinstance(arms, list) or not arms:
                    raise self.error(f"{key} must be a non-empty list", f"{path}.{key}")
                # sibling constraints apply to every arm (e.g. {"type": "object", "anyOf": ...})
                base = {k: v for k, v in schema.items() if k not in _ANNOTATION_KEYS and k != key}
                out = [
                    self.convert(
                        _merge(base, arm) if base and isinstance(arm, Mapping) else arm,
                        f"{path}.{key}[{i}]",
                        hint,
                        depth + 1,
                        doc_ok=True,
                    )
                    for i, arm in enumerate(arms)
                ]
                return _union(out + ([_NONE] if nullable else []))
        if "enum" in schema or "const" in schema:
            return self.literal(schema, path, nullable)
        raw_type = schema.get("type")
        if raw_type is None:
            names = ["object"] if "properties" in schema else []
            if not names and ("items" in schema or "prefixItems" in schema):
                names = ["array"]
            names = names or ["any"]
        elif isinstance(raw_type, str):
            names = [raw_type]
        elif isinstance(raw_type, list) and raw_type and all(isinstance(t, str) for t in raw_type):
            names = raw_type
        else:
            raise self.error(
                f"type must be a string or a list of strings, got {raw_type!r}", f"{path}.type"
            )
        kinds: list[str] = []
        for name in names:
            kind = _TYPE_ALIASES.get(name.lower())
            if kind is None:
                raise self.error(f"unsupported type {name!r}", f"{path}.type")
            if kind not in kinds:
                kinds.append(kind)
        nullable = nullable or "null" in kinds
        arms = [self.single(k, schema, path, hint, depth, doc_ok) for k in kinds if k != "null"]
        return _union(arms + ([_NONE] if nullable or not arms else []))

    def literal(self, schema: Mapping[str, Any], path: str, nullable: bool) -> _Ty:
        key = "enum" if "enum" in schema else "const"
        values = schema["enum"] if key == "enum" else [schema["const"]]
        if not isinstance(values, list) or not values:
            raise self.error("enum must be a non-empty list", f"{path}.enum")
        kept: list[Any] = []
        seen: set[tuple[type, Any]] = set()
        for value in values:
            if value is not None and not isinstance(value, str | int | float):
                raise self.error(
                    f"{key} values must be strings, numbers, booleans or null", f"{path}.{key}"
                )
            if isinstance(value, str) and not _utf8(value):  # pydantic-core cannot hold it
                raise self.error(f"{key} value {value!r} is not valid Unicode", f"{path}.{key}")
            if isinstance(value, float) and not math.isfinite(value):
                raise self.error(f"{key} value {value!r} is not a finite number", f"{path}.{key}")
            if value is None:
                nullable = True
            elif (type(value), value) not in seen:
                seen.add((type(value), value))
                kept.append(value)
        if not kept:
            return _NONE
        lit: _Ty = _Lit(tuple(kept))
        return _union([lit, _NONE]) if nullable else lit

    def single(
        self, kind: str, schema: Mapping[str, Any], path: str, hint: str, depth: int, doc_ok: bool
    ) -> _Ty:
        cons: list[tuple[str, Any]] = []
        ty: _Ty
        if kind == "string":
            ty = _STR
            for src, dst in (("minLength", "min_length"), ("maxLength", "max_length")):
                if _is_count(schema.get(src)):
                    cons.append((dst, schema[src]))
            pattern = schema.get("pattern")
            if isinstance(pattern, str) and _pattern_ok(pattern):
                cons.append(("pattern", pattern))
        elif kind in ("integer", "number"):
            # `int` accepts 3.0 (JSON Schema counts it as an integer) and rejects 3.5.
            ty = _INT if kind == "integer" else _NUMBER
            cons.extend(_number_constraints(schema))
        elif kind == "boolean":
            ty = _BOOL
        elif kind == "any":
            return _ANY
        elif kind == "object":
            return self.object(schema, path, hint, depth, doc_ok)
        else:
            ty = self.array(schema, path, hint, depth)
            if isinstance(ty, _List):
                for src, dst in (("minItems", "min_length"), ("maxItems", "max_length")):
                    if _is_count(schema.get(src)):
                        cons.append((dst, schema[src]))
        return _Con(ty, tuple(cons)) if cons else ty

    def array(self, schema: Mapping[str, Any], path: str, hint: str, depth: int) -> _Ty:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        key = "prefixItems"
        if prefix is None and isinstance(items, list):  # draft 4-7 tuple form
            prefix, key = items, "items"
        if isinstance(prefix, list) and prefix:
            return _Tuple(
                tuple(
                    self.convert(p, f"{path}.{key}[{i}]", hint, depth + 1, doc_ok=True)
                    for i, p in enumerate(prefix)
                )
            )
        if items is None or items is True or isinstance(items, list):
            return _List(_ANY)
        return _List(self.convert(items, f"{path}.items", hint, depth + 1, doc_ok=True))

    def object(
        self, schema: Mapping[str, Any], path: str, hint: str, depth: int, doc_ok: bool
    ) -> _Ty:
        props = schema.get("properties")
        if props is not None and not isinstance(props, Mapping):
            raise self.error("properties must be an object", f"{path}.properties")
        if not props:
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                value = self.convert(
                    extra, f"{path}.additionalProperties", f"{hint}Value", depth + 1, doc_ok=True
                )
                return _Dict(value)
            return _Dict(_ANY)
        title = schema.get("title")
        name = _camel(title) if isinstance(title, str) and title.strip() else _camel(hint)
        cls = self.new_class(name, schema.get("description") if doc_ok else None)
        self.fill(cls, schema, path, depth)
        return _Ref(cls)

    def fill(self, cls: _Class, schema: Mapping[str, Any], path: str, depth: int) -> None:
        props = schema.get("properties") or {}
        if not isinstance(props, Mapping):
            raise self.error("properties must be an object", f"{path}.properties")
        required = schema.get("required")
        required_set = (
            {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
        )
        extra = schema.get("additionalProperties")
        cls.extra = extra is True or isinstance(extra, Mapping)
        if isinstance(extra, Mapping) and extra:
            cls.extra_ty = self.convert(
                extra, f"{path}.additionalProperties", cls.stem + "Value", depth + 1, doc_ok=True
            )
        for name, prop in props.items():
            prop_path = f"{path}.properties.{name}"
            saved = self.notes, self.field_path
            self.notes, self.field_path = [], prop_path
            try:
                ty = self.convert(prop, prop_path, cls.stem + _camel(name, "Field"), depth + 1)
                notes = self.notes
            finally:
                self.notes, self.field_path = saved
            default = prop.get("default", _MISSING) if isinstance(prop, Mapping) else _MISSING
            if default is not _MISSING:
                try:
                    _literal(default)
                except (TypeError, ValueError) as exc:
                    raise self.error(
                        f"default is not a JSON value: {exc}", f"{prop_path}.default"
                    ) from exc
            is_required = name in required_set
            absent_none = False
            if not is_required and default in (_MISSING, None) and not _allows_none(ty):
                ty, absent_none = _union([ty, _NONE]), True
            cls.fields.append(
                _Field(
                    original=name,
                    ty=ty,
                    required=is_required,
                    default=None if default is _MISSING else default,
                    description=_with_notes(_description(prop), notes),
                    absent_none=absent_none,
                )
            )


def _with_notes(description: str | None, notes: Sequence[str]) -> str | None:
    if not notes:
        return description
    text = "Also must satisfy: " + "; ".join(notes)
    return f"{description} ({text})" if description else text


def _residual(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of one schema node that Pydantic does not enforce."""
    out = {k: schema[k] for k in _RESIDUAL_KEYS if k in schema}
    if schema.get("uniqueItems") is True:
        out["uniqueItems"] = True
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not _pattern_ok(pattern):
        out["pattern"] = pattern
    if isinstance(schema.get("prefixItems"), list) or isinstance(schema.get("items"), list):
        for key in ("minItems", "maxItems"):  # a tuple's length is fixed by its items
            if key in schema:
                out[key] = schema[key]
    if schema.get("additionalProperties") is False and not schema.get("properties"):
        out["additionalProperties"] = False  # no properties and no extras: only {}
    return out


def _schema_nodes(schema: Any) -> typing.Iterator[Mapping[str, Any]]:
    """Every schema object inside ``schema`` (keyword positions only, not data)."""
    todo = [schema]
    while todo:
        node = todo.pop()
        if not isinstance(node, Mapping):
            continue
        yield node
        for key in _SUB_MAPS:
            value = node.get(key)
            if isinstance(value, Mapping):
                todo.extend(value.values())
        for key in _SUB_LISTS:
            value = node.get(key)
            if isinstance(value, list):
                todo.extend(value)
        items = node.get("items")
        todo.extend(items if isinstance(items, list) else [items])
        todo.extend(node.get(key) for key in _SUB_ONE)
        deps = node.get("dependencies")
        if isinstance(deps, Mapping):
            todo.extend(deps.values())


def _needs_residual(params: Mapping[str, Any]) -> bool:
    """Does validating with the Pydantic models alone miss part of this schema?"""
    if "anyOf" in params or "oneOf" in params:  # argument sets
        return True
    for node in _schema_nodes(params):
        if _residual(node) or "oneOf" in node:  # oneOf: "exactly one", a union is "any"
            return True
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) > 1:  # the merge keeps the last of a key
            return True
    return False


def _standard(schema: Any, draft4: bool) -> Any:
    """The client's schema in standard JSON Schema (BFCL type names, OpenAPI nullable)."""
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SUB_MAPS and isinstance(value, Mapping):
            out[key] = {k: _standard(v, draft4) for k, v in value.items()}
        elif (key in _SUB_LISTS or key == "items") and isinstance(value, list):
            out[key] = [_standard(v, draft4) for v in value]
        elif key in _SUB_ONE or key == "items":
            out[key] = _standard(value, draft4)
        elif key == "dependencies" and isinstance(value, Mapping):
            out[key] = {k: _standard(v, draft4) for k, v in value.items()}
        elif key != "nullable":
            out[key] = value
    kind = out.get("type")
    if isinstance(kind, str | list):
        names = [kind] if isinstance(kind, str) else kind
        mapped = [_TYPE_ALIASES.get(n.lower(), n) if isinstance(n, str) else n for n in names]
        if "any" in mapped:
            del out["type"]
        else:
            unique = list(dict.fromkeys(mapped))
            out["type"] = unique[0] if len(unique) == 1 else unique
    if not draft4:  # draft 4's boolean exclusive bounds, in today's form
        for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            flag = out.get(exclusive)
            if isinstance(flag, bool):
                del out[exclusive]
                if flag and _is_number(out.get(bound)):
                    out[exclusive] = out.pop(bound)
    props, required = out.get("properties"), out.get("required")
    if isinstance(props, Mapping) and isinstance(required, list):
        # the models ignore a required name the schema never defines; so does this check
        out["required"] = [r for r in required if r in props]
    if schema.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


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


def _residual_validator(tool: str, params: Mapping[str, Any]) -> Any:
    validators = jsonschema.validators
    cls = validators.validator_for(params, default=validators.Draft202012Validator)
    draft4 = cls in (validators.Draft3Validator, validators.Draft4Validator)
    schema = _standard(params, draft4)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise SchemaError(
            _clip(f"not a valid JSON Schema: {exc.message}"),
            tool=tool,
            path=_json_path("parameters", exc.absolute_path),
        ) from exc
    _check_patterns(tool, schema)
    _check_refs(tool, schema)
    return bounds.bounded_validator_class(cls)(schema)


def _resolve(root: Any, ref: str) -> tuple[Any, str] | None:
    """A local ``$ref`` (``#/...``) inside ``root``: (node, dotted path), None if it is not."""
    node: Any = root
    where = "parameters"
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        where += f".{part}"
    return node, where


def _check_refs(tool: str, schema: Any) -> None:
    """Parts the models skip (inside ``not``, ``if``, ...) are still checked by jsonschema:
    a $ref there that points nowhere is the client's error now, not a crash on the answer."""
    for node in _schema_nodes(schema):
        ref = node.get("$ref")
        if isinstance(ref, str) and (not ref.startswith("#") or _resolve(schema, ref) is None):
            raise SchemaError(
                _clip(f"$ref {ref!r} points to nothing (only local #/... refs are supported)"),
                tool=tool,
                path="parameters",
            )


def _check_patterns(tool: str, schema: Any) -> None:
    """Every pattern the residual check matches compiles for the ``regex`` engine, and none
    would reach Python's ``re`` (jsonschema's unevaluatedProperties reads patternProperties
    with it, without a time limit)."""
    nodes = list(_schema_nodes(schema))
    patterns = [n["pattern"] for n in nodes if isinstance(n.get("pattern"), str)]
    keyed: list[Mapping[str, Any]] = [
        m for m in (n.get("patternProperties") for n in nodes) if isinstance(m, Mapping)
    ]
    for pattern in [*patterns, *(k for m in keyed for k in m)]:
        try:
            bounds.compile_pattern(pattern)
        except regex.error as exc:
            raise SchemaError(
                _clip(f"pattern {pattern!r} is not a valid regular expression: {exc}"),
                tool=tool,
                path="parameters",
            ) from None
    if keyed and any("unevaluatedProperties" in n for n in nodes):
        raise SchemaError(
            "unevaluatedProperties together with patternProperties is not supported; "
            "use additionalProperties instead",
            tool=tool,
            path="parameters",
        )


def _timeout_error(spec: ToolSpec, dumped: Any, exc: bounds.CheckTimeout) -> ToolArgumentError:
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
        _clip(f"{spec.py_name}(): {at}: {what}; write a simpler value that clearly fits"),
        tool=spec.name,
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


def _refs_in(node: Any) -> list[str]:
    """Every ``$ref`` string inside a JSON value."""
    out: list[str] = []
    todo = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, Mapping):
            ref = item.get("$ref")
            if isinstance(ref, str):
                out.append(ref)
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return out


def _number_constraints(schema: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for inclusive, exclusive, ge, gt in (
        ("minimum", "exclusiveMinimum", "ge", "gt"),
        ("maximum", "exclusiveMaximum", "le", "lt"),
    ):
        bound, strict = schema.get(inclusive), schema.get(exclusive)
        if _is_number(strict):
            out.append((gt, strict))
        elif strict is True and _is_number(bound):  # draft 4: boolean exclusive flag
            out.append((gt, bound))
            continue
        if _is_number(bound):
            out.append((ge, bound))
    step = schema.get("multipleOf")
    if _is_number(step) and step is not None and step > 0:
        out.append(("multiple_of", step))
    return out


# ---------------------------------------------------------------------------------------------
# Building the module


@dataclass(frozen=True)
class _RawTool:
    name: str
    description: str
    parameters: Mapping[str, Any]


def _read_tools(tools: Any) -> list[_RawTool]:
    if not isinstance(tools, list):
        raise SchemaError("tools must be a list of tool objects", tool="tools")
    out: list[_RawTool] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise SchemaError("a tool must be an object", tool=where)
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        label = name if isinstance(name, str) and name.strip() else where
        kind = tool.get("type", "function")
        if kind != "function":
            raise SchemaError(
                f"tool type {kind!r} is not supported (only 'function')", tool=label, path="type"
            )
        if not isinstance(function, Mapping):
            raise SchemaError(
                "a function tool needs a 'function' object", tool=label, path="function"
            )
        if not isinstance(name, str) or not name.strip():
            raise SchemaError(
                "function name must be a non-empty string", tool=label, path="function.name"
            )
        if name in seen:
            raise SchemaError("duplicate tool name", tool=name, path="function.name")
        seen.add(name)
        params = function.get("parameters")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise SchemaError(
                "parameters must be a JSON Schema object", tool=name, path="parameters"
            )
        description = function.get("description")
        out.append(_RawTool(name, description if isinstance(description, str) else "", params))
    return out


def _order(args: _Class) -> list[_Class]:
    """Classes reachable from ``args``, dependencies first (cycles become forward refs)."""
    done: list[_Class] = []
    visiting: set[int] = set()

    def refs(ty: _Ty) -> list[_Class]:
        return [node.cls for node in _nodes(ty) if isinstance(node, _Ref)]

    def visit(cls: _Class) -> None:
        if id(cls) in visiting or cls in done:
            return
        visiting.add(id(cls))
        for ty in [f.ty for f in cls.fields] + ([cls.extra_ty] if cls.extra_ty else []):
            for dep in refs(ty):
                visit(dep)
        done.append(cls)

    visit(args)
    return done


def _sized(tool: str, render: Callable[..., _R], *args: Any) -> _R:
    """``render(*args)``, with running out of ``_MAX_RENDERED_TYPES`` told as the tool's error."""
    try:
        return render(*args)
    except _TooLarge:
        raise SchemaError(
            f"written as code, the tools would hold more than {_MAX_RENDERED_TYPES} type "
            "expressions (anyOf/oneOf arms that reach each other through $ref multiply); "
            "give the repeated part an object definition or simplify it",
            tool=tool,
            path="parameters",
        ) from None


class _Builder:
    def __init__(self, key: str, tools: Any) -> None:
        self.key = key
        self.raw = _read_tools(tools)

    def build(self) -> Toolset:
        py_names = _assign_names(
            [t.name for t in self.raw],
            lambda raw: _identifier(raw, "tool", "t_"),
            _bad_tool_name,
            lambda name: not _bad_tool_name(name),
            "t_",
        )
        namer = _Namer(set(_TOOL_RESERVED) | set(py_names))
        per_tool: list[tuple[_RawTool, str, _Class, bool, list[str]]] = []
        classes: list[_Class] = []
        shared: dict[str, _Ty] = {}
        for raw, py_name in zip(self.raw, py_names, strict=True):
            converter = _Converter(raw.name, raw.parameters, namer, classes, shared)
            args = converter.new_class(_camel(py_name) + "Args", None, is_args=True)
            var_kw = converter.arguments(args, raw.parameters)
            per_tool.append((raw, py_name, args, var_kw, converter.tool_notes))
        class_names = {c.name for c in classes}
        for cls in classes:
            self._name_fields(cls, class_names)

        used: set[str] = {"Any"}
        defined: set[str] = set()
        blocks: list[dict[str, Any]] = []
        rebuild: list[str] = []
        specs: list[ToolSpec] = []
        var_keyword: dict[str, str] = {}
        arg_names: dict[str, Mapping[str, str]] = {}
        owners: dict[str, str] = {}
        residual: dict[str, Any] = {}
        budget = _RenderBudget(_MAX_RENDERED_TYPES)
        for raw, py_name, args, var_kw, tool_notes in per_tool:
            if _needs_residual(raw.parameters):
                residual[py_name] = _residual_validator(raw.name, raw.parameters)
            # classes an earlier tool already defined (shared $defs) are not repeated
            ordered = [c for c in _order(args) if c.name not in defined]
            forward, first_forward = False, 0
            for i, cls in enumerate(ordered):
                block, cls_forward = _sized(raw.name, self._class_block, cls, defined, used, budget)
                block["repeats_stub"] = _repeats_stub(cls)
                blocks.append(block)
                defined.add(cls.name)
                owners[cls.name] = raw.name
                if cls_forward and not forward:
                    forward, first_forward = True, i
            if forward:  # resolve forward references once every class of the tool exists
                rebuild.extend(c.name for c in ordered[first_forward:])
            kw_name = None
            if var_kw:
                kw_name = _Namer({f.py for f in args.fields}).claim("kwargs")
                var_keyword[py_name] = kw_name
            blocks.append(
                _sized(
                    raw.name,
                    self._stub_block,
                    raw,
                    py_name,
                    args,
                    kw_name,
                    tool_notes,
                    defined,
                    used,
                    budget,
                )
            )
            owners[py_name] = raw.name
            arg_names[py_name] = MappingProxyType({f.original: f.py for f in args.fields})
            specs.append(
                ToolSpec(
                    name=raw.name,
                    py_name=py_name,
                    description=raw.description,
                    model_name=args.name,
                    parameters=MappingProxyType(dict(raw.parameters)),
                )
            )

        imports: list[tuple[str, list[str]]] = [
            ("typing", [n for n in ("Annotated", "Any", "Literal") if n in used]),
            ("pydantic", [n for n in ("BaseModel", "ConfigDict", "Field") if n in used]),
        ]
        source = _render_module(imports, blocks, rebuild)
        prompt_source = _prompt_view(imports, blocks, rebuild)
        namespace = _execute(source, owners)
        models: dict[str, type[BaseModel]] = {}
        signatures: dict[str, inspect.Signature] = {}
        for spec, (_, _, args, _, _) in zip(specs, per_tool, strict=True):
            models[spec.py_name] = namespace[args.name]
            signatures[spec.py_name] = inspect.signature(namespace[spec.py_name])
        return Toolset(
            key=self.key,
            tools=tuple(specs),
            source=source,
            prompt_source=prompt_source,
            signatures=MappingProxyType(signatures),
            model_names=frozenset(c.name for c in classes),
            _models=MappingProxyType(models),
            _absent_none=MappingProxyType(
                {c.name: frozenset(f.py for f in c.fields if f.absent_none) for c in classes}
            ),
            _var_keyword=MappingProxyType(var_keyword),
            _arg_names=MappingProxyType(arg_names),
            _residual=MappingProxyType(residual),
        )

    @staticmethod
    def _name_fields(cls: _Class, class_names: set[str]) -> None:
        def usable(name: str) -> bool:
            return (
                name not in _FIELD_RESERVED
                and name not in class_names
                and not name.startswith(("model_dump", "model_validate"))
            )

        def bad(name: str) -> bool:  # any model_* could be a future BaseModel attribute
            return not usable(name) or name.startswith("model_")

        names = _assign_names(
            [f.original for f in cls.fields],
            lambda raw: _identifier(raw, "field", "f_"),
            bad,
            usable,
            "f_",
        )
        for f, name in zip(cls.fields, names, strict=True):
            f.py = name

    @staticmethod
    def _class_block(
        cls: _Class, defined: set[str], used: set[str], budget: _RenderBudget
    ) -> tuple[dict[str, Any], bool]:
        annotations = _Annotations(defined, used, budget)
        lines: list[str] = []
        aliases = False
        if cls.extra_ty is not None:  # pydantic validates extra properties with this type
            annotations.forward = False
            ann = annotations.render(cls.extra_ty)
            if annotations.forward:
                ann = _str_literal(ann)
            lines.append(f"__pydantic_extra__: dict[str, {ann}]")
        for f in cls.fields:
            ty, cons = _hoist(f.ty)
            forward_before = annotations.forward
            annotations.forward = False
            ann = annotations.render(ty)
            if annotations.forward:  # a class defined further down: let pydantic resolve it
                ann = _str_literal(ann)
            annotations.forward = annotations.forward or forward_before
            kwargs: list[str] = []
            if not f.required:
                kwargs.append(_literal(f.default))
            if f.py != f.original:
                kwargs.append(f"alias={_str_literal(f.original)}")
                aliases = True
            if f.description and (_ARGS_FIELD_DESCRIPTIONS or not cls.is_args):
                kwargs.append(f"description={_str_literal(f.description)}")
            if cons:
                kwargs.append(_kwargs(cons))
            if len(kwargs) == 1 and not f.required:
                lines.append(f"{f.py}: {ann} = {kwargs[0]}")
            elif kwargs:
                used.add("Field")
                lines.append(f"{f.py}: {ann} = Field({', '.join(kwargs)})")
            else:
                lines.append(f"{f.py}: {ann}")
        config = f'extra="{"allow" if cls.extra else "forbid"}"'
        if aliases:
            config += ", populate_by_name=True"
        used.update(("BaseModel", "ConfigDict"))
        block = {
            "kind": "class",
            "name": cls.name,
            "doc": _docstring(cls.doc, "    ") if cls.doc else None,
            "config": config,
            "lines": lines,
        }
        return block, annotations.forward

    @staticmethod
    def _stub_block(
        raw: _RawTool,
        py_name: str,
        args: _Class,
        kw_name: str | None,
        notes: Sequence[str],
        defined: set[str],
        used: set[str],
        budget: _RenderBudget,
    ) -> dict[str, Any]:
        annotations = _Annotations(defined, used, budget)
        fields = [f for f in args.fields if f.required] + [f for f in args.fields if not f.required]
        params: list[str] = []
        arg_docs: list[str] = []
        for f in fields:
            param = f"{f.py}: {annotations.render(_plain(f.ty))}"
            if not f.required:
                param += f" = {_literal(f.default)}"
            params.append(param)
            if f.description:
                text = "\n        ".join(f.description.splitlines())
                arg_docs.append(f"    {f.py}: {text}")
        if kw_name:
            extra = annotations.render(_plain(args.extra_ty)) if args.extra_ty else "Any"
            params.append(f"**{kw_name}: {extra}")
        one_line = ", ".join(params)
        if len(f"def {py_name}({one_line}) -> Any:") > _LINE_WIDTH:
            one_line = "".join(f"\n    {p}," for p in params) + "\n"
        doc = raw.description.strip()
        if notes:
            doc = "\n\n".join(part for part in (doc, "\n".join(notes)) if part)
        if arg_docs:
            doc = (
                f"{doc}\n\nArgs:\n" + "\n".join(arg_docs)
                if doc
                else "Args:\n" + "\n".join(arg_docs)
            )
        return {
            "kind": "def",
            "name": py_name,
            "params": one_line,
            "doc": _docstring(doc, "    ") if doc else None,
        }


def _render_module(
    imports: Sequence[tuple[str, Sequence[str]]],
    blocks: Sequence[Mapping[str, Any]],
    rebuild: Sequence[str],
) -> str:
    source = _ENV.get_template("toolset.py.j2").render(
        imports=[(m, names) for m, names in imports if names], blocks=blocks, rebuild=rebuild
    )
    return source.lstrip("\n")


def _prompt_view(
    imports: Sequence[tuple[str, Sequence[str]]],
    blocks: Sequence[Mapping[str, Any]],
    rebuild: Sequence[str],
) -> str:
    """The module without the argument models that say nothing their stub does not, unless
    another block names them (a schema whose $ref points back at its root)."""
    texts = [_render_module((), [b], ()) for b in blocks]
    hidden = {
        b["name"]
        for i, b in enumerate(blocks)
        if b.get("repeats_stub")
        and not any(re.search(rf"\b{b['name']}\b", text) for j, text in enumerate(texts) if j != i)
    }
    if not hidden:
        return _render_module(imports, blocks, rebuild)
    kept = [b for b in blocks if b["name"] not in hidden]
    kept_rebuild = [name for name in rebuild if name not in hidden]
    body = _render_module((), kept, kept_rebuild)
    used = [(m, [n for n in names if re.search(rf"\b{n}\b", body)]) for m, names in imports]
    return _render_module(used, kept, kept_rebuild)


def _repeats_stub(cls: _Class) -> bool:
    """An argument model whose fields are exactly the stub's parameters: no constraints, no
    extra properties, no docstring (aliases only matter to the host, which maps names)."""
    return (
        cls.is_args
        and not cls.extra
        and cls.extra_ty is None
        and not cls.doc
        and not any(_constrained(f.ty) for f in cls.fields)
    )


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


def _execute(source: str, owners: Mapping[str, str]) -> dict[str, Any]:
    """Run the generated module into a fresh namespace (the prompt shows it less the argument
    models that repeat their stubs, see ``_prompt_view``)."""
    namespace: dict[str, Any] = {"__name__": "litellm_toolcode_tools"}
    try:
        # our own generated code; dont_inherit keeps this module's __future__ import out of it
        exec(compile(source, _FILENAME, "exec", dont_inherit=True), namespace)
    except Exception as exc:
        lineno = next(
            (
                f.lineno
                for f in reversed(traceback.extract_tb(exc.__traceback__))
                if f.filename == _FILENAME
            ),
            None,
        )
        if lineno is None and isinstance(exc, SyntaxError):
            lineno = exc.lineno
        owner = "?"
        for line in reversed(source.splitlines()[: lineno or 0]):
            match = re.match(r"(?:class|def) (\w+)", line)
            if match and match.group(1) in owners:
                owner = owners[match.group(1)]
                break
        raise SchemaError(
            _clip(f"the schema could not be turned into code: {str(exc).strip().splitlines()[-1]}"),
            tool=owner,
            path="parameters",
        ) from exc
    return namespace


# ---------------------------------------------------------------------------------------------
# Validation results and errors


def _drop_absent_none(value: Any, dumped: Any, absent: Mapping[str, frozenset[str]]) -> None:
    """Remove explicit None the model gave for fields whose schema has no null ("not given")."""
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        drop = absent.get(type(value).__name__, frozenset())
        fields = type(value).model_fields
        for name in value.model_fields_set:
            info = fields.get(name)
            if info is None:
                continue
            key = info.alias or name
            if key not in dumped:
                continue
            sub = getattr(value, name)
            if sub is None and name in drop:
                del dumped[key]
            else:
                _drop_absent_none(sub, dumped[key], absent)
    elif isinstance(value, list | tuple) and isinstance(dumped, list):
        for sub_value, sub_dumped in zip(value, dumped, strict=False):
            _drop_absent_none(sub_value, sub_dumped, absent)
    elif isinstance(value, dict) and isinstance(dumped, dict):
        for k, sub in value.items():
            if isinstance(k, str) and k in dumped:
                _drop_absent_none(sub, dumped[k], absent)


def _bool_number_swap(value: Any, raw: Any, path: str) -> tuple[str, Any] | None:
    """(client path, input) where a boolean was read as a number or a number as a boolean."""
    if isinstance(value, BaseModel):
        if not isinstance(raw, Mapping):
            return None
        fields = type(value).model_fields
        extras = value.model_extra or {}
        for name in value.model_fields_set:
            info = fields.get(name)
            key = info.alias or name if info is not None else name
            sub = getattr(value, name) if info is not None else extras.get(name)
            raw_sub = raw.get(name, raw.get(key, _MISSING))
            if raw_sub is not _MISSING:
                found = _bool_number_swap(sub, raw_sub, _json_path(path, [key]))
                if found is not None:
                    return found
        return None
    if isinstance(value, list | tuple) and isinstance(raw, list | tuple):
        for i, (sub, raw_sub) in enumerate(zip(value, raw, strict=False)):
            found = _bool_number_swap(sub, raw_sub, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(value, dict) and isinstance(raw, Mapping):
        for k, sub in value.items():
            if k in raw:
                found = _bool_number_swap(sub, raw[k], _json_path(path, [k]))
                if found is not None:
                    return found
        return None
    scalars = (bool, int, float)
    both_scalars = isinstance(value, scalars) and isinstance(raw, scalars)
    if both_scalars and isinstance(value, bool) != isinstance(raw, bool):
        return path, raw
    return None


# pydantic adds the union member it tried to an error's location ("int", "list[str]", ...)
_UNION_TAG = re.compile(r"(?:str|int|float|bool|none|any|bytes|[a-z][a-z0-9-]*\[.*\])", re.S)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


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


_ERRORS_READ = 20
_NUMBER_ERRORS = frozenset(
    {"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"}
)


def _both_number_arms(errors: Sequence[Any]) -> bool:
    """Both arms of `int | float` failed (say "number", not "integer" or "float")."""
    types = {e["type"] for e in errors}
    return types <= _NUMBER_ERRORS and bool(types & {"float_type", "float_parsing"})


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _argument_error(
    spec: ToolSpec, model: type[BaseModel], exc: ValidationError, model_names: frozenset[str]
) -> ToolArgumentError:
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
    message = f"{spec.py_name}(): {where}: {' or '.join(details)}"
    if errors[0]["type"] not in ("missing", "extra_forbidden"):
        given = repr(errors[0].get("input"))
        message += f"; got {given if len(given) <= 60 else given[:57] + '...'}"
    others = list(dict.fromkeys(p for p in paths if p != first))
    if others:
        message += f" (also invalid: {', '.join(others)})"
    return ToolArgumentError(_clip(message), tool=spec.name, field=first or None)
