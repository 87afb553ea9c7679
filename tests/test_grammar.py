"""The grammar made from a request's tools, checked by a real GBNF parser and matcher
(llguidance, tests/grammar_matcher.py): tables of (answer, accepted?) per tool_choice, the
shape (prose that cannot hide a call, fenced or bare code, ``# tool: none``), the values by
type, the client's spellings, determinism, and the fields each backend gets."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_toolcode.config import AliasSettings
from litellm_toolcode.errors import ConfigError
from litellm_toolcode.grammar import grammar_fields, tool_grammar
from litellm_toolcode.rewrite import rewrite_request
from litellm_toolcode.schema import build_toolset
from tests.grammar_matcher import accepts, problems


def tool(name: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"type": "function", "function": {"name": name, "parameters": schema}}


WEATHER = tool(
    "get_weather",
    {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    ("location",),
)
SEARCH = tool(
    "search",
    {
        "query": {"type": "string"},
        "limit": {"type": "integer"},
        "score": {"type": "number"},
        "exact": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "since": {"type": ["string", "null"]},
        "opts": {
            "type": "object",
            "properties": {"lang": {"type": "string"}, "page": {"type": "integer"}},
        },
        "meta": {"type": "object"},
        "anything": {},
    },
)
# Names Python forces into another spelling: the stub has `from_`, the client wrote `from`.
RANGE = tool("math.range", {"from": {"type": "integer"}, "to": {"type": "integer"}})
TOOLS = [WEATHER, SEARCH, RANGE]


def grammar(mode: str = "auto", function: str | None = None, parallel: bool = True) -> str:
    text = tool_grammar(build_toolset(TOOLS), mode, function, parallel)
    assert problems(text) == ""
    return text


def fenced(*lines: str) -> str:
    return "```python\n" + "\n".join(lines) + "\n```"


CALL = 'get_weather(location="London", unit="celsius")'
AUTO_CASES = [
    # accepted: the shapes models write
    (fenced("# tool: get_weather", CALL, "get_weather(location='Paris')"), True),
    ("I will look it up.\n\n" + fenced("# tool: get_weather", CALL), True),
    ("# tool: get_weather\n" + CALL, True),  # unfenced
    ("# tool: get_weather\n" + CALL + "\n", True),
    (CALL, True),  # bare call, no marker line
    (fenced("# tool: get_weather, search", CALL, 'search(query="x")'), True),
    (fenced("# tool: none") + "\nNo function fits; here is the answer.", True),
    ("# tool: none\nA joke: ...", True),
    ("Just prose.\nOver two lines, and a # sign.", True),
    ("", True),
    (fenced("# tool: get_weather", CALL + "  # London first"), True),
    ('get_weather(\n    location="London",\n    unit="fahrenheit",\n)', True),
    # rejected: what the grammar is for
    (fenced("# tool: get_weather", "get_wether(location='x')"), False),  # unknown function
    (fenced("# tool: lookup", CALL), False),  # unknown tool in the marker
    ('get_weather(city="London")', False),  # unknown keyword
    ("search(exact=true)", False),  # JSON true
    ("search(since=null)", False),  # JSON null
    ('get_weather(location="x", unit="kelvin")', False),  # outside the enum
    ('search(limit="5")', False),  # a string for an integer
    ("search(limit=1.5)", False),  # a float for an integer
    ('search(tags="a")', False),  # a string for a list
    ('get_weather("London", "celsius")', True),  # positional, in the stub's order
    ('get_weather("London", unit="celsius")', True),
    ('get_weather("London", "kelvin")', False),  # typed by position
    ('get_weather(unit="celsius", "London")', False),  # keywords come last
    ('get_weather("London", "celsius", "x")', False),  # more than the parameters
    ("Let me call it:\n" + CALL + "\nDone.", False),  # prose after bare calls
    ("weather(location='x') is what I would call", False),  # a prose line opening a call
    ("Okay.\n" + fenced("get_weather(location=x)"), False),  # a name, not a literal
    (fenced("# tool: get_weather", CALL) + "\nMore prose after the block.", False),
    ("```json\n{}\n```", False),  # a fence that is not python
    (fenced("# tool: none", CALL), False),  # calls inside a "none" block
    ("loc = 'London'\nget_weather(location=loc)", False),  # no variables with a grammar
    # the next step as a block of its own, after a blank line, as models write it
    (fenced("# tool: get_weather", CALL, "", "# tool: search", 'search(query="x")'), True),
    ("# tool: search\nsearch(query='a')\n\n# tool: get_weather\n" + CALL, True),
    (fenced("# tool: get_weather", CALL, "", "", CALL), True),
    (fenced("# tool: get_weather", CALL, "", "", "", CALL), False),  # three blank lines
    (fenced("# tool: get_weather", CALL, "# tool: none"), False),  # none after a call
    (fenced("# tool: get_weather", CALL, "# tool: search"), False),  # a marker without calls
]


@pytest.mark.parametrize(("answer", "accepted"), AUTO_CASES)
def test_auto(answer: str, accepted: bool) -> None:
    assert accepts(grammar(), answer) is accepted


VALUE_CASES = [
    ('search(query="it\'s", limit=-3, score=2.5e-3, exact=False)', True),
    ("search(query='it\\'s', score=7)", True),  # an int where a number goes
    ('search(tags=[], since=None, meta={"k": [1, {"a": None}]})', True),
    ('search(opts={"lang": "en", "page": 2})', True),  # a nested model as a dict
    ('search(opts=SearchOpts(lang="en", page=2))', True),  # ... or as its constructor
    ('search(opts={"lang": "en", "color": "red"})', False),  # a key the model lacks
    ('search(opts=Opts(lang="en"))', False),  # not the stub's class
    ('search(opts={"page": "2"})', False),
    ("search(anything=[1, 'two', {'three': 3.0}, True, None])", True),
    ("search(limit=007)", False),
    ('search(query="unterminated)', False),
    ('search(query="x", query="y")', True),  # duplicates: validation afterwards
    ("math.range(from_=1, to=3)", True),  # the stub's spelling of a keyword
    ("math_range(from_=1)", True),  # the stub's name
    ("math.range(**{'from': 1})", False),  # no ** unpacking
    # another call's result as an argument (results.py reads it), top level only
    ('get_weather(location=search(query="a"))', True),
    ('search(limit=search(query="a")["count"], score=math.range(to=2)[0][1])', True),
    ('get_weather(search(query="hotel")["city"], unit="celsius")', True),  # positional too
    ('get_weather(location=lookup(q="a"))', False),  # not a tool
    ('search(tags=[get_weather(location="x")])', False),  # inside a list: no
    ('search(query=get_weather(location="x").text)', False),  # attributes: no
    ('search(query=get_weather(location="x")[1:])', False),  # slices: no
]


@pytest.mark.parametrize(("answer", "accepted"), VALUE_CASES)
def test_values(answer: str, accepted: bool) -> None:
    assert accepts(grammar(), answer) is accepted


def test_required_needs_a_call() -> None:
    text = grammar("required")
    assert accepts(text, fenced("# tool: get_weather", CALL))
    assert accepts(text, "Sure.\n" + CALL)
    assert not accepts(text, "Just prose.")
    assert not accepts(text, fenced("# tool: none") + "\nNo.")
    assert not accepts(text, "# tool: none")


def test_a_named_tool_allows_only_that_tool() -> None:
    text = grammar("function", "get_weather")
    assert accepts(text, fenced("# tool: get_weather", CALL))
    assert not accepts(text, fenced("# tool: search", 'search(query="x")'))
    assert not accepts(text, 'search(query="x")')
    assert not accepts(text, "# tool: none\nNo.")
    assert not accepts(text, "Only prose.")
    # another tool's result may still be its argument (answered earlier, results.py)
    assert accepts(text, 'get_weather(location=search(query="my hotel")["city"])')


def test_no_parallel_calls_means_one_call() -> None:
    text = grammar(parallel=False)
    assert accepts(text, fenced("# tool: get_weather", CALL))
    assert not accepts(text, fenced("# tool: get_weather", CALL, CALL))
    assert not accepts(text, fenced("# tool: get_weather", CALL, "", "# tool: search", CALL))


def test_same_tools_same_text_and_cached() -> None:
    first = tool_grammar(build_toolset(TOOLS), "auto", None, True)
    again = tool_grammar(build_toolset([dict(t) for t in TOOLS]), "auto", None, True)
    assert first is again  # the toolset cache hands back the same toolset, the grammar follows
    tool_grammar.cache_clear()
    assert tool_grammar(build_toolset(TOOLS), "auto", None, True) == first


def test_a_recursive_schema_gets_a_bounded_grammar() -> None:
    node = {
        "type": "function",
        "function": {
            "name": "tree",
            "parameters": {
                "type": "object",
                "properties": {"root": {"$ref": "#/$defs/node"}},
                "$defs": {
                    "node": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                        },
                    }
                },
            },
        },
    }
    text = tool_grammar(build_toolset([node]), "auto", None, True)
    assert problems(text) == ""
    assert len(text) < 40_000
    nested = '{"name": "a", "children": [{"name": "b", "children": []}]}'
    assert accepts(text, f"tree(root={nested})")


def test_client_spellings_are_allowed() -> None:
    odd = tool("sum", {"list": {"type": "array", "items": {"type": "integer"}}, "_from": {}})
    text = tool_grammar(build_toolset([odd, RANGE]), "auto", None, True)
    assert problems(text) == ""
    toolset = build_toolset([odd, RANGE])
    stub = next(t.py_name for t in toolset.tools if t.name == "sum")
    for written in ("sum", stub):
        assert accepts(text, f"{written}(list=[1, 2], _from='x')"), written
    assert accepts(text, "math.range(from_=1)")
    assert not accepts(text, "sum(lst=[1])")


@pytest.mark.parametrize(
    ("backend", "fields"),
    [
        ("gbnf", {"grammar": "G"}),
        ("vllm", {"structured_outputs": {"grammar": "G"}}),
        ("sglang", {"ebnf": "G"}),
    ],
)
def test_fields_per_backend(backend: Any, fields: dict[str, Any]) -> None:
    assert grammar_fields(backend, "G") == fields


def test_no_field_without_a_backend() -> None:
    with pytest.raises(ConfigError):
        grammar_fields("none", "G")


def _rewritten(choice: Any, grammar: str = "gbnf") -> dict[str, Any]:
    data: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    data |= {"tools": TOOLS, "tool_choice": choice}
    settings = AliasSettings(enabled=True, grammar=grammar)  # type: ignore[arg-type]
    return rewrite_request(data, settings)


def test_the_rewritten_request_carries_the_grammar() -> None:
    data = _rewritten("auto")
    assert problems(data["grammar"]) == "" and accepts(data["grammar"], CALL)
    assert "tools" not in data and "tool_choice" not in data
    assert data["metadata"]["spend_logs_metadata"]["toolcode_grammar"] == "gbnf"
    named = _rewritten({"type": "function", "function": {"name": "search"}}, "sglang")
    assert not accepts(named["ebnf"], CALL) and accepts(named["ebnf"], 'search(query="q")')
    assert "grammar" not in _rewritten("none") and "grammar" not in _rewritten("auto", "none")


def test_the_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="grammar"):
        AliasSettings.model_validate({"enabled": True, "grammar": "llama"})
    assert AliasSettings().grammar == "none"


# --- BFCL: every function-doc set, and every expected answer --------------------------------
# The whole corpus takes over a minute: the default suite reads every 20th set, `-m slow` all.
STRIDES = [pytest.param(20, id="sample"), pytest.param(1, id="all", marks=pytest.mark.slow)]


@pytest.mark.parametrize("stride", STRIDES)
def test_every_bfcl_function_doc_set_gives_a_grammar_that_parses(stride: int) -> None:
    from bench import bfcl_roundtrip as bfcl

    failed, count = [], 0
    for number, (_, case_id, functions) in enumerate(bfcl.function_docs()):
        if number % stride:
            continue
        toolset = build_toolset([{"type": "function", "function": f} for f in functions])
        for mode in ("auto", "required"):
            count += 1
            problem = problems(tool_grammar(toolset, mode, None, True))
            if problem:
                failed.append(f"{case_id} ({mode}): {problem[:200]}")
    assert count > 7000 // stride
    assert not failed, "\n".join(failed[:10])


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("client_names", [False, True], ids=["stub-names", "client-names"])
def test_every_bfcl_expected_answer_is_accepted(client_names: bool, stride: int) -> None:
    """BFCL's expected calls written as keywords (fenced with the marker, or bare), in either
    quote, by the stub's names or the client's: the grammar must never forbid a right answer.
    Left out: answers outside their own schema, and keys only ``**{...}`` can write."""
    from bench import bfcl_roundtrip as bfcl

    rejected, count = [], 0
    for category in bfcl.AST_CATEGORIES:
        for index, case in enumerate(bfcl.load_cases(category)):
            if case.id in bfcl.OUTSIDE_SCHEMA or index % stride:
                continue
            toolset = build_toolset(case.tools)
            text = tool_grammar(toolset, "auto", None, True)
            turn = index // stride  # alternate quotes and fencing over the cases read
            quote = "'" if turn % 2 else '"'
            lines = [
                bfcl.render_call(toolset, name, args, "keywords", quote, client_names)
                for name, args in case.written
            ]
            if any("**{" in line for line in lines):
                continue
            py_names = {t.name: t.py_name for t in toolset.tools}
            marker = ", ".join(dict.fromkeys(py_names[n] for n, _ in case.written))
            block = "\n".join(lines)
            answer = block if turn % 3 == 0 else fenced(f"# tool: {marker}", block)
            count += 1
            if not accepts(text, answer):
                rejected.append(f"{case.id}: {answer[:300]}")
    assert count > 1000 // stride
    assert not rejected, f"{len(rejected)} of {count}:\n" + "\n".join(rejected[:10])
