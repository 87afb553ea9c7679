"""Names as the client spells them, through the real proxy, streaming and not: a call written
with the client's own tool and argument names comes back as the client's exact names; an
ambiguous name gets a repair round, then a model_error naming both meanings."""

from __future__ import annotations

from tests.conftest import Case
from tests.test_names import RANGE, SUM, SUM_ARGS, TOOLS
from tests.test_proxy import code, expect_model_error

CLIENT_SPELLED = (
    'sum(**{"from": "a"}, _from="b", list=[1, 2], año_vehiculo=2019, model_3d=True)',
    "math.factorial(n=5)",
)


def test_client_spellings_come_back_as_client_names(case: Case) -> None:
    case.script("Both at once.\n" + code("# tool: sum_, math_factorial", *CLIENT_SPELLED))
    result = case.ask(messages=[case.user("sum and factorial")], tools=TOOLS)
    assert result.finish_reason == "tool_calls"
    assert result.calls() == [("sum", SUM_ARGS), ("math.factorial", {"n": 5})]
    assert result.content == "Both at once."
    prompt = case.seen[0]["messages"][0]["content"]
    assert "def sum_(" in prompt and "año_vehiculo" in prompt and "_from: str" in prompt


def test_bare_client_spelled_calls_are_found(case: Case) -> None:
    case.script("\n".join(CLIENT_SPELLED))  # no fence: found by the client's names
    result = case.ask(messages=[case.user("sum and factorial")], tools=TOOLS)
    assert result.calls() == [("sum", SUM_ARGS), ("math.factorial", {"n": 5})]
    assert not result.content


def test_client_spellings_in_code_that_runs(case: Case) -> None:
    case.script(
        code(
            "# tool: sum_",
            "for year in [2019, 2020]:",
            '    sum(**{"from": "a"}, _from="b", list=[1, 2], año_vehiculo=year, model_3d=True)',
        )
    )
    result = case.ask(model="runner", messages=[case.user("two years")], tools=[SUM])
    assert result.calls() == [
        ("sum", {**SUM_ARGS, "año_vehiculo": 2019}),
        ("sum", {**SUM_ARGS, "año_vehiculo": 2020}),
    ]


def test_an_ambiguous_name_is_repaired_then_refused(case: Case) -> None:
    wrong = code("# tool: get_range", "get_range(from_=1)")
    case.script(wrong, wrong)
    message = expect_model_error(
        case,
        "ambiguous",
        "'from' (write from__2)",
        "'from_' (write from__3)",
        messages=[case.user("a range")],
        tools=[RANGE],
    )
    assert "get_range" in message


def test_an_ambiguous_name_repaired_by_the_model(case: Case) -> None:
    case.script(
        code("# tool: get_range", "get_range(from_=1)"),
        code("# tool: get_range", "get_range(from__2=1)"),
    )
    result = case.ask(messages=[case.user("a range")], tools=[RANGE])
    assert result.calls() == [("get_range", {"from": 1})]
    assert "ambiguous" in str(case.seen[1]["messages"])
