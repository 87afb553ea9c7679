"""The residual check: what a tool's schema says beyond its Pydantic models, checked by
jsonschema on the arguments the client would get.

Built only for tools that need it (``_needs_residual``), on the client's schema made standard
(BFCL type names, OpenAPI ``nullable``), with every pattern on the time-limited ``regex``
engine: the client controls these schemas, so their checks run under ``bounds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import regex

from .. import bounds
from ..errors import SchemaError
from .keywords import (
    _SUB_LISTS,
    _SUB_MAPS,
    _SUB_ONE,
    _TYPE_ALIASES,
    _is_number,
    _residual,
    _schema_nodes,
)
from .literals import _clip, _json_path
from .refs import _resolve


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
