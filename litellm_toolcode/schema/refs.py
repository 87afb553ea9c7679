"""Local ``$ref`` and ``allOf``: a tool's schema read as one document.

Kept apart from conversion because the residual check resolves the same pointers
(``_resolve``), and because what a $ref reaches (its closure) decides which classes two tools
share.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import SchemaError


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


class _Schema:
    """One tool's ``parameters`` as a document: local $ref lookup and allOf merging."""

    def __init__(self, tool: str, root: Mapping[str, Any]) -> None:
        self.tool = tool
        self.root = root

    def error(self, message: str, path: str) -> SchemaError:
        return SchemaError(message, tool=self.tool, path=path)

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
