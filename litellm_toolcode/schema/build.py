"""``build_toolset``: a request's tools -> a Toolset, cached by the tools' canonical JSON.

The stages in order: read the tools, convert each schema, name the fields, write the module,
run it (the source is the single source of truth: the host validates with exactly the classes
it defines), and keep a residual check for tools whose schema says more than the models can.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import traceback
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from ..errors import SchemaError
from ..spelling import CallNames, Spellings
from .convert import _arguments, _Converter
from .literals import _clip
from .naming import _TOOL_RESERVED, _camel, _name_fields, _Namer, _tool_names
from .render import (
    _MAX_RENDERED_TYPES,
    _class_block,
    _order,
    _prompt_view,
    _render_module,
    _RenderBudget,
    _repeats_stub,
    _sized,
    _stub_block,
)
from .residual import _needs_residual, _residual_validator
from .toolset import Toolset, ToolSpec
from .typexpr import _Class, _Ty

_FILENAME = "<toolcode tools>"


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


class _Builder:
    """One request's tools -> the generated module, run, and the Toolset that holds it."""

    def __init__(self, key: str, tools: Any) -> None:
        self.key = key
        self.raw = _read_tools(tools)

    def build(self) -> Toolset:
        py_names = _tool_names([t.name for t in self.raw])
        namer = _Namer(set(_TOOL_RESERVED) | set(py_names))
        per_tool: list[tuple[_RawTool, str, _Class, bool, list[str]]] = []
        classes: list[_Class] = []
        shared: dict[str, _Ty] = {}
        for raw, py_name in zip(self.raw, py_names, strict=True):
            converter = _Converter(raw.name, raw.parameters, namer, classes, shared)
            args = converter.new_class(_camel(py_name) + "Args", None, is_args=True)
            var_kw = _arguments(converter, args, raw.parameters)
            per_tool.append((raw, py_name, args, var_kw, converter.tool_notes))
        class_names = {c.name for c in classes}
        for cls in classes:
            _name_fields(cls, class_names)

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
                block, cls_forward = _sized(raw.name, _class_block, cls, defined, used, budget)
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
                kw_name = _Namer({f.param for f in args.fields}).claim("kwargs")
                var_keyword[py_name] = kw_name
            blocks.append(
                _sized(
                    raw.name,
                    _stub_block,
                    raw.description,
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
            arg_names[py_name] = MappingProxyType({f.original: f.param for f in args.fields})
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
            arg_classes=MappingProxyType(
                {spec.py_name: tool[2] for spec, tool in zip(specs, per_tool, strict=True)}
            ),
            names=CallNames(
                Spellings.of((spec.py_name, spec.name) for spec in specs),
                MappingProxyType(
                    {
                        py_name: Spellings.of((param, orig) for orig, param in names.items())
                        for py_name, names in arg_names.items()
                    }
                ),
            ),
        )


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
