"""JSON Schema -> type expressions and classes, one tool at a time.

What Pydantic cannot express is not dropped: it becomes a note shown to the model beside the
field (the residual check enforces it later). A class is made before its fields are converted,
so recursion through $ref can refer to it; its fields get their Python names later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import SchemaError
from .keywords import (
    _ANNOTATION_KEYS,
    _MISSING,
    _TYPE_ALIASES,
    _is_count,
    _is_number,
    _pattern_ok,
    _residual,
    _utf8,
)
from .literals import _clip, _literal
from .naming import _camel, _Namer
from .refs import _merge, _Schema
from .typexpr import (
    _ANY,
    _BOOL,
    _INT,
    _NONE,
    _NUMBER,
    _STR,
    _allows_none,
    _Class,
    _Con,
    _Dict,
    _Field,
    _List,
    _Lit,
    _Ref,
    _Tuple,
    _Ty,
    _union,
)

_MAX_DEPTH = 48  # deeper schemas are refused instead of hitting Python's recursion limit
_NOTE_LIMIT = 200  # characters of one note shown beside a field


class _Converter(_Schema):
    """Converts one tool's parameters schema; classes go to ``classes`` as they are made."""

    def __init__(
        self,
        tool: str,
        root: Mapping[str, Any],
        namer: _Namer,
        classes: list[_Class],
        shared: dict[str, _Ty],
    ) -> None:
        super().__init__(tool, root)
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

    def new_class(self, hint: str, doc: Any, is_args: bool = False) -> _Class:
        name = self.namer.claim(hint)
        stem = hint[: -len("Args")] if is_args else name
        doc = doc.strip() if isinstance(doc, str) and doc.strip() else None
        cls = _Class(name=name, stem=stem, tool=self.tool, doc=doc, is_args=is_args)
        self.classes.append(cls)
        return cls

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
        if _plain_object(target):  # a named class, made before its fields: recursion can use it
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
            return _enum_type(self.tool, schema, path, nullable)
        kinds = _kinds(self.tool, schema, path)
        nullable = nullable or "null" in kinds
        arms = [self.single(k, schema, path, hint, depth, doc_ok) for k in kinds if k != "null"]
        return _union(arms + ([_NONE] if nullable or not arms else []))

    def single(
        self, kind: str, schema: Mapping[str, Any], path: str, hint: str, depth: int, doc_ok: bool
    ) -> _Ty:
        cons: list[tuple[str, Any]] = []
        ty: _Ty
        if kind == "string":
            ty = _STR
            cons.extend(_string_constraints(schema))
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
                cons.extend(_counts(schema, "minItems", "maxItems"))
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
            field = _field(self.tool, name, prop, prop_path, ty, name in required_set, notes)
            cls.fields.append(field)


def _plain_object(target: Any) -> bool:
    """A definition that is just an object with properties (no union, enum or null)."""
    props = target.get("properties") if isinstance(target, Mapping) else None
    return bool(
        isinstance(props, Mapping)
        and props
        and not any(k in target for k in ("anyOf", "oneOf", "allOf", "$ref", "enum", "const"))
        and target.get("type", "object") in ("object", "dict")
        and not target.get("nullable")
    )


def _arguments(conv: _Converter, cls: _Class, params: Mapping[str, Any]) -> bool:
    """Fill a tool's arguments class from its ``parameters``; returns whether extra keyword
    arguments are allowed."""
    schema: Any = params
    if "$ref" in schema:
        schema = conv.deref(schema, "parameters")
    if "allOf" in schema:
        schema = conv.merge_all_of(schema, "parameters")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            schema = _argument_sets(conv, schema, key)
    kind = schema.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    if not all(isinstance(k, str) and _TYPE_ALIASES.get(k.lower()) == "object" for k in kinds):
        raise conv.error(
            f"parameters must be an object schema, not type {kind!r}", "parameters.type"
        )
    conv.notes = []
    conv.note(schema, "parameters")
    conv.tool_notes.extend(conv.notes)
    conv.notes = []
    conv.fill(cls, schema, "parameters", 0)
    return bool(cls.extra)


def _argument_sets(conv: _Converter, schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A union of argument sets -> one object with every argument; the sets become a note
    (and the jsonschema check enforces them)."""
    arms = schema[key]
    if not isinstance(arms, list) or not arms:
        raise conv.error(f"{key} must be a non-empty list", f"parameters.{key}")
    base = {k: v for k, v in schema.items() if k != key}
    props: dict[str, Any] = dict(base.get("properties") or {})
    required_sets: list[set[str]] = []
    shown: list[str] = []
    for i, raw in enumerate(arms):
        arm = conv.deref(raw, f"parameters.{key}[{i}]")
        if "allOf" in arm:
            arm = conv.merge_all_of(arm, f"parameters.{key}[{i}]")
        arm_props = arm.get("properties") or {}
        if not isinstance(arm_props, Mapping):
            raise conv.error("properties must be an object", f"parameters.{key}[{i}]")
        for name, sub in arm_props.items():
            if name in props and props[name] != sub:
                earlier = props[name]
                arms_of = earlier["anyOf"] if set(earlier) == {"anyOf"} else [earlier]
                props[name] = {"anyOf": [*arms_of, sub]}
            else:
                props[name] = sub
        required = arm.get("required")
        names = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        required_sets.append(set(names))
        shown.append("(" + ", ".join(names or list(arm_props) or ["no arguments"]) + ")")
    common = required_sets[0].intersection(*required_sets[1:])
    listed = base.get("required")
    base_required: list[Any] = listed if isinstance(listed, list) else []
    merged = dict(base)
    merged["properties"] = props
    merged["required"] = list(dict.fromkeys([*base_required, *sorted(common)]))
    how = "exactly one" if key == "oneOf" else "at least one"
    conv.tool_notes.append(f"Give {how} of these argument sets: {' | '.join(shown)}")
    return merged


def _field(
    tool: str, name: str, prop: Any, path: str, ty: _Ty, is_required: bool, notes: Sequence[str]
) -> _Field:
    """A property as a field: its default checked, and `| None` added when leaving it out must
    be possible although the schema has no null ("not given", dropped again on the way out)."""
    default = prop.get("default", _MISSING) if isinstance(prop, Mapping) else _MISSING
    if default is not _MISSING:
        try:
            _literal(default)
        except (TypeError, ValueError) as exc:
            raise SchemaError(
                f"default is not a JSON value: {exc}", tool=tool, path=f"{path}.default"
            ) from exc
    absent_none = False
    if not is_required and default in (_MISSING, None) and not _allows_none(ty):
        ty, absent_none = _union([ty, _NONE]), True
    return _Field(
        original=name,
        ty=ty,
        required=is_required,
        default=None if default is _MISSING else default,
        description=_with_notes(_description(prop), notes),
        absent_none=absent_none,
    )


def _enum_type(tool: str, schema: Mapping[str, Any], path: str, nullable: bool) -> _Ty:
    """``enum`` or ``const`` as a Literal (None in it makes the type nullable)."""
    key = "enum" if "enum" in schema else "const"
    values = schema["enum"] if key == "enum" else [schema["const"]]
    if not isinstance(values, list) or not values:
        raise SchemaError("enum must be a non-empty list", tool=tool, path=f"{path}.enum")
    kept: list[Any] = []
    seen: set[tuple[type, Any]] = set()
    for value in values:
        if value is not None and not isinstance(value, str | int | float):
            raise SchemaError(
                f"{key} values must be strings, numbers, booleans or null",
                tool=tool,
                path=f"{path}.{key}",
            )
        if isinstance(value, str) and not _utf8(value):  # pydantic-core cannot hold it
            raise SchemaError(
                f"{key} value {value!r} is not valid Unicode", tool=tool, path=f"{path}.{key}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SchemaError(
                f"{key} value {value!r} is not a finite number", tool=tool, path=f"{path}.{key}"
            )
        if value is None:
            nullable = True
        elif (type(value), value) not in seen:
            seen.add((type(value), value))
            kept.append(value)
    if not kept:
        return _NONE
    lit: _Ty = _Lit(tuple(kept))
    return _union([lit, _NONE]) if nullable else lit


def _kinds(tool: str, schema: Mapping[str, Any], path: str) -> list[str]:
    """The JSON Schema types a node allows (aliases mapped), in order; "any" when it says none."""
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
        raise SchemaError(
            f"type must be a string or a list of strings, got {raw_type!r}",
            tool=tool,
            path=f"{path}.type",
        )
    kinds: list[str] = []
    for name in names:
        kind = _TYPE_ALIASES.get(name.lower())
        if kind is None:
            raise SchemaError(f"unsupported type {name!r}", tool=tool, path=f"{path}.type")
        if kind not in kinds:
            kinds.append(kind)
    return kinds


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


def _with_notes(description: str | None, notes: Sequence[str]) -> str | None:
    if not notes:
        return description
    text = "Also must satisfy: " + "; ".join(notes)
    return f"{description} ({text})" if description else text


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


def _string_constraints(schema: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out = _counts(schema, "minLength", "maxLength")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and _pattern_ok(pattern):
        out.append(("pattern", pattern))
    return out


def _counts(schema: Mapping[str, Any], low: str, high: str) -> list[tuple[str, Any]]:
    """A length's bounds (``minLength``/``maxLength`` or ``minItems``/``maxItems``) as Field
    arguments."""
    out: list[tuple[str, Any]] = []
    for src, dst in ((low, "min_length"), (high, "max_length")):
        if _is_count(schema.get(src)):
            out.append((dst, schema[src]))
    return out
