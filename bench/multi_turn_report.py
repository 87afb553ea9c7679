"""The multi-turn benchmark's report: the summary table and one line per case."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["head_to_head", "per_case", "report", "table"]


class _Case(Protocol):
    id: str


def report(
    *,
    date: str,
    category: str,
    sampled: int,
    seed: int,
    header: str,
    rows: list[dict[str, Any]],
    modes: list[str],
    cases: Sequence[_Case],
) -> str:
    """The markdown report: the table over the cases every mode finished, then every case."""
    finished = [{r["id"] for r in rows if r["mode"] == m} for m in modes]
    common = set.intersection(*finished) if finished else set()
    return (
        f"# Multi-turn accuracy, {date}\n\n"
        f"BFCL v4 `{category}` (bfcl-eval 2026.3.23), {len(common)} of {sampled} sampled "
        f"cases (seed {seed}) finished in every mode, scored with BFCL's multi-turn checker. "
        f"{header}\n\n"
        + table([r for r in rows if r["id"] in common], modes)
        + (
            "\n\nThe first mode against each other one, on the cases both finished (BFCL scores "
            "a case whole; turns right are counted from the first, before one its checker "
            "refuses):\n\n" + head_to_head(rows, modes)
            if len(modes) > 1
            else ""
        )
        + "\n\nEvery finished case, in any mode (passed, or BFCL's error type; model "
        "calls; turns right/turns: those BFCL's checker accepts from the first, before one it "
        "refuses):\n\n" + per_case(rows, modes, cases) + "\n"
    )


def table(rows: list[dict[str, Any]], modes: list[str]) -> str:
    lines = ["| | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]

    def cells(fn: Callable[[list[dict[str, Any]]], str]) -> str:
        return " | ".join(fn([r for r in rows if r["mode"] == m]) for m in modes)

    def passed(mine: list[dict[str, Any]]) -> str:
        n = sum(r["passed"] for r in mine)
        return f"{n}/{len(mine)} ({100 * n / len(mine):.0f}%)" if mine else "-"

    def mean(key: str) -> Callable[[list[dict[str, Any]]], str]:
        return lambda mine: _mean(mine, key)

    lines.append(f"| **passed** | {cells(passed)} |")
    lines.append(f"| mean turns right, from the first | {cells(mean('turns_right'))} |")
    lines.append(f"| mean turns/case | {cells(mean('turns'))} |")
    lines.append(f"| mean s/case | {cells(mean('seconds'))} |")
    lines.append(f"| mean model calls/case | {cells(mean('steps'))} |")
    lines.append(f"| mean output tokens/case | {cells(mean('completion_tokens'))} |")
    lines.append(
        f"| HTTP/unreadable errors | {cells(lambda m: str(sum(r['errors'] for r in m)))} |"
    )
    return "\n".join(lines)


def head_to_head(rows: list[dict[str, Any]], modes: list[str]) -> str:
    """The first mode against each other one, each pair on the cases both of them finished, so a
    baseline that ran fewer cases is compared on its own cases, not on the first mode's mean."""
    first, *others = modes
    by_mode = {m: {r["id"]: r for r in rows if r["mode"] == m} for m in modes}
    lines = [
        f"| {first} against | cases | turns | turns right: {first} | turns right: other "
        f"| passed: {first} | passed: other | s/case: {first} / other "
        f"| model calls/case: {first} / other |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def means(key: str, mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
        return f"{_mean(mine, key)} / {_mean(theirs, key)}" if mine else "-"

    for other in others:
        both = sorted(by_mode[first].keys() & by_mode[other].keys())
        mine = [by_mode[first][c] for c in both]
        theirs = [by_mode[other][c] for c in both]
        lines.append(
            f"| {other} | {len(both)} | {sum(r['turns'] for r in mine)} "
            f"| {sum(r['turns_right'] for r in mine)} | {sum(r['turns_right'] for r in theirs)} "
            f"| {sum(r['passed'] for r in mine)} | {sum(r['passed'] for r in theirs)} "
            f"| {means('seconds', mine, theirs)} | {means('steps', mine, theirs)} |"
        )
    return "\n".join(lines)


def _mean(rows: list[dict[str, Any]], key: str) -> str:
    return f"{sum(r[key] for r in rows) / len(rows):.1f}" if rows else "-"


def per_case(rows: list[dict[str, Any]], modes: list[str], cases: Sequence[_Case]) -> str:
    """One line per case finished in any mode: its verdict in each mode ("-": not run)."""
    found = {(r["mode"], r["id"]): r for r in rows}
    lines = ["| case | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for case in cases:
        cells = []
        for mode in modes:
            row = found.get((mode, case.id))
            if row is None:
                cells.append("-")
                continue
            why = str(row["why"]).split(":")[1] if ":" in str(row["why"]) else row["why"]
            verdict = "pass" if row["passed"] else why or "fail"
            cells.append(f"{verdict} ({row['steps']}; {row['turns_right']}/{row['turns']})")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {case.id} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
