"""The multi-turn report: the table over cases every mode finished, the per-case lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bench import multi_turn_report


@dataclass(frozen=True)
class _Case:
    id: str


CASES = [_Case("a"), _Case("b"), _Case("c")]


def _row(mode: str, case: str, passed: bool, right: int, seconds: float) -> dict[str, Any]:
    why = "" if passed else "multi_turn:empty_turn_model_response: Model response list is empty"
    return {
        "mode": mode,
        "id": case,
        "passed": passed,
        "why": why,
        "turns": 4,
        "turns_right": right,
        "steps": 6,
        "errors": 1 if mode == "json" else 0,
        "seconds": seconds,
        "completion_tokens": 100,
    }


ROWS = [
    _row("code", "a", True, 4, 10.0),
    _row("code", "b", False, 1, 30.0),
    _row("code", "c", False, 0, 50.0),  # json never finished c: left out of the table
    _row("json", "a", False, 2, 100.0),
    _row("json", "b", False, 0, 300.0),
]


@pytest.mark.parametrize(
    ("label", "cells"),
    [
        ("**passed**", "1/2 (50%) | 0/2 (0%)"),
        ("mean turns right, from the first", "2.5 | 1.0"),
        ("mean s/case", "20.0 | 200.0"),
        ("HTTP/unreadable errors", "0 | 2"),
    ],
)
def test_the_table_counts_only_cases_every_mode_finished(label: str, cells: str) -> None:
    text = multi_turn_report.report(
        date="2026-12-02",
        category="multi_turn_base",
        sampled=3,
        seed=7,
        header="Header line.",
        rows=ROWS,
        modes=["code", "json"],
        cases=CASES,
    )
    assert "2 of 3 sampled cases (seed 7) finished in every mode" in text
    assert f"| {label} | {cells} |" in text


@pytest.mark.parametrize(
    ("case", "line"),
    [
        ("a", "| a | pass (6; 4/4) | empty_turn_model_response (6; 2/4) |"),
        ("c", "| c | empty_turn_model_response (6; 0/4) | - |"),
    ],
)
def test_every_finished_case_has_a_line_and_unrun_modes_a_dash(case: str, line: str) -> None:
    lines = multi_turn_report.per_case(ROWS, ["code", "json"], CASES).splitlines()
    assert line in lines


def test_a_case_no_mode_finished_has_no_line() -> None:
    text = multi_turn_report.per_case(ROWS, ["code", "json"], [*CASES, _Case("d")])
    assert "| d |" not in text


def test_each_baseline_is_compared_on_the_cases_it_finished_with_the_first_mode() -> None:
    rows = [*ROWS, _row("native", "c", False, 3, 9.0)]  # native finished only c
    lines = multi_turn_report.head_to_head(rows, ["code", "json", "native"]).splitlines()
    assert lines[2:] == [
        "| json | 2 | 8 | 5 | 2 | 1 | 0 | 20.0 / 200.0 | 6.0 / 6.0 |",
        "| native | 1 | 4 | 0 | 3 | 0 | 0 | 50.0 / 9.0 | 6.0 / 6.0 |",
    ]


def test_a_baseline_with_no_case_in_common_gets_dashes() -> None:
    rows = [*ROWS, _row("native", "z", False, 3, 9.0)]
    lines = multi_turn_report.head_to_head(rows, ["code", "native"]).splitlines()
    assert lines[2:] == ["| native | 0 | 0 | 0 | 0 | 0 | 0 | - | - |"]
