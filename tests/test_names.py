"""Names as the client spells them: which stub names are kept, which renamed, and how a call
written with either spelling is read (literal path and a real sandbox kernel). The same cases
through the real proxy are in ``test_proxy_names.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from litellm_toolcode.answer import interpret
from litellm_toolcode.errors import ModelOutputError, ToolArgumentError, UnknownToolError
from litellm_toolcode.sandbox import Limits
from litellm_toolcode.schema.naming import _param_names, _tool_names
from litellm_toolcode.schema_code import build_toolset
from litellm_toolcode.spelling import Spellings, forced_spellings
from litellm_toolcode.stream import StreamAssembler
from tests.sandbox_helpers import LoopThread, tool


def obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


# A tool named like a builtin whose properties are a keyword, a leading underscore, a builtin,
# a non-ASCII identifier and a BaseModel-protected prefix; a dotted tool; and a tool with both
# `from` and `from_` (where `from_` may mean either).
SUM = tool(
    "sum",
    {
        "from": {"type": "string"},
        "_from": {"type": "string"},
        "list": {"type": "array", "items": {"type": "integer"}},
        "año_vehiculo": {"type": "integer"},
        "model_3d": {"type": "boolean"},
    },
    ["from"],
)
FACTORIAL = tool("math.factorial", {"n": {"type": "integer"}}, ["n"])
RANGE = tool("get_range", {"from": {"type": "integer"}, "from_": {"type": "integer"}}, [])
LIGATURE = tool("open_file", {"ﬁle": {"type": "string"}}, ["ﬁle"])
TOOLS = [SUM, FACTORIAL, RANGE, LIGATURE]
TOOLSET = build_toolset(TOOLS)


# --- which names are kept --------------------------------------------------------------------

# (client property names, stub parameters): the client's name wherever Python keeps it as
# written and no other property is forced into that spelling.
PARAMETERS = [
    (["from"], ["from_"]),  # a keyword cannot be a parameter
    (["_from"], ["_from"]),  # private to Pydantic: only the field behind it is renamed
    (["list", "sum", "id", "type"], ["list", "sum", "id", "type"]),  # builtins are fine
    (["model_3d", "schema", "model_config"], ["model_3d", "schema", "model_config"]),
    (["año_vehiculo", "温度"], ["año_vehiculo", "温度"]),  # non-ASCII identifiers are Python
    (["ﬁle"], ["file"]),  # the parser reads `ﬁle=` as `file=` (NFKC): the stub says so
    (["from", "_from"], ["from_", "_from"]),
    # both may be written `from_`: neither stub takes it, the name is ambiguous (an error)
    (["from", "from_"], ["from__2", "from__3"]),
    (["ﬁle", "file"], ["file_2", "file_3"]),  # `file` is what the parser makes of both
    (["first-name", "first_name"], ["first_name_2", "first_name"]),
]


@pytest.mark.parametrize(("originals", "params"), PARAMETERS)
def test_stub_parameters_keep_the_clients_names(originals: list[str], params: list[str]) -> None:
    toolset = build_toolset([tool("f", {n: {"type": "integer"} for n in originals}, [])])
    assert list(toolset.signatures["f"].parameters) == params
    assert dict(toolset.argument_names("f")) == dict(zip(originals, params, strict=True))
    # every parameter validates back to the client's exact name
    arguments = {p: i for i, p in enumerate(params)}
    assert toolset.validate("f", arguments) == {o: i for i, o in enumerate(originals)}


def test_param_names_table() -> None:
    fields = ["from__2", "from_"]  # what the models' fields are called
    assert _param_names(["from", "from_"], fields) == ["from__2", "from__3"]


# (client tool names, stub function names): tools are module globals in the kernel, so names
# of builtins and keywords get a stub name of their own; the client's name still calls them.
TOOL_NAMES = [
    (["sum", "print"], ["sum_", "print_"]),
    (["math.factorial", "get-weather"], ["math_factorial", "get_weather"]),
    (["class", "class_"], ["class__2", "class__3"]),  # `class_` may mean either
    (["sum", "sum_"], ["sum__2", "sum_"]),
]


@pytest.mark.parametrize(("names", "stubs"), TOOL_NAMES)
def test_tool_stub_names(names: list[str], stubs: list[str]) -> None:
    assert _tool_names(names) == stubs


FORCED = [
    ("from", {"from_"}),
    ("ﬁle", {"file"}),
    ("list", set()),
    ("año", set()),  # NFKC-stable
    ("get-weather", set()),
]


@pytest.mark.parametrize(("name", "forced"), FORCED)
def test_forced_spellings(name: str, forced: set[str]) -> None:
    assert forced_spellings(name) == forced


def test_spellings_lookup() -> None:
    scope = Spellings.of([("from__2", "from"), ("from__3", "from_"), ("x", "x")])
    assert scope.lookup("x") == ("x",)
    assert scope.lookup("from__2") == ("from__2",)
    assert scope.lookup("from_") == ("from__2", "from__3")  # ambiguous
    assert scope.lookup("from_", quoted=True) == ("from__3",)  # a dict key is exact
    assert scope.lookup("from", quoted=True) == ("from__2",)
    assert scope.lookup("nope") == ()
    message = scope.ambiguity("from_", scope.lookup("from_"), "argument")
    assert "'from' (write from__2)" in message and "'from_' (write from__3)" in message


# --- reading calls written with either spelling (literal path) -------------------------------

SUM_ARGS = {"from": "a", "_from": "b", "list": [1, 2], "año_vehiculo": 2019, "model_3d": True}
SUM_CALL = 'from_="a", _from="b", list=[1, 2], año_vehiculo=2019, model_3d=True'

READ = [
    (f"sum_({SUM_CALL})", [("sum", SUM_ARGS)]),  # the stub's spelling
    (f"sum({SUM_CALL})", [("sum", SUM_ARGS)]),  # the client's tool name
    (  # the client's `from` (a keyword: only a dict key can spell it)
        'sum(**{"from": "a", "_from": "b"}, list=[1, 2], año_vehiculo=2019, model_3d=True)',
        [("sum", SUM_ARGS)],
    ),
    ('sum("a")', [("sum", {"from": "a"})]),  # positional, by the stub's signature
    ("math.factorial(n=5)", [("math.factorial", {"n": 5})]),
    (
        "math_factorial(5)\ntools.math_factorial(6)",
        [("math.factorial", {"n": 5}), ("math.factorial", {"n": 6})],
    ),
    ("get_range(from__2=1, from__3=2)", [("get_range", {"from": 1, "from_": 2})]),
    ('get_range(**{"from": 1, "from_": 2})', [("get_range", {"from": 1, "from_": 2})]),
    ('open_file(ﬁle="a.txt")', [("open_file", {"ﬁle": "a.txt"})]),  # the ligature, as written
    ('open_file(file="a.txt")', [("open_file", {"ﬁle": "a.txt"})]),
    ('open_file(**{"ﬁle": "a.txt"})', [("open_file", {"ﬁle": "a.txt"})]),
]


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def calls_of(text: str) -> list[tuple[str, dict[str, Any]]]:
    reply = interpret(text, TOOLSET)
    return [(c.name, json.loads(c.arguments)) for c in reply.tool_calls]


@pytest.mark.parametrize(("code", "expected"), READ)
def test_either_spelling_reads_the_same(code: str, expected: list[Any]) -> None:
    assert calls_of(fenced(code)) == expected
    assert calls_of(code) == expected  # bare calls are found by the client's names too


REFUSED = [
    # `from_` is the client's `from_` and the way Python spells `from`
    ("get_range(from_=1)", ToolArgumentError, ["ambiguous", "'from' (write from__2)", "'from_'"]),
    ('sum(from_="a", **{"from": "b"})', ToolArgumentError, ["given twice"]),
    # `import math` makes `math.factorial` the module's: no tool call to read
    ("import math\nmath.factorial(5)", UnknownToolError, ["math.factorial()"]),
    ('sum(list_=[1], from_="a")', ToolArgumentError, ["unexpected keyword argument 'list_'"]),
]


@pytest.mark.parametrize(("code", "error", "fragments"), REFUSED)
def test_refused_spellings(code: str, error: type[ModelOutputError], fragments: list[str]) -> None:
    with pytest.raises(error) as info:
        interpret(fenced(code), TOOLSET)
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message


def test_history_and_prompt_use_the_stub_names() -> None:
    assert "def sum_(" in TOOLSET.prompt_source
    assert "año_vehiculo: int | None = None" in TOOLSET.prompt_source
    assert TOOLSET.render_call("sum", SUM_ARGS) == (
        'sum_(from_="a", _from="b", list=[1, 2], año_vehiculo=2019, model_3d=True)'
    )
    assert TOOLSET.render_call("get_range", {"from": 1, "from_": 2}) == (
        "get_range(from__2=1, from__3=2)"
    )


def test_stream_holds_calls_written_with_client_names() -> None:
    """An unfenced `math.factorial(...)` must not leak out as prose while it streams."""
    assembler = StreamAssembler(TOOLSET.names.callable_names())
    sent = [
        e.text for part in ("Sure.\n", "math.fact", "orial(n=5)\n") for e in assembler.feed(part)
    ]
    assert "".join(sent) == "Sure."  # the rest waits for the end (trailing space too)


# --- a real kernel: client spellings in code that needs execution ----------------------------


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopThread]:
    loop = LoopThread(Limits(pool_size=1, timeout=5, directory=str(tmp_path_factory.mktemp("k"))))
    yield loop
    loop.close()


def test_sandbox_reads_client_spellings_in_a_loop(sb: LoopThread) -> None:
    code = (
        "for year in [2019, 2020]:\n"
        '    sum(**{"from": "a"}, _from="b", list=[1, 2], año_vehiculo=year, model_3d=True)\n'
        "total = sum([1, 2, 3])  # the builtin: the tool's arguments do not fit\n"
        "for k in range(2):\n"
        "    math.factorial(n=total + k)\n"
        '    open_file(ﬁle="a.txt")\n'
    )
    reply = sb.interpret(fenced(code), TOOLSET)
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("sum", {**SUM_ARGS, "año_vehiculo": 2019}),
        ("sum", {**SUM_ARGS, "año_vehiculo": 2020}),
        ("math.factorial", {"n": 6}),
        ("open_file", {"ﬁle": "a.txt"}),
        ("math.factorial", {"n": 7}),
        ("open_file", {"ﬁle": "a.txt"}),
    ]


def test_sandbox_refuses_an_ambiguous_argument(sb: LoopThread) -> None:
    with pytest.raises(ModelOutputError) as info:
        sb.interpret(fenced("for i in [1]:\n    get_range(from_=i)"), TOOLSET)
    assert "ambiguous" in info.value.message and "'from' (write from__2)" in info.value.message


def test_sandbox_import_replaces_a_dotted_tool(sb: LoopThread) -> None:
    reply = sb.interpret(fenced("import math\nx = math.factorial(3)\nmath_factorial(n=x)"), TOOLSET)
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("math.factorial", {"n": 6})
    ]


def test_callable_names_are_what_python_can_call() -> None:
    names = build_toolset([tool("get-weather", {}, []), FACTORIAL, SUM]).names.callable_names()
    assert names == {"get_weather", "math.factorial", "math_factorial", "sum", "sum_"}
