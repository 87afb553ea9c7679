"""schema_code: JSON Schema tools -> Python source, name mangling, validation back to JSON."""

from __future__ import annotations

import ast
import inspect
import json
from typing import Any

import pytest

from litellm_toolcode.errors import SchemaError, ToolArgumentError, UnknownToolError
from litellm_toolcode.schema_code import Toolset, build_toolset

ALLOWED_IMPORTS = {"typing", "pydantic"}


def tool(name: str, parameters: Any = None, description: str = "", **extra: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "description": description, **extra}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def obj(
    properties: dict[str, Any], required: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [], **extra}


def one(parameters: Any, name: str = "f") -> Toolset:
    return build_toolset([tool(name, parameters)])


def assert_safe_source(source: str) -> ast.Module:
    """Compiles, imports only the header's modules, and defines only classes and functions."""
    compile(source, "<test>", "exec", dont_inherit=True)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pytest.fail(f"unexpected import: {ast.unparse(node)}")
        if isinstance(node, ast.ImportFrom):
            assert node.module in ALLOWED_IMPORTS, ast.unparse(node)
    for statement in tree.body:
        if isinstance(statement, ast.Expr):  # only `X.model_rebuild()` calls
            call = statement.value
            assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            assert call.func.attr == "model_rebuild" and not call.args
        else:
            assert isinstance(statement, ast.ImportFrom | ast.ClassDef | ast.FunctionDef)
    return tree


WEATHER = tool(
    "get_weather",
    obj(
        {
            "location": {"type": "string", "description": "City name, e.g. London"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        ["location"],
    ),
    "Get the current weather for a city.",
)


# the stub of WEATHER, as both the module and the prompt's view of it write it
WEATHER_STUB = (
    "def get_weather("
    'location: str, unit: Literal["celsius", "fahrenheit"] | None = None) -> Any:\n'
    '    """Get the current weather for a city.\n'
    "\n"
    "    Args:\n"
    "        location: City name, e.g. London\n"
    '    """\n'
    "    ...\n"
)


def test_weather_source_shape() -> None:
    toolset = build_toolset([WEATHER])
    assert toolset.source == (
        "from typing import Any, Literal\n"
        "from pydantic import BaseModel, ConfigDict\n"
        "\n\n"
        "class GetWeatherArgs(BaseModel):\n"
        '    model_config = ConfigDict(extra="forbid")\n'
        "    location: str\n"
        '    unit: Literal["celsius", "fahrenheit"] | None = None\n'
        "\n\n" + WEATHER_STUB
    )
    assert_safe_source(toolset.source)
    [spec] = toolset.tools
    assert (spec.name, spec.py_name, spec.model_name) == (
        "get_weather",
        "get_weather",
        "GetWeatherArgs",
    )
    assert list(toolset.signatures["get_weather"].parameters) == ["location", "unit"]
    assert toolset.model_names == {"GetWeatherArgs"}
    assert toolset.validate("get_weather", {"location": "Paris"}) == {"location": "Paris"}


# (parameters schema, valid arguments, expected JSON arguments)
VALID: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "string byte-exact",
        obj({"s": {"type": "string"}}),
        {"s": " a\u00e9\n\\ "},
        {"s": " a\u00e9\n\\ "},
    ),
    ("number keeps int", obj({"n": {"type": "number"}}), {"n": 18}, {"n": 18}),
    ("number keeps float", obj({"n": {"type": "number"}}), {"n": 18.5}, {"n": 18.5}),
    ("bfcl float type", obj({"n": {"type": "float"}}), {"n": 2}, {"n": 2}),
    ("negative int", obj({"i": {"type": "integer", "minimum": -5}}), {"i": -5}, {"i": -5}),
    ("boolean", obj({"b": {"type": "boolean"}}), {"b": False}, {"b": False}),
    ("null type", obj({"z": {"type": "null"}}), {"z": None}, {"z": None}),
    (
        "optional left out",
        obj({"a": {"type": "string"}, "b": {"type": "integer"}}, ["a"]),
        {"a": "x"},
        {"a": "x"},
    ),
    ("default not filled", obj({"u": {"type": "string", "default": "c"}}), {}, {}),
    (
        "explicit None for non-nullable optional is dropped",
        obj({"u": {"type": "string"}}),
        {"u": None},
        {},
    ),
    ("nullable keeps null", obj({"u": {"type": ["string", "null"]}}), {"u": None}, {"u": None}),
    (
        "anyOf null keeps null",
        obj({"u": {"anyOf": [{"type": "string"}, {"type": "null"}]}}),
        {"u": None},
        {"u": None},
    ),
    (
        "openapi nullable",
        obj({"u": {"type": "integer", "nullable": True}}),
        {"u": None},
        {"u": None},
    ),
    ("enum value", obj({"e": {"enum": ["a", "b", 3]}}), {"e": 3}, {"e": 3}),
    ("const", obj({"c": {"const": "fixed"}}), {"c": "fixed"}, {"c": "fixed"}),
    (
        "array",
        obj({"l": {"type": "array", "items": {"type": "integer"}}}),
        {"l": [1, 2]},
        {"l": [1, 2]},
    ),
    ("array no items", obj({"l": {"type": "array"}}), {"l": [1, "a", None]}, {"l": [1, "a", None]}),
    (
        "bfcl tuple",
        obj({"l": {"type": "tuple", "items": {"type": "string"}}}),
        {"l": ("a",)},
        {"l": ["a"]},
    ),
    (
        "prefixItems",
        obj({"p": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]}}),
        {"p": [1, "x"]},
        {"p": [1, "x"]},
    ),
    ("object no properties", obj({"o": {"type": "object"}}), {"o": {"k": [1]}}, {"o": {"k": [1]}}),
    ("bfcl dict", obj({"o": {"type": "dict"}}), {"o": {"k": 1}}, {"o": {"k": 1}}),
    ("bfcl any", obj({"o": {"type": "any"}}), {"o": [1]}, {"o": [1]}),
    (
        "map of ints",
        obj({"m": {"type": "object", "additionalProperties": {"type": "integer"}}}),
        {"m": {"a": 1}},
        {"m": {"a": 1}},
    ),
    (
        "nested object keyed either way",
        obj(
            {
                "g": {
                    "type": "object",
                    "properties": {"class": {"type": "string"}, "n": {"type": "integer"}},
                }
            }
        ),
        {"g": {"class_": "x", "n": 1}},
        {"g": {"class": "x", "n": 1}},
    ),
    (
        "nested optional left out",
        obj({"g": obj({"a": {"type": "string"}, "b": {"type": "string"}}, ["a"])}),
        {"g": {"a": "x"}},
        {"g": {"a": "x"}},
    ),
    (
        "extra allowed",
        obj({"a": {"type": "string"}}, additionalProperties=True),
        {"a": "x", "kwargs": {"more": 1}},
        {"a": "x", "more": 1},
    ),
    (
        "union",
        obj({"u": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}),
        {"u": "7"},
        {"u": "7"},
    ),
    (
        "allOf merged",
        obj(
            {
                "m": {
                    "allOf": [
                        obj({"a": {"type": "string"}}, ["a"]),
                        obj({"b": {"type": "integer"}}),
                    ]
                }
            }
        ),
        {"m": {"a": "x", "b": 2}},
        {"m": {"a": "x", "b": 2}},
    ),
    (
        "string constraints",
        obj({"s": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-z]+$"}}),
        {"s": "ab"},
        {"s": "ab"},
    ),
    (
        "format kept as str",
        obj({"d": {"type": "string", "format": "date"}}),
        {"d": "not a date"},
        {"d": "not a date"},
    ),
    (
        "look-around pattern (checked by the residual check)",
        obj({"s": {"type": "string", "pattern": "^(?!x)"}}),
        {"s": "yx"},
        {"s": "yx"},
    ),
    (
        "typed extra properties beside properties",
        obj({"a": {"type": "string"}}, additionalProperties={"type": "integer"}),
        {"a": "x", "kwargs": {"n": 1}},
        {"a": "x", "n": 1},
    ),
    (
        "nested typed extras",
        obj({"g": obj({"a": {"type": "string"}}, additionalProperties={"type": "integer"})}),
        {"g": {"a": "x", "n": 2}},
        {"g": {"a": "x", "n": 2}},
    ),
    (
        "True stays True beside an enum holding 1",
        obj({"e": {"anyOf": [{"enum": ["", 1]}, {"type": "boolean"}]}}),
        {"e": True},
        {"e": True},
    ),
    (
        "uniqueItems",
        obj({"a": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}}),
        {"a": [1, 2]},
        {"a": [1, 2]},
    ),
    (
        "argument sets (anyOf at the top)",
        {
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "anyOf": [
                {"properties": {"name": {"type": "string"}}, "required": ["name"]},
                {"required": ["id"]},
            ],
        },
        {"name": "x"},
        {"name": "x"},
    ),
    ("empty parameters", {}, {}, {}),
    (
        "recursive $ref",
        {
            "$ref": "#/$defs/Node",
            "$defs": {
                "Node": obj(
                    {
                        "v": {"type": "integer"},
                        "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    },
                    ["v"],
                )
            },
        },
        {"v": 1, "kids": [{"v": 2, "kids": []}]},
        {"v": 1, "kids": [{"v": 2, "kids": []}]},
    ),
]


@pytest.mark.parametrize(
    ("schema", "arguments", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID]
)
def test_valid_arguments(
    schema: dict[str, Any], arguments: dict[str, Any], expected: dict[str, Any]
) -> None:
    toolset = one(schema)
    assert_safe_source(toolset.source)
    out = toolset.validate("f", arguments)
    assert out == expected
    assert json.dumps(out) == json.dumps(expected)  # ints stay ints, key order as given


# (parameters schema, invalid arguments, client-side field path)
INVALID: list[tuple[str, dict[str, Any], dict[str, Any], str | None]] = [
    ("missing required", obj({"a": {"type": "string"}}, ["a"]), {}, "a"),
    ("str is not int", obj({"a": {"type": "integer"}}), {"a": "x"}, "a"),
    ("integer rejects fraction", obj({"a": {"type": "integer"}}), {"a": 3.5}, "a"),
    # strict: the model wrote a float where the stub says int (a repair round fixes it)
    ("integer rejects 3.0", obj({"a": {"type": "integer"}}), {"a": 3.0}, "a"),
    ("integer rejects True", obj({"a": {"type": "integer"}}), {"a": True}, "a"),
    ("number rejects False", obj({"a": {"type": "number"}}), {"a": False}, "a"),
    ("bfcl float rejects True", obj({"a": {"type": "float"}}), {"a": True}, "a"),
    ("boolean rejects 1", obj({"a": {"type": "boolean"}}), {"a": 1}, "a"),
    ("integer rejects numeric text", obj({"a": {"type": "integer"}}), {"a": "3"}, "a"),
    ("enum of numbers rejects True", obj({"a": {"enum": [1, 2]}}), {"a": True}, "a"),
    ("enum of bools rejects 1", obj({"a": {"enum": [True, "x"]}}), {"a": 1}, "a"),
    (
        "nested enum rejects False",
        obj({"g": {"type": "array", "items": obj({"class": {"const": 0}})}}),
        {"g": [{"class": False}]},
        "g[0].class",
    ),
    (
        "nested integer rejects True",
        obj({"g": obj({"n": {"type": "integer"}})}),
        {"g": {"n": True}},
        "g.n",
    ),
    (
        "list of numbers rejects True",
        obj({"a": {"type": "array", "items": {"type": "number"}}}),
        {"a": [1, True]},
        "a[1]",
    ),
    ("string rejects number", obj({"a": {"type": "string"}}), {"a": 5}, "a"),
    ("number rejects text", obj({"a": {"type": "number"}}), {"a": "x"}, "a"),
    ("enum", obj({"a": {"enum": ["x", "y"]}}), {"a": "z"}, "a"),
    ("extra argument", obj({"a": {"type": "string"}}), {"a": "x", "b": 1}, "b"),
    ("minimum", obj({"a": {"type": "integer", "minimum": 1}}), {"a": 0}, "a"),
    ("exclusiveMaximum", obj({"a": {"type": "number", "exclusiveMaximum": 1}}), {"a": 1}, "a"),
    ("multipleOf", obj({"a": {"type": "number", "multipleOf": 0.5}}), {"a": 0.3}, "a"),
    ("minLength", obj({"a": {"type": "string", "minLength": 2}}), {"a": "x"}, "a"),
    ("pattern", obj({"a": {"type": "string", "pattern": "^[0-9]+$"}}), {"a": "12a"}, "a"),
    ("maxItems", obj({"a": {"type": "array", "maxItems": 1}}), {"a": [1, 2]}, "a"),
    # what Pydantic cannot express, checked on the JSON by the residual check
    ("look-around pattern", obj({"a": {"type": "string", "pattern": "^(?!x)"}}), {"a": "xy"}, "a"),
    (
        "uniqueItems",
        obj({"a": {"type": "array", "uniqueItems": True}}),
        {"a": [1, 1]},
        "a",
    ),
    ("not", obj({"a": {"type": "string", "not": {"const": "x"}}}), {"a": "x"}, "a"),
    (
        "patternProperties",
        obj({"m": {"type": "object", "patternProperties": {"^n": {"type": "integer"}}}}),
        {"m": {"n1": "x"}},
        "m.n1",
    ),
    (
        "if/then",
        obj(
            {
                "g": {
                    "type": "object",
                    "properties": {"k": {"type": "string"}, "v": {"type": "integer"}},
                    "if": {"properties": {"k": {"const": "n"}}},
                    "then": {"required": ["v"]},
                }
            }
        ),
        {"g": {"k": "n"}},
        "g",
    ),
    (
        "typed extras beside properties",
        obj({"a": {"type": "string"}}, additionalProperties={"type": "integer"}),
        {"a": "x", "kwargs": {"n": "no"}},
        "n",
    ),
    (
        "minProperties",
        obj({"m": {"type": "object", "minProperties": 1}}),
        {"m": {}},
        "m",
    ),
    ("non-nullable required rejects None", obj({"a": {"type": "string"}}, ["a"]), {"a": None}, "a"),
    (
        "nested list item",
        obj({"guests": {"type": "array", "items": obj({"name": {"type": "string"}}, ["name"])}}),
        {"guests": [{"name": "a"}, {}]},
        "guests[1].name",
    ),
    (
        "nested alias name in path",
        obj({"g": obj({"class": {"type": "integer"}})}),
        {"g": {"class": "x"}},
        "g.class",
    ),
    (
        "extra nested property",
        obj({"g": obj({"a": {"type": "integer"}})}),
        {"g": {"b": 1}},
        "g.b",
    ),
    (
        "union arm tags hidden",
        obj(
            {
                "u": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "integer"}, obj({"x": {"type": "string"}})]},
                }
            }
        ),
        {"u": [1, "no"]},
        "u[1]",
    ),
]


@pytest.mark.parametrize(
    ("schema", "arguments", "field"), [v[1:] for v in INVALID], ids=[v[0] for v in INVALID]
)
def test_invalid_arguments(schema: dict[str, Any], arguments: dict[str, Any], field: str) -> None:
    toolset = one(schema, name="my-tool")
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate("my_tool", arguments)
    assert info.value.tool == "my-tool"
    assert info.value.field == field
    assert info.value.message.startswith(f"my_tool(): argument {field!r}: ")
    assert len(info.value.message) <= 300


def test_error_message_is_actionable() -> None:
    toolset = build_toolset([WEATHER])
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate("get_weather", {"location": "Paris", "unit": "kelvin"})
    assert info.value.message == (
        "get_weather(): argument 'unit': Input should be 'celsius' or 'fahrenheit'; got 'kelvin'"
    )
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate("get_weather", {"location": "x" * 1000, "unit": "k" * 1000})
    assert len(info.value.message) < 200
    with pytest.raises(ToolArgumentError, match="required argument is missing"):
        toolset.validate("get_weather", {})
    with pytest.raises(ToolArgumentError, match="Input should be a valid number; got 'x'"):
        one(obj({"n": {"type": "number"}})).validate("f", {"n": "x"})


def test_unknown_function() -> None:
    toolset = build_toolset([WEATHER])
    with pytest.raises(UnknownToolError, match="available functions: get_weather") as info:
        toolset.spec("get_wether")
    assert info.value.name == "get_wether"
    with pytest.raises(UnknownToolError):
        toolset.validate("nope", {})


# (client property name, stub parameter, model field): the parameter is the client's name
# wherever Python keeps it as written; the field behind it is renamed (and aliased) when
# Pydantic cannot hold the name.
PROPERTY_NAMES = [
    ("location", "location", "location"),
    ("class", "class_", "class_"),  # keywords cannot be parameters
    ("from", "from_", "from_"),
    ("import", "import_", "import_"),
    ("None", "None_", "None_"),
    ("match", "match", "match"),  # soft keywords are fine identifiers
    ("type", "type", "type"),  # builtins stay readable as parameters (what models write)
    ("id", "id", "id"),
    ("print", "print", "print"),
    ("list", "list", "list_"),  # the class body needs `list`: field renamed, aliased
    ("str", "str", "str_"),
    ("Any", "Any", "Any_"),
    ("Field", "Field", "Field_"),
    ("Literal", "Literal", "Literal_"),
    ("BaseModel", "BaseModel", "BaseModel_"),
    ("schema", "schema", "schema_"),  # a BaseModel attribute: only the field is renamed
    ("json", "json", "json_"),
    ("dict", "dict", "dict_"),
    ("copy", "copy", "copy_"),
    ("model_config", "model_config", "model_config_"),
    (
        "model_dump",
        "model_dump",
        "f_model_dump",
    ),  # pydantic protects model_dump*: field f_model_dump
    ("model_name", "model_name", "model_name_"),
    ("first-name", "first_name", "first_name"),
    ("first.name", "first_name_2", "first_name_2"),  # collides with the one above after mangling
    ("last name", "last_name", "last_name"),
    ("1st", "f_1st", "f_1st"),
    ("_private", "_private", "private"),  # private to pydantic; fine as a parameter
    ("__dunder__", "__dunder__", "dunder"),
    ("café", "café", "café"),  # non-ASCII identifiers are Python
    ("温度", "温度", "温度"),
    ("ﬁle", "file", "file"),  # not NFKC-stable: the parser reads `ﬁle=` as `file=`
    ("-", "field", "field"),  # no letters at all
]


def test_property_names_mangled_and_mapped_back() -> None:
    properties = {raw: {"type": "integer"} for raw, _, _ in PROPERTY_NAMES}
    toolset = one(obj(properties, [raw for raw, _, _ in PROPERTY_NAMES]))
    assert_safe_source(toolset.source)
    params = list(toolset.signatures["f"].parameters)
    assert params == [param for _, param, _ in PROPERTY_NAMES]
    assert all(p.isidentifier() for p in params)
    model = toolset._models["f"]
    fields = {info.alias or name: name for name, info in model.model_fields.items()}
    assert fields == {raw: field for raw, _, field in PROPERTY_NAMES}
    arguments = {param: i for i, (_, param, _) in enumerate(PROPERTY_NAMES)}
    out = toolset.validate("f", arguments)
    assert out == {raw: i for i, (raw, _, _) in enumerate(PROPERTY_NAMES)}
    call = toolset.render_call("f", {raw: 1 for raw, _, _ in PROPERTY_NAMES})
    assert call.startswith("f(location=1, class_=1, from_=1,")


def test_exact_name_wins_over_mangled_one() -> None:
    toolset = one(
        obj({"get-x": {"type": "string"}, "get_x": {"type": "string"}}, ["get-x", "get_x"])
    )
    assert list(toolset.signatures["f"].parameters) == ["get_x_2", "get_x"]
    assert toolset.validate("f", {"get_x_2": "a", "get_x": "b"}) == {"get-x": "a", "get_x": "b"}


# (client tool name, expected Python function name)
TOOL_NAMES = [
    ("get_weather", "get_weather"),
    ("get-weather", "get_weather_2"),
    ("weather.get", "weather_get"),
    ("class", "class_"),
    ("import", "import_"),
    ("print", "print_"),
    ("list", "list_"),
    ("open", "open_"),
    ("id", "id_"),
    ("type", "type_"),
    ("display", "display_"),
    ("Any", "Any_"),
    ("BaseModel", "BaseModel_"),
    ("1st", "t_1st"),
    ("_hidden", "hidden"),
    ("get weather now", "get_weather_now"),
    ("météo", "meteo"),
    ("天气", "tool"),
    ("x(); import os", "x_import_os"),
]


def test_tool_names_mangled_and_mapped_back() -> None:
    toolset = build_toolset([tool(raw, obj({"a": {"type": "integer"}})) for raw, _ in TOOL_NAMES])
    assert_safe_source(toolset.source)
    assert [(t.name, t.py_name) for t in toolset.tools] == TOOL_NAMES
    assert list(toolset.signatures) == [py for _, py in TOOL_NAMES]
    assert not toolset.model_names & set(toolset.signatures)
    for raw, py in TOOL_NAMES:
        assert toolset.spec(py).name == raw
        assert toolset.validate(py, {"a": 1}) == {"a": 1}
        assert toolset.render_call(raw, {"a": 1}) == f"{py}(a=1)"


def test_class_names_do_not_collide() -> None:
    tools = [
        tool("get_weather_args", obj({"x": {"type": "integer"}})),
        tool("GetWeatherArgs", obj({"x": {"type": "integer"}})),
        tool("get_weather", obj({"a": obj({"b": {"type": "string"}}, title="GetWeatherArgs")})),
        tool("a", obj({"x": obj({"y": {"type": "string"}}, title="get_weather")})),
    ]
    toolset = build_toolset(tools)
    assert_safe_source(toolset.source)
    names = [t.model_name for t in toolset.tools]
    assert len(set(names)) == 4
    assert not toolset.model_names & set(toolset.signatures)
    assert toolset.validate("get_weather", {"a": {"b": "x"}}) == {"a": {"b": "x"}}


def test_stub_orders_required_first_and_shows_defaults() -> None:
    schema = obj(
        {
            "opt": {"type": "integer", "default": 5},
            "req": {"type": "string"},
            "tags": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "default": ["a"],
            },
        },
        ["req"],
    )
    toolset = one(schema)
    signature = toolset.signatures["f"]
    assert list(signature.parameters) == ["req", "opt", "tags"]
    assert signature.parameters["opt"].default == 5
    assert signature.parameters["tags"].default == ["a"]
    assert 'def f(req: str, opt: int = 5, tags: list[str] = ["a"]) -> Any:' in toolset.source
    bound = signature.bind("x", 7)
    assert toolset.validate("f", bound.arguments) == {"req": "x", "opt": 7}


def test_nested_classes_and_descriptions() -> None:
    schema = obj(
        {
            "guests": {
                "type": "array",
                "description": "Who comes",
                "items": obj(
                    {
                        "name": {"type": "string", "description": "Full name"},
                        "when": {"type": "string", "format": "date"},
                    },
                    ["name"],
                    description="One guest.",
                ),
            }
        },
        ["guests"],
    )
    toolset = one(schema, name="book_table")
    source = toolset.source
    assert 'class BookTableGuests(BaseModel):\n    """One guest."""\n' in source
    assert 'name: str = Field(description="Full name")' in source
    assert 'when: str | None = Field(None, description="format: date")' in source
    assert "        guests: Who comes\n" in source
    assert toolset.model_names == {"BookTableArgs", "BookTableGuests"}


def test_cache_returns_same_object() -> None:
    a = [tool("t", obj({"x": {"type": "string"}, "y": {"type": "integer"}}, ["x"]), "d")]
    b = json.loads(json.dumps(a))
    b[0]["function"] = dict(reversed(list(b[0]["function"].items())))
    b[0]["function"]["parameters"] = dict(reversed(list(b[0]["function"]["parameters"].items())))
    first = build_toolset(a)
    assert build_toolset(a) is first
    assert build_toolset(b) is first
    assert first.key == build_toolset(b).key and len(first.key) == 64
    assert build_toolset([tool("t", obj({"x": {"type": "string"}}))]) is not first


# (tools, tool named in the error, JSON path)
SCHEMA_ERRORS: list[tuple[str, list[Any], str, str]] = [
    ("not a function tool", [{"type": "retrieval"}], "tools[0]", "type"),
    ("no function object", [{"type": "function"}], "tools[0]", "function"),
    ("missing name", [{"type": "function", "function": {}}], "tools[0]", "function.name"),
    ("empty name", [tool("")], "tools[0]", "function.name"),
    (
        "non-string name",
        [{"type": "function", "function": {"name": 3}}],
        "tools[0]",
        "function.name",
    ),
    ("duplicate", [tool("a"), tool("b"), tool("a")], "a", "function.name"),
    ("parameters not object", [tool("a", "nope")], "a", "parameters"),
    ("top-level string", [tool("a", {"type": "string"})], "a", "parameters.type"),
    ("empty argument sets", [tool("a", {"anyOf": []})], "a", "parameters.anyOf"),
    (
        "invalid keyword value",
        [tool("a", obj({"m": {"type": "object", "minProperties": -1}}))],
        "a",
        "parameters.properties.m.minProperties",
    ),
    (
        "unknown type",
        [tool("a", obj({"when": {"type": "datetime"}}))],
        "a",
        "parameters.properties.when.type",
    ),
    ("bad type value", [tool("a", obj({"w": {"type": 5}}))], "a", "parameters.properties.w.type"),
    (
        "remote ref",
        [tool("a", obj({"w": {"$ref": "http://x/y.json"}}))],
        "a",
        "parameters.properties.w.$ref",
    ),
    (
        "dangling ref",
        [tool("a", obj({"w": {"$ref": "#/$defs/Nope"}}))],
        "a",
        "parameters.properties.w.$ref",
    ),
    (
        "enum of objects",
        [tool("a", obj({"w": {"enum": [{"a": 1}]}}))],
        "a",
        "parameters.properties.w.enum",
    ),
    ("empty anyOf", [tool("a", obj({"w": {"anyOf": []}}))], "a", "parameters.properties.w.anyOf"),
    ("schema not object", [tool("a", obj({"w": 5}))], "a", "parameters.properties.w"),
    (
        "lone surrogate",
        [tool("a", obj({"w": {"enum": ["\ud800"]}}))],
        "a",
        "parameters.properties.w.enum",
    ),
    ("false schema", [tool("a", obj({"w": False}))], "a", "parameters.properties.w"),
]


@pytest.mark.parametrize(
    ("tools", "name", "path"), [v[1:] for v in SCHEMA_ERRORS], ids=[v[0] for v in SCHEMA_ERRORS]
)
def test_schema_errors_name_tool_and_path(tools: list[Any], name: str, path: str) -> None:
    with pytest.raises(SchemaError) as info:
        build_toolset(tools)
    assert (info.value.tool, info.value.path) == (name, path)
    assert info.value.status_code == 400


def test_too_deep_schema_is_refused() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        schema = {"type": "array", "items": schema}
    with pytest.raises(SchemaError, match="nested too deeply"):
        one(obj({"deep": schema}))


PAYLOAD = '"""; import os; os.system("touch /tmp/pwned"); """'
INJECTIONS = [
    tool("x(); import os", obj({"a": {"type": "string"}}), PAYLOAD),
    tool(
        "t",
        obj(
            {
                "a": {"type": "string", "description": PAYLOAD + "\\"},
                "b": {"enum": ['"); import os; ("', "'''", PAYLOAD]},
                "c": {"type": "string", "default": '"); __import__("os").system("x"); ("'},
                'd"); import os; ("': {"type": "integer"},
                "e": {"type": "string", "pattern": '"\nimport os\n#'},
                "f": obj({"g": {"type": "string"}}, title="X(BaseModel): pass\nimport os\nclass Y"),
                "h": {"const": "\\N{BULLET}\x00\u2028"},
            }
        ),
        "Desc '''\n\"\"\"\nimport os\n\\",
    ),
    tool(
        "u",
        obj({"a": {"type": "string", "description": 'Ends with quote"'}}),
        "Line \\n one\n  two",
    ),
]


def test_injection_has_no_effect() -> None:
    toolset = build_toolset(INJECTIONS)
    assert_safe_source(toolset.source)
    # every string literal in the source round-trips: the injected text is data
    strings = {
        node.value
        for node in ast.walk(ast.parse(toolset.source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert '"); import os; ("' in strings and PAYLOAD in strings
    assert '"); __import__("os").system("x"); ("' in strings
    assert '"\nimport os\n#' in strings
    assert "\\N{BULLET}\x00\u2028" in strings
    assert 'd"); import os; ("' in strings  # as an alias
    out = toolset.validate("t", {"b": PAYLOAD, "h": "\\N{BULLET}\x00\u2028", "d_import_os": 1})
    assert out == {"b": PAYLOAD, "h": "\\N{BULLET}\x00\u2028", 'd"); import os; ("': 1}
    assert toolset.tools[0].py_name == "x_import_os"


def test_docstrings_read_back_exactly() -> None:
    toolset = build_toolset(INJECTIONS)
    namespace: dict[str, Any] = {}
    exec(compile(toolset.source, "<t>", "exec", dont_inherit=True), namespace)
    assert str(inspect.getdoc(namespace["t"])).startswith("Desc '''\n\"\"\"\nimport os\n\\")
    assert str(inspect.getdoc(namespace["u"])).startswith("Line \\n one\n  two")


# Real-world shapes --------------------------------------------------------------------------

MCP_TOOL = tool(
    "create_issue",
    {
        "type": "object",
        "$defs": {
            "Label": {
                "type": "object",
                "description": "A label.",
                "properties": {
                    "name": {"type": "string"},
                    "color": {"type": "string", "pattern": "^[0-9a-f]{6}$"},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
            "Priority": {"type": "string", "enum": ["low", "high"]},
        },
        "properties": {
            "title": {"type": "string", "minLength": 1},
            "labels": {"type": "array", "items": {"$ref": "#/$defs/Label"}},
            "priority": {"$ref": "#/$defs/Priority"},
            "assignees": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
        "required": ["title"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    },
    "Create an issue.",
)

LANGCHAIN_TOOL = tool(
    "search",
    {
        "title": "search",
        "type": "object",
        "description": "Search the web.",
        "properties": {
            "query": {"title": "Query", "description": "What to look for", "type": "string"},
            "max_results": {
                "title": "Max Results",
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "default": None,
            },
            "since": {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["query"],
    },
    "Search the web.",
)

OPENAI_STRICT = tool(
    "get_weather",
    {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"},
            "units": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", None]},
        },
        "required": ["location", "units"],
        "additionalProperties": False,
    },
    "Retrieves current weather for the given location.",
    strict=True,
)


def test_real_world_shapes() -> None:
    toolset = build_toolset([MCP_TOOL, LANGCHAIN_TOOL, OPENAI_STRICT])
    assert_safe_source(toolset.source)
    assert "class Label(BaseModel):" in toolset.source
    assert 'priority: Literal["low", "high"] | None = None' in toolset.source
    assert toolset.validate(
        "create_issue",
        {"title": "Bug", "labels": [{"name": "x", "color": "00ff00"}], "priority": "high"},
    ) == {"title": "Bug", "labels": [{"name": "x", "color": "00ff00"}], "priority": "high"}
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate(
            "create_issue", {"title": "Bug", "labels": [{"name": "x", "color": "red"}]}
        )
    assert info.value.field == "labels[0].color"

    assert (
        "def search(query: str, max_results: int | None = None, since: str | None = None)"
        in toolset.source
    )
    assert toolset.validate("search", {"query": "q", "max_results": None}) == {
        "query": "q",
        "max_results": None,
    }
    assert toolset.validate("search", {"query": "q"}) == {"query": "q"}

    assert (
        'def get_weather(location: str, units: Literal["celsius", "fahrenheit"] | None) -> Any:'
        in toolset.source
    )
    assert toolset.validate("get_weather", {"location": "Bogotá", "units": None}) == {
        "location": "Bogotá",
        "units": None,
    }
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate("get_weather", {"location": "Bogotá"})
    assert info.value.field == "units"


def test_pydantic_v1_style_definitions_and_allof_ref() -> None:
    schema = {
        "type": "object",
        "definitions": {"Unit": {"title": "Unit", "enum": ["c", "f"], "type": "string"}},
        "properties": {
            "unit": {"allOf": [{"$ref": "#/definitions/Unit"}], "description": "Unit to use"}
        },
    }
    toolset = one(schema)
    assert 'unit: Literal["c", "f"] | None = None' in toolset.source
    assert toolset.validate("f", {"unit": "c"}) == {"unit": "c"}


def test_weather_prompt_source_drops_the_model_that_repeats_the_stub() -> None:
    toolset = build_toolset([WEATHER])
    assert toolset.prompt_source == "from typing import Any, Literal\n\n\n" + WEATHER_STUB
    assert "class GetWeatherArgs(BaseModel)" in toolset.source  # still validates the calls


# (parameters, argument models the prompt shows): a model is shown when it says more than
# its stub's signature, or when another block names it.
PROMPT_MODELS = [
    (obj({"a": {"type": "string"}}), []),
    (obj({"a": {"type": "integer", "minimum": 1}}), ["FArgs"]),
    (obj({"a": {"type": "array", "items": {"type": "string", "maxLength": 3}}}), ["FArgs"]),
    (obj({"a": {"type": "string"}}, additionalProperties={"type": "integer"}), ["FArgs"]),
    (obj({"n": obj({"a": {"type": "string"}})}), ["FN"]),
    (obj({"v": {"type": "integer"}, "child": {"$ref": "#"}}), ["Model"]),
    (obj({"user-id": {"type": "string"}}, ["user-id"]), []),  # an alias is the host's business
]


@pytest.mark.parametrize(("parameters", "shown"), PROMPT_MODELS)
def test_prompt_source_shows_the_models_that_say_more(
    parameters: dict[str, Any], shown: list[str]
) -> None:
    toolset = one(parameters)
    tree = assert_safe_source(toolset.prompt_source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes == shown
    # the view is the module minus whole blocks: what it shows is what the host executes, and
    # it runs on its own with the same stub
    for block in toolset.prompt_source.split("\n\n\n")[1:]:
        assert block.strip() in toolset.source
    alone: dict[str, Any] = {"__name__": "litellm_toolcode_tools"}  # as the host runs it
    exec(compile(toolset.prompt_source, "<view>", "exec", dont_inherit=True), alone)
    assert str(inspect.signature(alone["f"])) == str(toolset.signatures["f"])


def test_mutual_recursion() -> None:
    schema = {
        "$defs": {
            "A": obj({"b": {"$ref": "#/$defs/B"}}),
            "B": obj({"a": {"$ref": "#/$defs/A"}, "v": {"type": "integer"}}),
        },
        **obj({"root": {"$ref": "#/$defs/A"}}),
    }
    toolset = one(schema)
    assert_safe_source(toolset.source)
    assert ".model_rebuild()" in toolset.source
    args = {"root": {"b": {"a": {"b": {"v": 1}}}}}
    assert toolset.validate("f", args) == args


def test_no_parameters_and_extra_kwargs() -> None:
    toolset = build_toolset(
        [tool("ping"), tool("anything", {"type": "object", "additionalProperties": True})]
    )
    assert "def ping() -> Any:" in toolset.source
    assert toolset.validate("ping", {}) == {}
    with pytest.raises(ToolArgumentError):
        toolset.validate("ping", {"x": 1})
    assert "def anything(**kwargs: Any) -> Any:" in toolset.source
    bound = toolset.signatures["anything"].bind(a=1, b="x")
    assert toolset.validate("anything", bound.arguments) == {"a": 1, "b": "x"}


def test_render_call_round_trips() -> None:
    toolset = build_toolset(
        [tool("book-table", obj({"class": {"type": "integer"}, "who": {"type": "array"}}))]
    )
    line = toolset.render_call("book-table", {"class": 2, "who": [{"name": 'a "b"'}], "odd key": 1})
    assert line == 'book_table(class_=2, who=[{"name": \'a "b"\'}], **{"odd key": 1})'
    call = ast.parse(line).body[0].value  # type: ignore[attr-defined]
    assert isinstance(call, ast.Call)
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    assert toolset.validate("book_table", kwargs) == {"class": 2, "who": [{"name": 'a "b"'}]}


# (property schema, the field line the model reads in the arguments class)
FIELD_LINES = [
    ({"type": "string"}, "x: str | None = None"),
    ({"type": "string", "default": "a'b"}, 'x: str = "a\'b"'),
    (
        {"type": ["string", "integer"], "minLength": 1},
        "x: Annotated[str, Field(min_length=1)] | int | None = None",
    ),
    (
        {"type": "array", "items": {"type": "number", "minimum": 0}},
        "x: list[Annotated[int | float, Field(ge=0)]] | None = None",
    ),
    (
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}]},
        "x: tuple[int, bool] | None = None",
    ),
    (
        {"type": "object", "additionalProperties": {"type": "string"}},
        "x: dict[str, str] | None = None",
    ),
    ({"enum": ["a", 1, 2.5, True, None]}, 'x: Literal["a", 1, 2.5, True] | None = None'),
    (
        {"type": "string", "nullable": True, "maxLength": 3},
        "x: str | None = Field(None, max_length=3)",
    ),
    (
        {"type": "integer", "exclusiveMinimum": True, "minimum": 0},
        "x: int | None = Field(None, gt=0)",
    ),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}], "default": 3}, "x: str | int = 3"),
    ({"type": "number", "default": 1e400 * 0}, 'x: int | float = float("nan")'),
    ({"items": {"type": "string"}}, "x: list[str] | None = None"),
    ({}, "x: Any = None"),
]


@pytest.mark.parametrize(("schema", "line"), FIELD_LINES, ids=[line for _, line in FIELD_LINES])
def test_field_lines(schema: dict[str, Any], line: str) -> None:
    toolset = one(obj({"x": schema}))
    assert f"    {line}\n" in toolset.source
    assert_safe_source(toolset.source)


def test_nullable_ref_and_shared_defs_across_tools() -> None:
    defs = {"P": obj({"v": {"type": "integer"}}, ["v"])}
    a = tool("a", {"$defs": defs, **obj({"p": {"$ref": "#/$defs/P", "nullable": True}}, ["p"])})
    b = tool("b", {"$defs": defs, **obj({"p": {"$ref": "#/$defs/P"}}, ["p"])})
    toolset = build_toolset([a, b])
    # identical $defs across tools become one class
    assert "p: P | None\n" in toolset.source and "    p: P\n" in toolset.source
    assert toolset.source.count("class P(BaseModel)") == 1 and "P2" not in toolset.source
    assert toolset.validate("a", {"p": None}) == {"p": None}
    assert toolset.validate("b", {"p": {"v": 1}}) == {"p": {"v": 1}}
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate("b", {"p": None})
    assert info.value.field == "p"


def test_what_pydantic_cannot_express_is_shown_and_checked() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "mode": {"type": "string", "not": {"const": "off"}},
            "a": {"type": "integer"},
            "b": {"type": "integer"},
        },
        "dependentRequired": {"a": ["b"]},
    }
    toolset = one(schema)
    source = toolset.source
    assert_safe_source(source)
    assert 'tags: Also must satisfy: {"uniqueItems": true}' in source
    assert 'mode: Also must satisfy: {"not": {"const": "off"}}' in source
    assert '{"dependentRequired": {"a": ["b"]}}' in source  # in the stub's docstring
    assert toolset.validate("f", {"a": 1, "b": 2, "tags": ["x"]}) == {"a": 1, "b": 2, "tags": ["x"]}
    with pytest.raises(ToolArgumentError, match="'b' is a dependency of 'a'") as info:
        toolset.validate("f", {"a": 1})
    assert info.value.field is None and info.value.message.startswith("f(): arguments: ")


def test_argument_sets() -> None:
    schema = {
        "type": "object",
        "oneOf": [
            {"properties": {"city": {"type": "string"}}, "required": ["city"]},
            {
                "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                "required": ["lat", "lon"],
            },
        ],
    }
    toolset = one(schema, name="weather")
    assert "Give exactly one of these argument sets: (city) | (lat, lon)" in toolset.source
    signature = toolset.signatures["weather"]
    assert list(signature.parameters) == ["city", "lat", "lon"]
    assert all(p.default is None for p in signature.parameters.values())
    assert toolset.validate("weather", {"city": "Oslo"}) == {"city": "Oslo"}
    assert toolset.validate("weather", {"lat": 1, "lon": -2.5}) == {"lat": 1, "lon": -2.5}
    for wrong in ({}, {"lat": 1}, {"city": "Oslo", "lat": 1, "lon": 2}):
        with pytest.raises(ToolArgumentError):
            toolset.validate("weather", wrong)


def test_typed_extra_properties_in_source() -> None:
    toolset = one(
        obj(
            {"a": {"type": "string"}, "g": obj({}, additionalProperties={"type": "integer"})},
            additionalProperties={"type": "integer"},
        )
    )
    assert "    __pydantic_extra__: dict[str, int]\n" in toolset.source
    assert "**kwargs: int) -> Any:" in toolset.source
    assert "g: dict[str, int] | None = None" in toolset.source
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate("f", {"kwargs": {"n": True}})
    assert info.value.field == "n"
