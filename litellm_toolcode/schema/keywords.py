"""JSON Schema's vocabulary as this package reads it: type names, where subschemas sit, and
which keywords Pydantic enforces and which are left to the residual jsonschema check.

Shared by conversion (notes shown to the model) and the residual check (what it enforces), so
both agree on what Pydantic misses.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Mapping
from typing import Any

from pydantic_core import SchemaValidator, core_schema

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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates ("\\ud800" in the request JSON)
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _pattern_ok(pattern: str) -> bool:
    # pydantic-core's Rust regex (linear time, no look-around); others are shown, not enforced
    try:
        SchemaValidator(core_schema.str_schema(pattern=pattern))
    except Exception:
        return False
    return True


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
