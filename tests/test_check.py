"""Table-driven tests for check.read_literal_calls: the literal fast path."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from litellm_toolcode.check import LiteralCall, ResultUsedError, read_literal_calls
from litellm_toolcode.errors import (
    CodeSyntaxError,
    ExecutionUnavailableError,
    ToolArgumentError,
    ToolcodeError,
    UnknownToolError,
)
from litellm_toolcode.extract import split_answer

# --- the stubs a request's tools would become ---


class Guest:
    """A data model: the stub code shows it as a Pydantic class."""


def get_weather(city: str, unit: str = "celsius") -> str:
    raise NotImplementedError


def move(dx: int, dy: int = 0) -> str:
    raise NotImplementedError


def book_table(guests: list[Guest], notes: str | None = None) -> str:
    raise NotImplementedError


def ping() -> str:
    raise NotImplementedError


def configure(options: dict[str, Any], *, dry_run: bool = False) -> str:
    raise NotImplementedError


def only_positional(value: int, /) -> str:
    raise NotImplementedError


SIGNATURES = {
    f.__name__: inspect.signature(f)
    for f in (get_weather, move, book_table, ping, configure, only_positional)
}
MODELS = frozenset({"Guest"})


def read(code: str) -> tuple[LiteralCall, ...]:
    return read_literal_calls(code, SIGNATURES, MODELS)


def calls(
    *rows: tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], bool],
) -> tuple[LiteralCall, ...]:
    """(function, arguments[, bare]): a call whose value is taken (assigned...) is not bare."""
    return tuple(LiteralCall(*row) for row in rows)


# --- accepted code: (id, code, expected calls) ---

ACCEPTED: list[tuple[str, str, tuple[LiteralCall, ...]]] = [
    ("empty-code", "", ()),
    ("comment-only", "# tool: ping", ()),
    ("empty-call", "ping()", calls(("ping", {}))),
    ("keyword", "get_weather(city='Paris')", calls(("get_weather", {"city": "Paris"}))),
    # vLLM's pythonic parser drops positional arguments.
    (
        "positional-vllm",
        "get_weather('Paris', 'fahrenheit')",
        calls(("get_weather", {"city": "Paris", "unit": "fahrenheit"})),
    ),
    (
        "positional-and-keyword",
        "move(3, dy=4)",
        calls(("move", {"dx": 3, "dy": 4})),
    ),
    ("defaults-not-applied", "move(1)", calls(("move", {"dx": 1}))),
    ("positional-only", "only_positional(7)", calls(("only_positional", {"value": 7}))),
    # vLLM #15462 / #44777: negative numbers.
    ("negative-int", "move(-3, dy=-4)", calls(("move", {"dx": -3, "dy": -4}))),
    ("negative-float", "move(dx=-2.5)", calls(("move", {"dx": -2.5}))),
    ("negative-parenthesized", "move(-(3))", calls(("move", {"dx": -3}))),
    ("unary-plus", "move(+3, dy=--2)", calls(("move", {"dx": 3, "dy": 2}))),
    ("exponent-and-hex", "move(1e-3, dy=0x10)", calls(("move", {"dx": 0.001, "dy": 16}))),
    (
        "constants",
        "configure({'a': True, 'b': False, 'c': None, 'd': 0}, dry_run=True)",
        calls(
            (
                "configure",
                {"options": {"a": True, "b": False, "c": None, "d": 0}, "dry_run": True},
            )
        ),
    ),
    # vLLM #30722: nested lists of dicts.
    (
        "nested-lists-of-dicts",
        "book_table(guests=[{'name': 'Ann', 'tags': [['x', -1], []]}, {'name': 'Bo'}])",
        calls(
            (
                "book_table",
                {"guests": [{"name": "Ann", "tags": [["x", -1], []]}, {"name": "Bo"}]},
            )
        ),
    ),
    (
        "tuples-and-sets-become-lists",
        "configure({'t': (1, (2,)), 's': {3}, 'e': ()})",
        calls(("configure", {"options": {"t": [1, [2]], "s": [3], "e": []}})),
    ),
    (
        "deep-nesting",
        "configure({'a': {'b': {'c': {'d': [[[{'e': -1.5}]]]}}}})",
        calls(("configure", {"options": {"a": {"b": {"c": {"d": [[[{"e": -1.5}]]]}}}}})),
    ),
    (
        "model-call-becomes-dict",
        "book_table(guests=[Guest(name='Ann', age=3), Guest(name='Bo', tags=['vip'])])",
        calls(
            (
                "book_table",
                {"guests": [{"name": "Ann", "age": 3}, {"name": "Bo", "tags": ["vip"]}]},
            )
        ),
    ),
    (
        "model-call-with-literal-splat",
        "book_table([Guest(**{'name': 'Ann'})])",
        calls(("book_table", {"guests": [{"name": "Ann"}]})),
    ),
    (
        "dict-splat-in-dict",
        "configure({'a': 1, **{'b': 2}})",
        calls(("configure", {"options": {"a": 1, "b": 2}})),
    ),
    (
        "kwargs-literal-splat",
        "get_weather(**{'city': 'Oslo', 'unit': 'kelvin'})",
        calls(("get_weather", {"city": "Oslo", "unit": "kelvin"})),
    ),
    ("args-literal-splat", "move(*[1, 2])", calls(("move", {"dx": 1, "dy": 2}))),
    (
        "several-calls-in-order",
        "get_weather(city='Paris')\nmove(1)\nping()",
        calls(("get_weather", {"city": "Paris"}), ("move", {"dx": 1}), ("ping", {})),
    ),
    (
        "same-function-twice",
        "get_weather('Paris')\nget_weather('Oslo')",
        calls(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})),
    ),
    (
        "assign-print-await",
        "w = get_weather('Rome')\nprint(move(1))\nawait ping()\nprint(await ping())",
        calls(
            ("get_weather", {"city": "Rome"}, False),
            ("move", {"dx": 1}),
            ("ping", {}),
            ("ping", {}),
        ),
    ),
    (
        "ignored-statements",
        '"""Docstring."""\nimport tools\nfrom tools import ping\npass\n# note\nping()',
        calls(("ping", {})),
    ),
    (
        "namespaced-calls",
        "tools.ping()\nfunctions.get_weather('Rome')\ndefault_api.move(1)",
        calls(("ping", {}), ("get_weather", {"city": "Rome"}), ("move", {"dx": 1})),
    ),
    (
        "multiline-call",
        "get_weather(\n    city='Paris',\n    unit='celsius',\n)",
        calls(("get_weather", {"city": "Paris", "unit": "celsius"})),
    ),
    (
        "semicolons",
        "ping(); move(2)",
        calls(("ping", {}), ("move", {"dx": 2})),
    ),
    # a tool's name on a line of its own (`ls`, as in a shell): that tool without arguments
    ("bare-name", "# tool: ping\n\nping", calls(("ping", {}))),
    ("bare-name-then-call", "ping\nmove(2)", calls(("ping", {}), ("move", {"dx": 2}))),
]


@pytest.mark.parametrize(
    ("code", "expected"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_accepted(code: str, expected: tuple[LiteralCall, ...]) -> None:
    assert read(code) == expected


# --- strings come out byte-exact: (id, Python literal as the model wrote it, value) ---

STRINGS: list[tuple[str, str, str]] = [
    ("double-quotes", '"Paris"', "Paris"),
    ("single-in-double", '"it\'s"', "it's"),
    ("double-in-single", "'say \"hi\"'", 'say "hi"'),
    ("escaped-quotes", r"'it\'s \"x\"'", 'it\'s "x"'),
    ("backslashes", r"'C:\\dir\\file.txt'", "C:\\dir\\file.txt"),
    ("raw-string", r"r'C:\dir\n'", "C:\\dir\\n"),
    ("escapes", r"'tab\there\nnewline\r\x00\u00e9\N{SNOWMAN}'", "tab\there\nnewline\r\x00é☃"),
    ("triple-quoted", "'''line 1\nline \"2\"\n'''", 'line 1\nline "2"\n'),
    ("triple-double", '"""a\n\n  b"""', "a\n\n  b"),
    ("implicit-concatenation", "'Par' \"is\" r'\\n'", "Par" + "is" + "\\n"),
    ("parenthesized-concatenation", "('a'\n 'b')", "ab"),
    ("unicode", "'Zürich, 東京, Αθήνα'", "Zürich, 東京, Αθήνα"),
    ("emoji", "'🌧️ and 👨‍👩‍👧'", "🌧️ and 👨‍👩‍👧"),
    ("fence-inside", "'```python\\nx\\n```'", "```python\nx\n```"),
    ("empty", "''", ""),
]


@pytest.mark.parametrize(
    ("literal", "value"), [s[1:] for s in STRINGS], ids=[s[0] for s in STRINGS]
)
def test_strings_byte_exact(literal: str, value: str) -> None:
    (call,) = read(f"get_weather(city={literal})")
    assert call.arguments["city"] == value
    assert call.arguments["city"].encode() == value.encode()


# --- refused code: (id, code, error class, message fragments, attributes) ---

REFUSED: list[tuple[str, str, type[ToolcodeError], list[str], dict[str, Any]]] = [
    # syntax
    (
        "syntax-unclosed",
        "ping()\nget_weather(city='Paris'",
        CodeSyntaxError,
        ["line 2:", "never closed", "get_weather(city='Paris'"],
        {},
    ),
    ("syntax-unterminated", "get_weather('Pa", CodeSyntaxError, ["line 1:", "unterminated"], {}),
    ("syntax-prose", "Sure! ping()", CodeSyntaxError, ["line 1:", "Sure! ping()"], {}),
    (
        "repeated-keyword",
        "move(dx=1, dx=2)",
        ToolArgumentError,
        ["line 1:", "move(): argument 'dx': given twice"],
        {"tool": "move", "field": "dx"},
    ),
    # unknown functions
    (
        "unknown-function",
        "get_news(topic='x')",
        UnknownToolError,
        ["line 1:", "get_news", "available functions are: book_table, configure"],
        {"name": "get_news"},
    ),
    (
        "unknown-close-match",
        "get_wether('Paris')",
        UnknownToolError,
        ["did you mean get_weather?"],
        {"name": "get_wether"},
    ),
    (
        "model-called-directly",
        "Guest(name='Ann')",
        UnknownToolError,
        ["Guest is a data model, not a function", "pass Guest(...) as an argument"],
        {"name": "Guest"},
    ),
    (
        "unknown-method",
        "requests.get('http://x')",
        UnknownToolError,
        ["requests.get() is not an available function"],
        {"name": "requests.get"},
    ),
    (
        "unknown-after-known",
        "ping()\nweather(city='x')",
        UnknownToolError,
        ["line 2:"],
        {"name": "weather"},
    ),
    # arguments that do not fit the signature
    (
        "bare-name-missing-required",
        "get_weather",
        ToolArgumentError,
        ["get_weather(): missing required argument 'city'"],
        {"tool": "get_weather", "field": "city"},
    ),
    ("bare-name-not-a-tool", "weather", ExecutionUnavailableError, ["an expression"], {}),
    (
        "missing-required",
        "get_weather(unit='celsius')",
        ToolArgumentError,
        ["get_weather(): missing required argument 'city'", "signature is get_weather(city"],
        {"tool": "get_weather", "field": "city"},
    ),
    (
        "unexpected-keyword",
        "get_weather(city='x', units='c')",
        ToolArgumentError,
        ["unexpected keyword argument 'units'", "did you mean 'unit'?"],
        {"tool": "get_weather", "field": "units"},
    ),
    (
        "too-many-positional",
        "move(1, 2, 3)",
        ToolArgumentError,
        ["too many positional arguments (3 given, at most 2 accepted)"],
        {"tool": "move", "field": None},
    ),
    (
        "keyword-only-by-position",
        "configure({}, True)",
        ToolArgumentError,
        ["too many positional arguments"],
        {"tool": "configure"},
    ),
    (
        "given-twice",
        "move(1, dx=2)",
        ToolArgumentError,
        ["argument 'dx' is given twice"],
        {"tool": "move", "field": "dx"},
    ),
    (
        "positional-only-as-keyword",
        "only_positional(value=1)",
        ToolArgumentError,
        ["'value' must be passed by position"],
        {"tool": "only_positional", "field": "value"},
    ),
    (
        "splat-duplicates-keyword",
        "get_weather(city='a', **{'city': 'b'})",
        ToolArgumentError,
        ["argument 'city': given twice"],
        {"tool": "get_weather", "field": "city"},
    ),
    # values that are not JSON-like
    (
        "bytes",
        "get_weather(city=b'Paris')",
        ToolArgumentError,
        ["argument 'city'", "bytes literal"],
        {"tool": "get_weather", "field": "city"},
    ),
    (
        "bytes-positional",
        "get_weather(b'Paris')",
        ToolArgumentError,
        ["bytes literal"],
        {"tool": "get_weather", "field": "city"},
    ),
    (
        "ellipsis-placeholder",
        "get_weather(city=...)",
        ToolArgumentError,
        ["placeholder"],
        {"field": "city"},
    ),
    ("complex", "move(dx=2j)", ToolArgumentError, ["complex"], {"field": "dx"}),
    (
        "non-str-dict-key",
        "configure({1: 'a'})",
        ToolArgumentError,
        ["dict key `1` must be a quoted string"],
        {"tool": "configure", "field": "options"},
    ),
    (
        "unquoted-dict-key",
        "configure({city: 'a'})",
        ToolArgumentError,
        ['dict key `city` must be a quoted string, e.g. "city"'],
        {"field": "options"},
    ),
    (
        "model-positional",
        "book_table([Guest('Ann')])",
        ToolArgumentError,
        ["Guest(...) takes keyword arguments only"],
        {"tool": "book_table", "field": "guests"},
    ),
    # code that needs execution
    (
        "for-loop",
        "for c in ['a', 'b']:\n    get_weather(c)",
        ExecutionUnavailableError,
        ["line 1: a for loop", "for c in ['a', 'b']:", "not enabled for this model"],
        {},
    ),
    ("while-loop", "while True:\n    ping()", ExecutionUnavailableError, ["a while loop"], {}),
    ("if", "if 1:\n    ping()", ExecutionUnavailableError, ["an if statement"], {}),
    ("with", "with x:\n    ping()", ExecutionUnavailableError, ["a with statement"], {}),
    (
        "def",
        "ping()\ndef f():\n    pass",
        ExecutionUnavailableError,
        ["line 2: a function definition"],
        {},
    ),
    ("class", "class A:\n    pass", ExecutionUnavailableError, ["a class definition"], {}),
    ("try", "try:\n    ping()\nexcept E:\n    pass", ExecutionUnavailableError, ["a try"], {}),
    ("augmented", "n = 1\nn += 1", ExecutionUnavailableError, ["line 1: an assignment"], {}),
    ("aug-only", "n += 1", ExecutionUnavailableError, ["an augmented assignment"], {}),
    (
        "comprehension-statement",
        "[get_weather(c) for c in 'ab']",
        ExecutionUnavailableError,
        ["a list comprehension"],
        {},
    ),
    ("tuple-target", "a, b = ping(), ping()", ExecutionUnavailableError, ["assignment"], {}),
    ("print-literal", "print('hi')", ExecutionUnavailableError, ["a call (`print('hi')`)"], {}),
    ("builtin-call", "len([1])", ExecutionUnavailableError, ["the built-in len()"], {}),
    (
        "variable-argument",
        "get_weather(city=town)",
        ExecutionUnavailableError,
        ["line 1: the name `town`", "code execution"],
        {},
    ),
    (
        "json-true",
        "configure({'a': true})",
        ExecutionUnavailableError,
        ["the name `true` (did you mean True?)"],
        {},
    ),
    (
        "f-string",
        "get_weather(city=f'{x}ville')",
        ExecutionUnavailableError,
        ["an f-string `f'{x}ville'`"],
        {},
    ),
    ("arithmetic", "move(2*3)", ExecutionUnavailableError, ["arithmetic `2*3`"], {}),
    ("negative-arithmetic", "move(-(2+1))", ExecutionUnavailableError, ["`-(2+1)`"], {}),
    (
        "nested-call",
        "get_weather(city=str(1))",
        ExecutionUnavailableError,
        ["a call `str(1)`"],
        {},
    ),
    (
        "comprehension-argument",
        "configure({'a': [i for i in range(3)]})",
        ExecutionUnavailableError,
        ["a list comprehension `[i for i in range(3)]`"],
        {},
    ),
    (
        "lambda-argument",
        "configure({'a': lambda: 1})",
        ExecutionUnavailableError,
        ["a lambda"],
        {},
    ),
    (
        "star-args-variable",
        "move(*xs)",
        ExecutionUnavailableError,
        ["unpacking `*xs`"],
        {},
    ),
    (
        "kwargs-variable",
        "get_weather(**opts)",
        ExecutionUnavailableError,
        ["unpacking `**opts`"],
        {},
    ),
    (
        "long-expression-truncated",
        "get_weather(city=" + "+".join(["'abcdefghij'"] * 20) + ")",
        ExecutionUnavailableError,
        ["..."],
        {},
    ),
]


@pytest.mark.parametrize(
    ("code", "error", "fragments", "attributes"),
    [r[1:] for r in REFUSED],
    ids=[r[0] for r in REFUSED],
)
def test_refused(
    code: str,
    error: type[ToolcodeError],
    fragments: list[str],
    attributes: dict[str, Any],
) -> None:
    with pytest.raises(error) as caught:
        read(code)
    assert type(caught.value) is error  # not a subclass, e.g. not ResultUsedError
    for fragment in fragments:
        assert fragment in caught.value.message
    for name, value in attributes.items():
        assert getattr(caught.value, name) == value


def test_long_expression_is_truncated() -> None:
    code = "get_weather(city=" + "+".join(["'abcdefghij'"] * 20) + ")"
    with pytest.raises(ExecutionUnavailableError) as caught:
        read(code)
    assert len(caught.value.message) < 400


# --- code that uses a tool's result: (id, code, function, line, calls read before) ---

RESULT_USED: list[tuple[str, str, str, int, tuple[LiteralCall, ...]]] = [
    (
        "as-argument",
        "w = get_weather('Paris')\nget_weather(city=w)",
        "get_weather",
        2,
        calls(("get_weather", {"city": "Paris"}, False, True)),
    ),
    (
        "subscripted",
        "t = move(1)\nping()\nget_weather(city=t['city'])",
        "move",
        3,
        calls(("move", {"dx": 1}, False, True), ("ping", {})),
    ),
    ("printed", "w = ping()\nprint(w)", "ping", 2, calls(("ping", {}, False, True))),
    ("in-if", "w = ping()\nif w:\n    ping()", "ping", 2, calls(("ping", {}, False, True))),
    ("method-on-result", "w = ping()\nw.upper()", "ping", 2, calls(("ping", {}, False, True))),
    (
        "nested-in-list",
        "w = ping()\nconfigure({'a': [1, w]})",
        "ping",
        2,
        calls(("ping", {}, False, True)),
    ),
    ("as-dict-key", "w = ping()\nconfigure({w: 1})", "ping", 2, calls(("ping", {}, False, True))),
    ("splatted", "w = ping()\nmove(*w)", "ping", 2, calls(("ping", {}, False, True))),
]


@pytest.mark.parametrize(
    ("code", "function", "line", "before"),
    [r[1:] for r in RESULT_USED],
    ids=[r[0] for r in RESULT_USED],
)
def test_result_used(code: str, function: str, line: int, before: tuple[LiteralCall, ...]) -> None:
    with pytest.raises(ResultUsedError) as caught:
        read(code)
    error = caught.value
    assert isinstance(error, ExecutionUnavailableError)
    assert f"uses the result of {function}(...)" in error.message
    assert f"line {line}:" in error.message
    assert "not enabled for this model" in error.message
    assert (error.function, error.line, error.calls) == (function, line, before)


def test_reassigned_name_is_still_a_result() -> None:
    with pytest.raises(ResultUsedError, match=r"result of move"):
        read("w = ping()\nw = move(1)\nget_weather(city=w)")


def test_model_names_default_to_none() -> None:
    with pytest.raises(UnknownToolError, match="not an available function"):
        read_literal_calls("Guest(name='a')", SIGNATURES)


def test_no_signatures() -> None:
    with pytest.raises(UnknownToolError, match=r"available functions are: \(none\)"):
        read_literal_calls("ping()", {})


def test_arguments_are_fresh_plain_values() -> None:
    (first, second) = read("configure({'a': [1]})\nconfigure({'a': [1]})")
    assert first == second
    assert first.arguments["options"]["a"] is not second.arguments["options"]["a"]
    assert type(first.arguments["options"]) is dict
    assert list(read("move(dy=2, dx=1)")[0].arguments) == ["dx", "dy"]  # signature order


def test_varargs_signature() -> None:
    def tagged(*tags: str, **extra: Any) -> None:
        raise NotImplementedError

    result = read_literal_calls("tagged('a', 'b', k=1)", {"tagged": inspect.signature(tagged)})
    assert result == (LiteralCall("tagged", {"tags": ["a", "b"], "extra": {"k": 1}}),)


# --- with extract: a model's whole answer to calls ---

F = "```"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            f"<think>get_weather('Rome')</think>\n{F}python\n# tool: get_weather\n"
            f"get_weather('Paris', unit='kelvin')\nmove(-1, dy=-2.5)\n{F}",
            calls(
                ("get_weather", {"city": "Paris", "unit": "kelvin"}),
                ("move", {"dx": -1, "dy": -2.5}),
            ),
        ),
        (
            "Sure, let me check.\nget_weather(city='Paris')",
            calls(("get_weather", {"city": "Paris"})),
        ),
        (
            f"{F}py\nbook_table(guests=[Guest(name='Ann'), {{'name': 'Bo'}}])\n{F}\nDone.",
            calls(("book_table", {"guests": [{"name": "Ann"}, {"name": "Bo"}]})),
        ),
    ],
    ids=["fenced-with-think", "prose-before-unfenced", "models-and-dicts"],
)
def test_extract_then_read(answer: str, expected: tuple[LiteralCall, ...]) -> None:
    code = split_answer(answer, SIGNATURES).code
    assert code is not None
    assert read(code) == expected
