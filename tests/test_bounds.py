"""Bounds on client-controlled work (bounds.py): hostile schemas and values end quickly with a
clear error, never a hang and never a guess. Pure: Toolset and answer.interpret directly."""

from __future__ import annotations

import json
import os
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from litellm_toolcode.answer import interpret
from litellm_toolcode.bounds import MAX_CALLS_PER_ANSWER, OFF_LOOP_BUDGET_SECONDS, check_budget
from litellm_toolcode.errors import (
    LimitError,
    PatternTimeoutError,
    SchemaError,
    ToolArgumentError,
    ToolcodeError,
)
from litellm_toolcode.schema_code import build_toolset

EVIL = "^(?!b)(a|a)*$"  # look-around: not for pydantic's Rust engine; exponential in `re`


def one(properties: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    params = {"type": "object", "properties": properties, "required": list(properties), **extra}
    return [{"type": "function", "function": {"name": "t", "parameters": params}}]


# --- patterns -------------------------------------------------------------------------------


def test_a_look_around_pattern_that_runs_away_is_a_clear_error() -> None:
    toolset = build_toolset(one({"s": {"type": "string", "pattern": EVIL}}))
    with pytest.raises(PatternTimeoutError) as info:
        toolset.validate("t", {"s": "a" * 29 + "!"})  # ~60 s with Python's re
    assert info.value.tool == "t" and info.value.field == "s"
    assert EVIL in info.value.message and info.value.bound == "check_time"


@pytest.mark.parametrize(
    ("value", "ok"),
    [("aaa", True), ("", True), ("baa", False), ("aab", False)],
)
def test_a_look_around_pattern_still_decides_ordinary_values(value: str, ok: bool) -> None:
    toolset = build_toolset(one({"s": {"type": "string", "pattern": EVIL}}))
    if ok:
        assert toolset.validate("t", {"s": value}) == {"s": value}
    else:
        with pytest.raises(ToolArgumentError) as info:
            toolset.validate("t", {"s": value})
        assert not isinstance(info.value, PatternTimeoutError)
        assert "does not match" in info.value.message


def test_a_pattern_property_key_that_runs_away_names_the_key() -> None:
    key = "a" * 29 + "!"
    toolset = build_toolset(
        one({"m": {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}}})
    )
    with pytest.raises(PatternTimeoutError) as info:
        toolset.validate("t", {"m": {key: 1}})
    assert info.value.field == f'm["{key}"]'


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"x_1": 1, "x_2": 2}, None),
        ({"x_1": 1, "y": 2}, "'y' does not match any of the regexes"),
        ({"x_1": "one"}, "is not of type 'integer'"),
    ],
)
def test_pattern_properties_with_closed_extras(value: dict[str, Any], error: str | None) -> None:
    schema = {
        "type": "object",
        "patternProperties": {"^x_[0-9]+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    toolset = build_toolset(one({"m": schema}))
    if error is None:
        assert toolset.validate("t", {"m": value}) == {"m": value}
    else:
        with pytest.raises(ToolArgumentError, match=error):
            toolset.validate("t", {"m": value})


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "string", "pattern": "(?<=a"}, "is not a 'regex'"),
        (
            {
                "type": "object",
                "patternProperties": {"^a": {"type": "string"}},
                "unevaluatedProperties": False,
            },
            "unevaluatedProperties together with patternProperties",
        ),
    ],
)
def test_patterns_the_bounded_check_cannot_take_are_refused(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(SchemaError, match=message):
        build_toolset(one({"x": schema}))


# --- uniqueItems in linear time, with JSON Schema's equality ----------------------------------


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, 2, 3], True),
        ([1, 1.0], False),  # the same number
        ([True, 1], True),  # a boolean is not a number
        ([False, 0, None, ""], True),
        (["1", 1], True),
        ([{"a": 1, "b": 2}, {"b": 2, "a": 1}], False),  # key order does not matter
        ([[1, [2]], [1, [2.0]]], False),
        ([[1, 2], [2, 1]], True),
        ([{"a": [True]}, {"a": [1]}], True),
    ],
)
def test_unique_items(items: list[Any], unique: bool) -> None:
    toolset = build_toolset(one({"xs": {"type": "array", "uniqueItems": True}}))
    if unique:
        assert toolset.validate("t", {"xs": items}) == {"xs": items}
    else:
        with pytest.raises(ToolArgumentError, match="non-unique"):
            toolset.validate("t", {"xs": items})


def test_a_large_unique_array_is_decided() -> None:
    toolset = build_toolset(
        one({"xs": {"type": "array", "uniqueItems": True, "items": {"type": "object"}}})
    )
    items = [{"a": [i, {"b": i}]} for i in range(5_000)]
    with check_budget(OFF_LOOP_BUDGET_SECONDS):  # what the reader of so large an answer gives
        assert toolset.validate("t", {"xs": items}) == {"xs": items}
        with pytest.raises(ToolArgumentError, match="item 5000 repeats"):
            toolset.validate("t", {"xs": [*items, {"a": [0, {"b": 0.0}]}]})


# --- schemas whose code or checks multiply ----------------------------------------------------


def nested_unions(depth: int, arms: int = 4, key: str = "anyOf") -> list[dict[str, Any]]:
    """Each level's arms reach the next level through one $ref: arms ** depth when written."""
    defs: dict[str, Any] = {}
    for level in range(depth):
        inner = {"$ref": f"#/$defs/L{level + 1}"} if level + 1 < depth else {"type": "integer"}
        defs[f"L{level}"] = {
            key: [{"type": "array", "items": inner, "maxItems": k + 1} for k in range(arms)]
        }
    return one({"x": {"$ref": "#/$defs/L0"}}, **{"$defs": defs})


@pytest.mark.parametrize("key", ["anyOf", "oneOf"])
def test_unions_that_multiply_through_refs_are_refused_not_expanded(key: str) -> None:
    with pytest.raises(SchemaError, match="more than 50000 type expressions"):
        build_toolset(nested_unions(12, key=key))


@pytest.mark.parametrize("key", ["anyOf", "oneOf"])
def test_small_nested_unions_still_convert_and_check(key: str) -> None:
    toolset = build_toolset(nested_unions(4, key=key))
    good: Any = 1
    bad: Any = "s"
    for _ in range(4):
        good, bad = [good], [bad]
    with pytest.raises(ToolArgumentError):
        toolset.validate("t", {"x": bad})
    if key == "anyOf":
        assert toolset.validate("t", {"x": good}) == {"x": good}
    else:  # every arm with room for one item takes it: not exactly one
        with pytest.raises(ToolArgumentError, match=r"not valid under any|valid under each"):
            toolset.validate("t", {"x": good})


def test_a_union_of_many_models_gives_a_short_error() -> None:
    arms = [
        {
            "type": "object",
            "properties": {f"k{i}": {"type": "integer"}},
            "required": [f"k{i}"],
            "additionalProperties": False,
        }
        for i in range(1_000)
    ]
    toolset = build_toolset(one({"x": {"anyOf": arms}}))
    with pytest.raises(ToolArgumentError) as info:
        toolset.validate("t", {"x": {"zz": 1}})
    assert info.value.field == "x.k0" and len(info.value.message) <= 300


def test_a_ref_the_models_skip_must_still_point_somewhere() -> None:
    schema = {"type": "array", "not": {"items": {"$ref": "#/$defs/Gone"}}}
    with pytest.raises(SchemaError, match="points to nothing"):
        build_toolset(one({"x": schema}))


@pytest.mark.parametrize(
    "schema", [{"type": "number", "multipleOf": 0.01}, {"type": "integer", "not": {"const": 5}}]
)
def test_huge_integers_are_an_argument_error(schema: dict[str, Any]) -> None:
    toolset = build_toolset(one({"x": schema}))
    with pytest.raises(ToolArgumentError):
        toolset.validate("t", {"x": 10**5000})  # past Python's int-to-text limit


def test_more_calls_than_an_answer_may_make() -> None:
    toolset = build_toolset(one({"s": {"type": "string"}}))
    lines = "\n".join("t(s='x')" for _ in range(MAX_CALLS_PER_ANSWER + 1))
    with pytest.raises(LimitError) as info:
        interpret(f"```python\n{lines}\n```", toolset)
    assert info.value.bound == "answer_calls"


# --- property: generated hostile schemas and values end in time --------------------------------

PATTERNS = [EVIL, "^(a+)+$", "^(a|aa)+$", "(?=a)(a*)*b", "^[a-z]+$", "(x+x+)+y", "^(?:a|a?)+$"]
scalar = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(alphabet="ab!x", max_size=40),
    st.just("a" * 40 + "!"),
)
values = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text("abx", max_size=5), inner),
    max_leaves=200,
)


@st.composite
def hostile_schemas(draw: st.DrawFn, depth: int = 3) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["string", "array", "object", "number", "anyOf", "oneOf", "not", "ref"]
            if depth > 0
            else ["string", "number"]
        )
    )
    if kind == "string":
        return {"type": "string", "pattern": draw(st.sampled_from(PATTERNS))}
    if kind == "number":
        return {"type": "number", "multipleOf": draw(st.sampled_from([0.01, 1e-7, 3, 0.1]))}
    if kind == "array":
        return {
            "type": "array",
            "uniqueItems": True,
            "items": draw(hostile_schemas(depth - 1)),
        }
    if kind == "object":
        return {
            "type": "object",
            "patternProperties": {
                draw(st.sampled_from(PATTERNS)): draw(hostile_schemas(depth - 1))
            },
            "propertyNames": {"pattern": draw(st.sampled_from(PATTERNS))},
        }
    if kind == "not":
        return {"not": draw(hostile_schemas(depth - 1))}
    if kind == "ref":  # the test puts nested_unions' $defs at the root
        return {"$ref": f"#/$defs/L{draw(st.integers(0, 8))}"}
    arms = draw(st.lists(hostile_schemas(depth - 1), min_size=2, max_size=40))
    return {kind: arms}


@settings(
    max_examples=int(os.environ.get("TOOLCODE_BOUNDS_EXAMPLES", "60")),
    deadline=3_000,  # the property: every example ends within its bound (budgets are < 2.5 s)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schema=hostile_schemas(), value=values)
def test_generated_hostile_schemas_and_values_end_in_time(schema: Any, value: Any) -> None:
    defs = nested_unions(9)[0]["function"]["parameters"]["$defs"]
    try:
        toolset = build_toolset(one({"x": schema}, **{"$defs": defs}))
    except SchemaError:
        return  # refused with a clear error: also an end
    try:
        result = toolset.validate("t", {"x": value})
    except ToolcodeError:
        return
    assert json.loads(json.dumps(result)) == result
