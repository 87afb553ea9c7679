"""The latency bench's upstream: a "[split]" native call streams in as many upstream deltas as
the same call written as Python (its code-mode answer), and reassembles to the one-delta call;
and the throughput rounds rotate who goes first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench import latency, upstream_server
from tests.fake_upstream import FakeUpstream


@pytest.fixture(scope="module")
def bench_upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream(default=upstream_server.respond).start()
    yield server
    server.stop()


def deltas(server: FakeUpstream, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-empty deltas of one streamed answer, as the upstream sent them."""
    out = []
    with httpx.stream("POST", f"{server.url}/chat/completions", json=payload) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    delta = {k: v for k, v in choice["delta"].items() if k != "role"}
                    if delta.get("content") or delta.get("tool_calls"):
                        out.append(delta)
    return out


def arguments(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
    calls: dict[int, list[str]] = {}
    for delta in found:
        for call in delta["tool_calls"]:
            piece = calls.setdefault(call["index"], ["", ""])
            piece[0] += call.get("function", {}).get("name") or ""
            piece[1] += call.get("function", {}).get("arguments") or ""
    return [(name, args) for name, args in calls.values()]


@pytest.mark.parametrize("n_tools", [1, 20])
def test_a_split_native_call_is_as_many_deltas_as_the_code_answer(
    bench_upstream: FakeUpstream, n_tools: int
) -> None:
    native = latency.body(n_tools, True)
    split = latency.body(n_tools, True, tags=" [split]")
    code = {k: v for k, v in split.items() if k != "tools"}  # what the plugin sends
    code_deltas = deltas(bench_upstream, code)
    split_deltas = deltas(bench_upstream, split)
    one = deltas(bench_upstream, native)
    assert len(one) == 1 and "tool_calls" in one[0]
    assert all("content" in d for d in code_deltas)
    assert all("tool_calls" in d for d in split_deltas)
    assert len(split_deltas) == len(code_deltas) == upstream_server.code_deltas() > 1
    assert arguments(split_deltas) == arguments(one) == [("get_weather", '{"location": "Paris"}')]


@pytest.mark.parametrize(
    ("names", "rounds", "clients", "expected"),
    [
        (["a", "b"], 1, [1], [(0, 1, "a"), (0, 1, "b")]),
        (
            ["a", "b", "c"],
            3,
            [1],
            [
                *[(0, 1, "a"), (0, 1, "b"), (0, 1, "c")],
                *[(1, 1, "b"), (1, 1, "c"), (1, 1, "a")],
                *[(2, 1, "c"), (2, 1, "a"), (2, 1, "b")],
            ],
        ),
        (
            ["a", "b"],
            2,
            [1, 8],
            [
                *[(0, 1, "a"), (0, 1, "b"), (0, 8, "a"), (0, 8, "b")],
                *[(1, 1, "b"), (1, 1, "a"), (1, 8, "b"), (1, 8, "a")],
            ],
        ),
    ],
)
def test_throughput_rotation_measures_each_once_per_round_and_moves_who_goes_first(
    names: list[str], rounds: int, clients: list[int], expected: list[tuple[int, int, str]]
) -> None:
    assert list(latency.rotation(names, rounds, clients)) == expected
