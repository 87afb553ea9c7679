"""Converted tools -> the module's source: annotations, class and stub blocks, the template.

Type expressions are written out only here, once every class has its final name; the text is
bounded (``_MAX_RENDERED_TYPES``) because shared types can repeat exponentially when written.
The Jinja2 template only lays out pieces that are already safe source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..errors import SchemaError
from .literals import _docstring, _kwargs, _literal, _str_literal
from .typexpr import (
    _Class,
    _constrained,
    _Dict,
    _hoist,
    _List,
    _Lit,
    _nodes,
    _Plain,
    _plain,
    _Ref,
    _Tuple,
    _Ty,
    _Union,
)

_ENV = Environment(
    loader=PackageLoader("litellm_toolcode", "templates"),
    autoescape=False,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)
# Type expressions the generated code of one request may hold (a 128-tool BFCL-like list needs
# a few thousand); past it, conversion stops with a SchemaError instead of growing the text.
_MAX_RENDERED_TYPES = 50_000
_R = TypeVar("_R")
_LINE_WIDTH = 100
# Descriptions of top-level arguments live in the stub's docstring (what the model reads when it
# writes a call); repeating them as Field(description=...) would double the prompt's tokens.
_ARGS_FIELD_DESCRIPTIONS = False


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


def _stub_block(
    description: str,
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
        param = f"{f.param}: {annotations.render(_plain(f.ty))}"
        if not f.required:
            param += f" = {_literal(f.default)}"
        params.append(param)
        if f.description:
            text = "\n        ".join(f.description.splitlines())
            arg_docs.append(f"    {f.param}: {text}")
    if kw_name:
        extra = annotations.render(_plain(args.extra_ty)) if args.extra_ty else "Any"
        params.append(f"**{kw_name}: {extra}")
    one_line = ", ".join(params)
    if len(f"def {py_name}({one_line}) -> Any:") > _LINE_WIDTH:
        one_line = "".join(f"\n    {p}," for p in params) + "\n"
    doc = description.strip()
    if notes:
        doc = "\n\n".join(part for part in (doc, "\n".join(notes)) if part)
    if arg_docs:
        doc = f"{doc}\n\nArgs:\n" + "\n".join(arg_docs) if doc else "Args:\n" + "\n".join(arg_docs)
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
