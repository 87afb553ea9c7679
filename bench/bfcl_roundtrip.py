"""BFCL v4 round trip: every case's expected answer, written as Python, through the real proxy.

For each case of BFCL's AST categories the expected answer (``possible_answer``: the first
allowed value of every argument; an argument whose only allowed value is ``""`` is left out, as
BFCL means "optional, omitted") is rendered as Python code in a rotating style (keywords,
positional, prose around the block, other quoting, bare calls without a fence), played by the
fake upstream as the model's answer, and sent through the real LiteLLM proxy with the plugin
(alias ``coder``) together with the case's function docs exactly as BFCL ships them (types
``dict``/``float``/``tuple``/``any``, Java and JavaScript type names, dotted names). The
``tool_calls`` the client gets must equal the expected calls: same names as sent, same JSON
(``1`` and ``1.0`` and ``true`` all distinct). Cases whose BFCL answer is itself outside the
function's schema are listed in ``OUTSIDE_SCHEMA`` with the reason; they must fail, the rest
must pass.

    .venv/bin/python bench/bfcl_roundtrip.py              # every case of every category
    .venv/bin/python bench/bfcl_roundtrip.py --per-category 20 --verbose
    .venv/bin/python bench/bfcl_roundtrip.py --client-names   # the client's own spellings
    .venv/bin/python bench/bfcl_roundtrip.py --client-names --only-differing

Needs ``bfcl-eval`` (``pip install --no-deps bfcl-eval==2026.3.23``: only its data is read).
``tests/test_bfcl_corpus.py`` runs a fixed sample of the same cases in CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import keyword
import re
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from litellm_toolcode.schema_code import Toolset, build_toolset

# Categories whose possible answers are AST-form calls ({name: {param: [allowed values]}}).
AST_CATEGORIES = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
STYLES = ("keywords", "positional", "prose", "single_quotes", "bare")

# Cases whose BFCL answer does not fit the function doc BFCL ships with it: the round trip
# must fail for these (the plugin answers with a model_error naming the argument), and each is
# listed with the reason in this data file (``--write-outside`` regenerates it from a full run;
# review the diff: a new entry is either a BFCL data slip or a plugin bug).
OUTSIDE_SCHEMA_FILE = Path(__file__).with_name("bfcl_outside_schema.json")
OUTSIDE_SCHEMA: dict[str, dict[str, str]] = (
    json.loads(OUTSIDE_SCHEMA_FILE.read_text(encoding="utf-8"))
    if OUTSIDE_SCHEMA_FILE.exists()
    else {}
)
# (pattern in the plugin's error, why the BFCL answer is outside the schema)
_REASONS = (
    (
        r"simple_java|simple_javascript",
        "Java/JavaScript answer is source code (a variable or constant name as a string) where "
        "the doc's type is not a string",
    ),
    (
        r"unexpected argument \(not in the schema\)",
        "object key not among the object's "
        "properties (objects without additionalProperties are closed)",
    ),
    (r"unexpected keyword argument", "argument not in the function's schema"),
    (r"missing required argument", "the answer leaves out a required argument"),
    (r"Input should be '[^;]*; got \[", "a list where the schema wants one enum value"),
    (r"Input should be '[^;]*; got (True|False|-?\d)", "a bool/number where the enum has strings"),
    (r"Input should be '", "value not in the schema's enum"),
    (r"Input should be a valid (integer|array|number)|Input should be an object", "wrong type"),
)

_OBJECT_TYPES = frozenset({"dict", "object", "hashmap", "hashtable"})
_ARRAY_TYPES = frozenset({"array", "list", "tuple", "arraylist", "queue", "stack"})


def data_dir() -> Path:
    """The ``bfcl_eval/data`` directory (found without importing the package)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "bfcl-eval is not installed: .venv/bin/pip install --no-deps bfcl-eval==2026.3.23"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@dataclass(frozen=True)
class BfclCase:
    id: str
    category: str
    question: str
    functions: tuple[Mapping[str, Any], ...]
    written: tuple[tuple[str, dict[str, Any]], ...]  # (client tool name, arguments written)
    expected: tuple[tuple[str, dict[str, Any]], ...]  # (client tool name, JSON arguments)

    @property
    def tools(self) -> list[dict[str, Any]]:
        return [{"type": "function", "function": dict(f)} for f in self.functions]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def function_docs() -> Iterator[tuple[str, str, list[Mapping[str, Any]]]]:
    """(category, id, function docs) for every function doc BFCL v4 ships."""
    root = data_dir()
    for path in sorted(root.glob("BFCL_v4_*.json")):
        category = path.stem.removeprefix("BFCL_v4_")
        if category == "format_sensitivity":  # a list of case ids, no function docs
            continue
        for entry in _read_jsonl(path):
            if entry.get("function"):
                yield category, entry["id"], entry["function"]
    for path in sorted((root / "multi_turn_func_doc").glob("*.json")):
        yield "multi_turn_func_doc", path.stem, _read_jsonl(path)


def _type_name(schema: Any) -> str:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    return kind.lower() if isinstance(kind, str) else ""


def _first(allowed: Any, required: bool = False) -> tuple[bool, Any]:
    """(present, value): the first allowed value, where "" means "optional, left out".

    A required argument whose list starts with "" (a BFCL slip) takes its first real value.
    """
    if not isinstance(allowed, list):
        return True, allowed
    if allowed and allowed[0] == "" and not required:
        return False, None
    values = [v for v in allowed if v != ""]
    return (True, values[0]) if values else (False, None)


def _nested(value: dict[str, Any]) -> dict[str, Any]:
    """A dict answer's values are lists of allowed values again (BFCL's dict_checker)."""
    out: dict[str, Any] = {}
    for key, allowed in value.items():
        present, chosen = _first(allowed)
        if present:
            out[key] = chosen
    return out


def expected_value(schema: Any, allowed: list[Any], required: bool) -> tuple[bool, Any]:
    present, value = _first(allowed, required)
    if not present:
        return False, None
    kind = _type_name(schema)
    if kind in _OBJECT_TYPES and isinstance(value, dict):
        return True, _nested(value)
    if kind in _ARRAY_TYPES and isinstance(value, list):
        items = schema.get("items")
        if _type_name(items) in _OBJECT_TYPES and all(isinstance(v, dict) for v in value):
            return True, [_nested(v) for v in value]
    return True, value


def _allows_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return True
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return (
        schema.get("nullable") is True
        or None in (schema.get("enum") or [])
        or any(
            k is None or (isinstance(k, str) and k.lower() in ("null", "any", "")) for k in kinds
        )
    )


def _question(entry: Mapping[str, Any]) -> str:
    turns = entry.get("question") or [[]]
    texts = [m.get("content", "") for m in turns[0] if m.get("role") == "user"]
    return texts[-1] if texts else "Call the tools."


def load_cases(category: str) -> list[BfclCase]:
    root = data_dir()
    answers = {
        a["id"]: a["ground_truth"]
        for a in _read_jsonl(root / "possible_answer" / f"BFCL_v4_{category}.json")
    }
    cases: list[BfclCase] = []
    for entry in _read_jsonl(root / f"BFCL_v4_{category}.json"):
        functions = {f["name"]: f for f in entry["function"]}
        written: list[tuple[str, dict[str, Any]]] = []
        expected: list[tuple[str, dict[str, Any]]] = []
        for call in answers[entry["id"]]:
            [(name, params)] = call.items()
            parameters = functions.get(name, {}).get("parameters") or {}
            properties = parameters.get("properties") or {}
            required = parameters.get("required") or []
            arguments: dict[str, Any] = {}
            for param, allowed in params.items():
                present, value = expected_value(properties.get(param), allowed, param in required)
                if present:
                    arguments[param] = value
            written.append((name, arguments))
            # An explicit None for an optional argument whose schema has no null means "not
            # given": the plugin leaves it out (schema_code's absent-None rule).
            expected.append(
                (
                    name,
                    {
                        k: v
                        for k, v in arguments.items()
                        if v is not None or k in required or _allows_null(properties.get(k))
                    },
                )
            )
        cases.append(
            BfclCase(
                id=entry["id"],
                category=category,
                question=_question(entry),
                functions=tuple(entry["function"]),
                written=tuple(written),
                expected=tuple(expected),
            )
        )
    return cases


# --- rendering the expected answer as Python ------------------------------------------------


def literal(value: Any, quote: str) -> str:
    """A JSON value as Python source, strings in ``quote`` quotes."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        if quote == '"':
            return json.dumps(value, ensure_ascii=False)
        text = repr(value)
        return text if text.startswith("'") else "'" + text[1:-1].replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, quote) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{literal(k, quote)}: {literal(v, quote)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def _writable(name: str) -> bool:
    """Whether ``name=`` can be written in Python as is (a name a model could copy)."""
    return name.isidentifier() and not keyword.iskeyword(name)


def client_spelling(name: str) -> str | None:
    """The client's tool name as a model would write it: as is, or as a dotted attribute call
    (``math.factorial``); None when Python cannot spell it (``get-weather``)."""
    parts = name.split(".")
    return name if all(_writable(p) for p in parts) else None


def render_call(
    toolset: Toolset,
    name: str,
    arguments: Mapping[str, Any],
    style: str,
    quote: str,
    client_names: bool = False,
) -> str:
    """One call in ``style``; ``client_names`` writes the client's own tool and argument names
    (what a model reads in descriptions and earlier turns) instead of the stub's."""
    spec = next(t for t in toolset.tools if t.name == name)
    stub = toolset.argument_names(spec.py_name)  # client name -> stub parameter
    signature = list(toolset.signatures[spec.py_name].parameters.values())
    remaining = dict(arguments)
    parts: list[str] = []
    if style == "positional":
        by_param = {py: key for key, py in stub.items()}
        for param in signature:
            key = by_param.get(param.name)
            if key not in remaining or param.kind is not param.POSITIONAL_OR_KEYWORD:
                break
            parts.append(literal(remaining.pop(key), quote))
    for key, value in remaining.items():
        # a key the schema lacks is written as the client spells it, whatever the mode
        word = key if client_names or key not in stub else stub[key]
        if _writable(word):
            parts.append(f"{word}={literal(value, quote)}")
        else:
            parts.append(f"**{{{literal(key, quote)}: {literal(value, quote)}}}")
    function = (client_names and client_spelling(spec.name)) or spec.py_name
    return f"{function}({', '.join(parts)})"


def render_answer(
    toolset: Toolset, case: BfclCase, index: int, client_names: bool = False
) -> tuple[str, str]:
    """(style, the model's answer text) for the case's expected calls."""
    style = STYLES[index % len(STYLES)]
    quote = "'" if style in ("single_quotes", "positional") else '"'
    lines = [render_call(toolset, n, a, style, quote, client_names) for n, a in case.written]
    py_names = {t.name: t.py_name for t in toolset.tools}
    names = ", ".join(dict.fromkeys(py_names[n] for n, _ in case.written))
    block = "\n".join(lines)
    if style == "bare":
        return style, block
    fenced = f"```python\n# tool: {names}\n{block}\n```"
    if style == "prose":
        return style, f"Sure, I'll use the tools for that.\n\n{fenced}\n\nThe results come next."
    return style, fenced


# --- through the proxy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    case: BfclCase
    style: str
    stream: bool
    passed: bool
    detail: str  # what went wrong (or the model_error the plugin answered), "" when passed
    model_error: str | None = None  # the plugin's error message, when it refused the answer

    @property
    def as_expected(self) -> bool:
        """Passed, or refused with a model_error when listed as outside the schema."""
        if self.case.id in OUTSIDE_SCHEMA:
            return not self.passed and self.model_error is not None
        return self.passed


def reason_for(outcome: Outcome) -> dict[str, str]:
    message = outcome.model_error or outcome.detail
    for pattern, reason in _REASONS:
        if re.search(pattern, outcome.case.id if "java" in pattern else message):
            return {"reason": reason, "plugin": message}
    return {"reason": "unclassified", "plugin": message}


def canonical(calls: Sequence[tuple[str, Any]]) -> str:
    """Type-exact JSON: 1, 1.0 and true differ; key order does not matter."""
    return json.dumps([[n, a] for n, a in calls], sort_keys=True, ensure_ascii=False)


def names_differ(case: BfclCase) -> bool:
    """Whether the case's answer written with the client's names differs from the stubs'."""
    toolset = build_toolset(case.tools)
    return render_answer(toolset, case, 0, True) != render_answer(toolset, case, 0)


def run_case(
    client: openai.OpenAI, upstream: Any, case: BfclCase, index: int, client_names: bool = False
) -> Outcome:
    """Play the case's expected answer through the proxy (alias ``coder``)."""
    toolset = build_toolset(case.tools)
    style, answer = render_answer(toolset, case, index, client_names)
    stream = index % 2 == 1
    key = f"bfcl-{uuid.uuid4().hex[:12]}"
    from tests.fake_upstream import Scripted

    # twice: an answer the plugin rejects gets the same answer back in its repair round
    upstream.script(key, Scripted(content=answer), Scripted(content=answer))
    messages = [{"role": "user", "content": f"{case.question} [{key}]"}]
    try:
        if stream:
            with client.chat.completions.stream(
                model="coder", messages=messages, tools=case.tools
            ) as events:
                for _ in events:
                    pass
                message = events.get_final_completion().choices[0].message
        else:
            response = client.chat.completions.create(
                model="coder", messages=messages, tools=case.tools
            )
            message = response.choices[0].message
    except openai.APIError as error:
        body = error.body if isinstance(error.body, dict) else {}
        message = str(body.get("message") or error.message)
        kind = body.get("type")
        if stream or kind == "model_error":  # mid-stream errors carry the message only
            return Outcome(case, style, stream, False, f"error: {message}", message)
        return Outcome(case, style, stream, False, f"error ({kind}): {message}")
    got = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]
    if canonical(got) == canonical(case.expected):
        return Outcome(case, style, stream, True, "")
    return Outcome(
        case, style, stream, False, f"got {canonical(got)}\nexpected {canonical(case.expected)}"
    )


def sample(cases: Sequence[BfclCase], per_category: int | None) -> list[BfclCase]:
    """A fixed, evenly spread sample (every case when ``per_category`` is None)."""
    if per_category is None or per_category >= len(cases):
        return list(cases)
    step = len(cases) / per_category
    return [cases[int(i * step)] for i in range(per_category)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-category", type=int, default=None, help="sample size (all)")
    parser.add_argument("--categories", default=",".join(AST_CATEGORIES))
    parser.add_argument("--verbose", action="store_true", help="print every failure")
    parser.add_argument(
        "--client-names",
        action="store_true",
        help="write the answers with the client's tool and argument names, not the stubs'",
    )
    parser.add_argument(
        "--only-differing",
        action="store_true",
        help="only the cases whose client names differ from the stubs' (with --client-names)",
    )
    parser.add_argument(
        "--write-outside",
        action="store_true",
        help=f"write every failing case, with its reason, to {OUTSIDE_SCHEMA_FILE.name}",
    )
    args = parser.parse_args(argv)

    import tempfile

    from tests.conftest import MASTER_KEY, proxy_config, start_proxy, stop_proxy
    from tests.fake_upstream import FakeUpstream

    upstream = FakeUpstream().start()
    with tempfile.TemporaryDirectory() as tmp:
        proxy = start_proxy(proxy_config(upstream.url), Path(tmp))
        try:
            client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
            rows, unexpected = [], 0
            failing: dict[str, dict[str, str]] = {}
            started = time.monotonic()
            for category in args.categories.split(","):
                cases = sample(load_cases(category), args.per_category)
                if args.only_differing:
                    cases = [c for c in cases if names_differ(c)]
                outcomes = [
                    run_case(client, upstream, c, i, args.client_names) for i, c in enumerate(cases)
                ]
                passed = sum(o.passed for o in outcomes)
                listed = [o for o in outcomes if o.case.id in OUTSIDE_SCHEMA]
                wrong = [o for o in outcomes if not o.as_expected]
                failing.update({o.case.id: reason_for(o) for o in outcomes if not o.passed})
                unexpected += len(wrong)
                rows.append((category, passed, len(outcomes), len(listed), len(wrong)))
                for o in wrong if args.verbose else wrong[:3]:
                    print(f"UNEXPECTED {o.case.id} [{o.style}, stream={o.stream}]: {o.detail}")
            print(f"\n{'category':<24} {'pass':>5} {'total':>6} {'outside':>8} {'unexpected':>10}")
            for category, passed, total, listed_n, wrong_n in rows:
                print(f"{category:<24} {passed:>5} {total:>6} {listed_n:>8} {wrong_n:>10}")
            total_pass = sum(r[1] for r in rows)
            total_all = sum(r[2] for r in rows)
            print(f"{'all':<24} {total_pass:>5} {total_all:>6}")
            print(f"({time.monotonic() - started:.0f} s)")
            if args.write_outside:
                OUTSIDE_SCHEMA_FILE.write_text(
                    json.dumps(failing, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                    encoding="utf-8",
                )
                print(f"wrote {len(failing)} cases to {OUTSIDE_SCHEMA_FILE}")
                unexpected = 0
        finally:
            stop_proxy(proxy)
            upstream.stop()
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
