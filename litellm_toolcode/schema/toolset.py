"""The Toolset a request's tools become, and the way back: a call's arguments validated by the
generated models and returned as the JSON the client's tools expect.

Validation is strict JSON validation (a JSON true is not 1), then the residual jsonschema check
for what the models cannot say; errors name the client's tool and argument.
"""

from __future__ import annotations

import inspect
import json
import keyword
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from .. import bounds
from ..errors import ToolArgumentError, UnknownToolError
from ..spelling import CallNames
from .keywords import _MISSING
from .literals import _clip, _json_path, _safe_literal
from .messages import _argument_error, _timeout_error
from .naming import _identifier


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
    # what a call may write for each tool and argument: stub names, the client's, forced ones
    names: CallNames = field(repr=False, default_factory=CallNames.empty)
    # py_name -> the converted arguments class (typexpr._Class): what the grammar is made from
    arg_classes: Mapping[str, Any] = field(repr=False, default_factory=dict)

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
        # keyed by the client's names: a parameter may be neither the field's name nor its alias
        # (`from__3`), and the client's name is one the model takes unambiguously
        originals = {param: orig for orig, param in self._arg_names[py_name].items()}
        data = {originals.get(key, key): value for key, value in arguments.items()}
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
            raise _argument_error(py_name, spec.name, model, exc, self.model_names) from exc
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
                raise _timeout_error(py_name, spec.name, dumped, exc) from None
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
