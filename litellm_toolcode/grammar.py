"""A request's tools -> a GBNF grammar for the model's answer, and the field each backend reads.

The grammar follows how models write code-mode answers (docs/configuration.md): free prose lines
first, then the code, fenced (```python) or not, whose first line is ``# tool: none`` (then
anything) or ``# tool: <name>`` followed by one call per line. A prose line cannot *start* like
code (a fence, a ``# tool:`` line, any ``name(``): otherwise the model writes its calls as
unconstrained prose (the measured failure of "prose, then a mandatory fence"). Calls take
positional values in the stub's order, then only their tool's keywords (stub or client
spelling) in any order, all literal values of the argument's type. What the grammar cannot say
(required arguments, duplicates, patterns, bounds) is left to validation afterwards, as without
a grammar.

One text serves every backend: xgrammar (vLLM, SGLang) reads GBNF as its EBNF.
"""

from __future__ import annotations

import functools
import json
import keyword
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from .errors import ConfigError
from .schema import Toolset
from .schema.typexpr import (
    _BOOL,
    _INT,
    _NONE,
    _NUMBER,
    _STR,
    _Class,
    _Con,
    _Dict,
    _List,
    _Lit,
    _Plain,
    _Ref,
    _Tuple,
    _Ty,
    _Union,
)

__all__ = ["GRAMMAR_FIELDS", "Backend", "grammar_fields", "tool_grammar"]

Backend = Literal["none", "gbnf", "vllm", "sglang"]
# Every top-level request key a grammar may travel in (repair rounds repeat them).
GRAMMAR_FIELDS = ("grammar", "structured_outputs", "ebnf")

_MAX_CALLS = 32  # calls in one answer (bounds.MAX_CALLS_PER_ANSWER is checked afterwards)
_MAX_DEPTH = 8  # nested containers and models; deeper values fall back to a generic literal
_GENERIC_DEPTH = 3  # nesting of a value of unknown type ([..], {..}) before scalars only
# An argument may be another tool's call, indexed (`f(...)[1]`, `f(...)["price"]`): its result,
# answered earlier in the conversation, else the code stops there (results.py). Agents write it.
_RESULT = "result"
_RESULT_INDEXES = 4

# Shared leaves, written once at the end of every grammar.
_LEAVES = {
    "ws": "[ \\t]{0,4}",
    "wsn": "[ \\t\\n]{0,24}",
    "tail": 'ws ( "#" rest )?',
    "pystr": '"\\"" ( [^"\\\\\\n] | "\\\\" [^\\n] )* "\\"" '
    '| "\'" ( [^\'\\\\\\n] | "\\\\" [^\\n] )* "\'"',
    "int": '"-"? ( "0" | [1-9] [0-9]{0,18} )',
    "number": 'int ( "." [0-9]{1,17} )? ( [eE] [-+]? [0-9]{1,3} )?',
    "bool": '"True" | "False"',
    "ident": "[A-Za-z_] [A-Za-z0-9_]{0,63}",
    "rest": "[^\\n]*",
    "anything": "[^\\x00]*",
}


def grammar_fields(backend: Backend, grammar: str) -> dict[str, Any]:
    """The top-level request keys that carry ``grammar`` to ``backend`` (docs/configuration.md)."""
    if backend == "gbnf":  # llama-cpp-python, llama-server
        return {"grammar": grammar}
    if backend == "vllm":  # vLLM 0.12+ (guided_grammar before)
        return {"structured_outputs": {"grammar": grammar}}
    if backend == "sglang":
        return {"ebnf": grammar}
    raise ConfigError(f"no grammar field for backend {backend!r}")


@functools.lru_cache(maxsize=256)  # beside the toolset cache (same size): equal tools, one text
def tool_grammar(toolset: Toolset, mode: str, function: str | None, parallel: bool) -> str:
    """The grammar for an answer to a request with ``toolset`` and this tool_choice
    (``auto``, ``required`` or ``function`` with the client's tool name ``function``)."""
    if mode not in ("auto", "required", "function"):
        raise ConfigError(f"no grammar for tool_choice {mode!r}")
    specs = [t for t in toolset.tools if mode != "function" or t.name == function]
    return _Writer(toolset).write(
        [t.py_name for t in specs], allow_none=mode == "auto", calls=_MAX_CALLS if parallel else 1
    )


def _lit(text: str) -> str:
    """A GBNF string literal."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable():  # UTF-8 as is: every GBNF reader takes it, not all read u-escapes
            out.append(ch)
        else:
            out.append(_escape(ch))
    return '"' + "".join(out) + '"'


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def _class_char(ch: str) -> str:
    """One character inside a GBNF ``[...]`` class."""
    if (ch.isalnum() and ch.isprintable()) or ch in " _.:#`'\"!?,;()=+*/<>@$%&|~{}":
        return ch
    return _escape(ch)


def _py_literals(value: Any) -> list[str]:
    """The ways Python code may write the JSON literal ``value`` (strings in either quote)."""
    if value is None:
        return ["None"]
    if isinstance(value, bool):
        return ["True" if value else "False"]
    if isinstance(value, int | float):
        return [repr(value)]
    text = str(value)
    double = json.dumps(text, ensure_ascii=False)
    body = double[1:-1].replace('\\"', '"').replace("'", "\\'")
    return list(dict.fromkeys([double, f"'{body}'"]))


def _identifiers(names: Iterable[str]) -> list[str]:
    """The names a call can write as a keyword (sorted, for a stable text)."""
    return sorted({n for n in names if n.isidentifier() and not keyword.iskeyword(n)})


class _Writer:
    """Collects rules (equal bodies share one name) while walking one toolset's types."""

    def __init__(self, toolset: Toolset) -> None:
        self.toolset = toolset
        self.rules: dict[str, str] = {}  # name -> body, in the order made
        self.by_body: dict[str, str] = {}
        self.memo: dict[tuple[int, int], str] = {}

    def rule(self, hint: str, body: str) -> str:
        found = self.by_body.get(body)
        if found is not None:
            return found
        base = "".join(c if c.isalnum() and c.isascii() else "-" for c in hint).strip("-").lower()
        base = base or "r"
        name, n = base, 1
        while name in self.rules or name in _LEAVES or name in ("root", _RESULT):
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = body
        self.by_body[body] = name
        return name

    # --- answer shape ---------------------------------------------------------------------

    def spellings(self, py: str) -> list[str]:
        """The names a call of ``py`` may be written with: the stub's, and the client's
        (a dotted ``math.factorial`` as well) when unambiguous."""
        names = self.toolset.names
        return [
            py,
            *sorted(
                w
                for w in names.tools.names()
                if w != py
                and names.tool(w) == (py,)
                and all(part.isidentifier() for part in w.split("."))
            ),
        ]

    def write(self, py_names: Sequence[str], *, allow_none: bool, calls: int) -> str:
        headers: list[str] = []  # names the `# tool:` line may give
        for py in py_names:
            client = self.toolset.spec(py).name
            headers.extend(w for w in [py, client] if w not in headers)
        # a result may come from any of the request's tools, also one tool_choice does not call
        rules = {
            t.py_name: self.call(t.py_name, self.spellings(t.py_name)) for t in self.toolset.tools
        }
        call = self.rule("call", " | ".join(rules[py] for py in py_names))
        any_call = self.rule("any-call", " | ".join(rules.values()))
        index = 'ws "[" ws ( int | pystr ) ws "]"'
        self.rules[_RESULT] = f"{any_call} ( {index} ){{0,{_RESULT_INDEXES}}}"
        line = self.rule("call-line", f"{call} tail")
        header = self.rule("header", " | ".join(_lit(h) for h in headers) if headers else '"none"')
        more_names = f'( ws "," ws {header} ){{0,{calls - 1}}}' if calls > 1 else ""
        marker = self.rule("marker", f'"# tool: " {header} {more_names} ws "\\n"')
        # Between calls, up to two blank lines and a new `# tool:` line: models write the next
        # step as a block of its own (`# tool: convert_currency` under `# tool: find_flight`);
        # denied that, the model measured here wrote another call of the first tool instead.
        sep = f'"\\n" ( ws "\\n" ){{0,2}} {marker}?'
        more = f"( {sep} {line} ){{0,{calls - 1}}}" if calls > 1 else ""
        code_lines = self.rule("code-lines", f"{marker}? {line} {more}")
        none = '"# tool: none"' if allow_none else None
        fence_open = '"```" ( "python" | "py" )? "\\n"'
        fenced_body = f'{code_lines} "\\n```" ws "\\n"?'
        if none:
            # the block holds the marker only; the answer follows it, outside
            fenced_body = f'( {fenced_body} | {none} ws "\\n```" ( "\\n" anything )? )'
        fenced = self.rule("fenced", f"{fence_open} {fenced_body}")
        unfenced_body = f'{code_lines} "\\n"?'
        if none:
            unfenced_body = f'( {unfenced_body} | {none} ( "\\n" anything )? )'
        unfenced = self.rule("unfenced", unfenced_body)
        prose = self.prose_line(["```", "# tool:"])
        ending = f"{fenced} | {unfenced}" + (f" | {prose}" if none else "")
        root = f'( {prose} "\\n" )* ( {ending} )'
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        lines += [f"{name} ::= {body}" for name, body in _LEAVES.items()]
        return "\n".join(lines) + "\n"

    def prose_line(self, forbidden: Sequence[str]) -> str:
        """A line (without its newline) that cannot start code: not with ``forbidden`` (the
        complement of their trie, one character at a time: GBNF has no lookahead), nor with a
        name and ``(``, so no call of any tool, known or not, can hide in the prose."""
        trie: dict[str, Any] = {}
        for word in sorted(set(forbidden)):
            node = trie
            for ch in word:
                node = node.setdefault(ch, {})
            node[""] = {}  # end of a forbidden prefix: nothing below it is allowed

        def walk(node: dict[str, Any], prefix: str, also: str) -> str:
            children = sorted(ch for ch in node if ch)
            other = "".join(_class_char(ch) for ch in [*children, "\n"])
            arms = ['""', f"[^{also}{other}] rest"]
            for ch in children:
                child = node[ch]
                if "" in child:
                    continue  # this character completes a forbidden prefix
                arms.append(f"{_lit(ch)} {walk(child, prefix + ch, '')}")
            if not prefix:  # `name(`, `name (` and `a.b(`: where a call would start
                word = self.rule(
                    "prose-word",
                    '"" | [^A-Za-z0-9_.( \\n] rest | " " ( "" | [^(\\n] rest )',
                )
                arms.append(f"[A-Za-z_] [A-Za-z0-9_.]* {word}")
            return self.rule("prose-" + (prefix or "line"), " | ".join(arms))

        if any(w[:1].isidentifier() for w in forbidden):
            raise ConfigError("prose prefixes must not start like a name")
        return walk(trie, "", "A-Za-z_")

    # --- calls and values -----------------------------------------------------------------

    def call(self, py: str, written: Sequence[str]) -> str:
        cls: _Class = self.toolset.arg_classes[py]
        arg_names = self.toolset.names.arguments.get(py)
        arms: list[str] = []
        for f in cls.fields:
            keywords = [f.param] + (
                [w for w in arg_names.names() if w != f.param and arg_names.lookup(w) == (f.param,)]
                if arg_names is not None
                else []
            )
            value = self.argument(f.ty)
            arms.extend(f'{_lit(k)} ws "=" ws {value}' for k in _identifiers(keywords))
        if py in self.toolset._var_keyword:  # **kwargs: any other keyword, typed if the schema says
            extra = self.argument(cls.extra_ty)
            arms.append(f'ident ws "=" ws {extra}')
        name = " | ".join(_lit(w) for w in written)
        if not arms:
            return self.rule(f"call-{py}", f'( {name} ) "(" wsn ")"')
        kw = self.rule(f"kw-{py}", " | ".join(arms))
        kw_list = f'{kw} ( wsn "," wsn {kw} )*'
        # Positional values first, typed by the stub's parameter order (models write math-like
        # calls so: `math.gcd(12, 18)`; the reader takes them), then keywords.
        fields = {f.param: f for f in cls.fields}
        positional = [
            self.argument(fields[p.name].ty)
            for p in self.toolset.signatures[py].parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD and p.name in fields
        ]
        chain = ""
        for value in reversed(positional):
            rest = f'( wsn "," wsn {chain} )?' if chain else ""
            chain = self.rule(f"pos-{py}", f"{value} {rest}".strip())
        lead = f'{chain} ( wsn "," wsn {kw_list} )? | {kw_list}' if chain else kw_list
        args = f'( ( {lead} ) ( wsn "," )? )?'
        return self.rule(f"call-{py}", f'( {name} ) "(" wsn {args} wsn ")"')

    def argument(self, ty: _Ty | None) -> str:
        """A call's own argument: a literal of its type, or another call's result."""
        literal = self.value(ty, 0) if ty is not None else self.generic(0)
        return self.rule("arg", f"{literal} | {_RESULT}")

    def value(self, ty: _Ty, depth: int) -> str:
        key = (id(ty), depth)
        found = self.memo.get(key)
        if found is None:
            found = self._value(ty, depth)
            self.memo[key] = found
        return found

    def _value(self, ty: _Ty, depth: int) -> str:
        if isinstance(ty, _Con):  # bounds and patterns: validation afterwards
            return self.value(ty.inner, depth)
        if isinstance(ty, _Plain):
            simple = {_STR: "pystr", _INT: "int", _NUMBER: "number", _BOOL: "bool"}.get(ty)
            if simple is not None:
                return simple
            if ty == _NONE:
                return self.rule("none", '"None"')
            return self.generic(depth)  # Any, or a type we do not spell out
        if isinstance(ty, _Lit):
            texts = [t for v in ty.values for t in _py_literals(v)]
            return self.rule("enum", " | ".join(_lit(t) for t in texts))
        if isinstance(ty, _Union):
            return self.rule("union", " | ".join(self.value(arm, depth) for arm in ty.arms))
        if depth >= _MAX_DEPTH:
            return self.generic(_GENERIC_DEPTH - 1)
        if isinstance(ty, _List):
            return self.rule("list", self.items("[", "]", self.value(ty.item, depth + 1)))
        if isinstance(ty, _Tuple):
            parts = ' wsn "," wsn '.join(self.value(i, depth + 1) for i in ty.items)
            one = ' wsn ","' if len(ty.items) == 1 else ""
            return self.rule(
                "tuple",
                f'"[" wsn {parts} ( wsn "," )? wsn "]" | "(" wsn {parts}{one} ( wsn "," )? wsn ")"',
            )
        if isinstance(ty, _Dict):
            entry = f'pystr wsn ":" wsn {self.value(ty.value, depth + 1)}'
            return self.rule("dict", self.items("{", "}", self.rule("entry", entry)))
        if isinstance(ty, _Ref):
            return self.model(ty.cls, depth + 1)
        return self.generic(depth)

    def model(self, cls: _Class, depth: int) -> str:
        """A nested model: a dict with its keys, or its constructor as the stubs show it."""
        entries: list[str] = []
        keywords: list[str] = []
        for f in cls.fields:
            value = self.value(f.ty, depth)
            keys = sorted({f.original, f.py})
            for k in keys:
                quoted = " | ".join(_lit(t) for t in _py_literals(k))
                entries.append(f'( {quoted} ) wsn ":" wsn {value}')
            keywords.extend(f'{_lit(k)} ws "=" ws {value}' for k in _identifiers(keys))
        if cls.extra:
            extra = self.value(cls.extra_ty, depth) if cls.extra_ty is not None else self.generic(0)
            entries.append(f'pystr wsn ":" wsn {extra}')
            keywords.append(f'ident ws "=" ws {extra}')
        entry = self.rule(f"key-{cls.name}", " | ".join(entries) or '"\\"\\"" wsn ":" wsn "None"')
        as_dict = self.items("{", "}", entry)
        if not keywords:
            return self.rule(f"m-{cls.name}", f'{as_dict} | {_lit(cls.name)} "(" wsn ")"')
        kw = self.rule(f"mkw-{cls.name}", " | ".join(keywords))
        ctor = f'{_lit(cls.name)} "(" wsn ( {kw} ( wsn "," wsn {kw} )* ( wsn "," )? )? wsn ")"'
        return self.rule(f"m-{cls.name}", f"{as_dict} | {ctor}")

    def items(self, open_: str, close: str, item: str) -> str:
        return (
            f'{_lit(open_)} wsn ( {item} ( wsn "," wsn {item} )* ( wsn "," )? )? wsn {_lit(close)}'
        )

    def generic(self, depth: int) -> str:
        """Any Python literal with a JSON value, nested at most ``_GENERIC_DEPTH`` deep."""
        scalar = self.rule("scalar", 'pystr | number | "True" | "False" | "None"')
        if depth >= _GENERIC_DEPTH:
            return scalar
        inner = self.generic(depth + 1)
        listed = self.items("[", "]", inner)
        entry = self.rule(f"any-entry-{depth}", f'pystr wsn ":" wsn {inner}')
        return self.rule(f"any-{depth}", f"{scalar} | {listed} | {self.items('{', '}', entry)}")
