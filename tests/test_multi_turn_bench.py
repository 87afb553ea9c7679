"""The multi-turn benchmark's agent loop, through the real proxy, scored by BFCL's own checker.

The fake upstream plays each turn's ground-truth calls as Python (then a short prose answer to
end the turn): the harness must turn them into ``tool_calls`` through the plugin, run them on
BFCL's classes, feed the results back as ``tool`` messages and get BFCL's checker to agree.
A control plays the same answers with one call left out, which the checker must refuse, so the
scoring is not vacuous.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bench import multi_turn
from tests.conftest import MASTER_KEY, Proxy, proxy_config, start_proxy, stop_proxy
from tests.fake_upstream import FakeUpstream, Scripted

CASES = multi_turn.load_cases(20, 20261201)[:3]
_runs = itertools.count()


class GroundTruthPlayer:
    """Answers a turn's question with that turn's ground-truth calls, anything else with prose."""

    def __init__(self) -> None:
        self.case: multi_turn.MultiCase | None = None
        self.drop_last_call = False
        self.asked = 0
        self.on_ask: Callable[[], None] = lambda: None

    def __call__(self, body: dict[str, Any]) -> Scripted:
        assert self.case is not None
        self.asked += 1
        self.on_ask()
        last = str(body["messages"][-1].get("content"))
        for turn, messages in enumerate(self.case.turns):
            if any(m["content"] == last for m in messages):
                calls = list(self.case.ground_truth[turn])
                if self.drop_last_call and len(calls) > 1:
                    calls.pop()
                name = calls[0].split("(")[0]
                code = "\n".join(calls)
                return Scripted(content=f"```python\n# tool: {name}\n{code}\n```")
        return Scripted(content="Done.")


@pytest.fixture(scope="module")
def player() -> GroundTruthPlayer:
    return GroundTruthPlayer()


@pytest.fixture(scope="module")
def bench_proxy(
    player: GroundTruthPlayer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    upstream = FakeUpstream(default=player).start()
    running = start_proxy(proxy_config(upstream.url), tmp_path_factory.mktemp("multi-turn"))
    yield running
    stop_proxy(running)
    upstream.stop()


def _run(proxy: Proxy, case: multi_turn.MultiCase) -> tuple[list[list[list[str]]], bool, str]:
    instance = f"test_{next(_runs)}"  # BFCL keeps class state by this name: one per run
    with httpx.Client(timeout=60) as client:
        decoded, steps = multi_turn.run_case(
            client, "code", f"{proxy.url}/v1", case, instance, key=MASTER_KEY
        )
    assert not [s.error for s in steps if s.error]
    passed, why = multi_turn.score(case, decoded, f"{instance}_score")
    return decoded, passed, why


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ground_truth_through_the_proxy_passes_bfcl(
    bench_proxy: Proxy, player: GroundTruthPlayer, case: multi_turn.MultiCase
) -> None:
    player.case, player.drop_last_call = case, False
    decoded, passed, why = _run(bench_proxy, case)
    assert passed, why
    # One step with calls per turn: the turn's ground truth, each call read back as it was sent.
    assert [len(turn) for turn in decoded] == [1] * len(case.turns)
    assert [len(turn[0]) for turn in decoded] == [len(gt) for gt in case.ground_truth]


def test_a_missing_call_fails_bfcl(bench_proxy: Proxy, player: GroundTruthPlayer) -> None:
    case = next(c for c in CASES if any(len(gt) > 1 for gt in c.ground_truth))
    player.case, player.drop_last_call = case, True
    _, passed, why = _run(bench_proxy, case)
    assert not passed and why


def test_call_string_is_what_bfcl_reads() -> None:
    assert multi_turn.call_string("mv", {"source": "a.txt", "destination": "b"}) == (
        "mv(source='a.txt',destination='b')"
    )
    assert multi_turn.call_string("ls", {}) == "ls()"
    assert multi_turn.call_string("add", {"a": -1.5, "b": [1, {"x": None}]}) == (
        "add(a=-1.5,b=[1, {'x': None}])"
    )


@pytest.mark.parametrize("mode", ["code", "code+gbnf", "json", "native"])
def test_every_mode_runs_bfcl_classes_for_real(mode: str) -> None:
    # BFCL reads the instance name as Python: `bench_code+gbnf_...` made each call a NameError
    instance = multi_turn.instance_name(mode, "2026-12-01-seed20261201")
    assert instance.isidentifier()
    [result] = multi_turn.execute(CASES[0], instance, ["pwd()"])
    assert "current_working_directory" in result, result


def test_the_sample_is_fixed_and_the_seeds_differ() -> None:
    again = [c.id for c in multi_turn.load_cases(20, 20261201)]
    other = [c.id for c in multi_turn.load_cases(20, 4242)]
    assert again == [c.id for c in multi_turn.load_cases(20, 20261201)]
    assert len(set(again)) == 20 and set(again) != set(other)


def _turn_wrong(case: multi_turn.MultiCase) -> int:
    """A turn whose ground truth makes calls, after the first turn that does."""
    with_calls = [i for i, gt in enumerate(case.ground_truth) if gt]
    return with_calls[1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_turns_right_counts_until_the_first_refused_turn(case: multi_turn.MultiCase) -> None:
    truth = [[list(gt)] if gt else [] for gt in case.ground_truth]
    run = f"turns_{next(_runs)}"
    assert multi_turn.turns_right(case, truth, run) == len(case.ground_truth)
    wrong = _turn_wrong(case)
    broken = [*truth[:wrong], [["pwd()"]], *truth[wrong + 1 :]]
    assert multi_turn.turns_right(case, broken, f"{run}_broken") == wrong
    # an answer with fewer turns counts only those; one with no calls at all, none right
    assert multi_turn.turns_right(case, truth[:wrong], f"{run}_short") == wrong
    nothing: list[list[list[str]]] = [[] for _ in case.ground_truth]
    assert multi_turn.turns_right(case, nothing, f"{run}_empty") == 0


def test_another_model_file_is_named_or_refused(tmp_path: Any) -> None:
    # --gguf: both benchmarks load another chatml model; the report names the file it loaded
    assert multi_turn._servers.model_label("") == multi_turn._servers.EMBEDDED_MODEL
    assert multi_turn._servers.model_label("~/m/qwen-7b.gguf") == "`qwen-7b.gguf`"
    with pytest.raises(SystemExit, match="no such file"):
        multi_turn._servers.model_file(str(tmp_path / "missing.gguf"))


def test_a_stop_mid_case_keeps_no_row_and_starts_no_case(
    bench_proxy: Proxy, player: GroundTruthPlayer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM used to wait for every case of every mode; a case cut short is not the model's
    monkeypatch.setattr(multi_turn, "RESULTS", tmp_path)
    stop = threading.Event()
    player.case, player.drop_last_call, player.asked = CASES[0], False, 0
    player.on_ask = stop.set
    try:
        rows = multi_turn.run_mode(
            "code",
            f"{bench_proxy.url}/v1",
            CASES,
            "stopped",
            False,
            60,
            None,
            stop=stop,
            key=MASTER_KEY,
        )
    finally:
        player.on_ask = lambda: None
    assert rows == [] and player.asked == 1
    assert (tmp_path / "raw-multiturn-stopped-code.jsonl").read_text() == ""


def test_sigterm_sets_the_stop_and_stops_the_servers(tmp_path: Any) -> None:
    servers = multi_turn._servers.Servers(tmp_path / "unused.gguf", tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    servers.running.append(child)  # type: ignore[arg-type]
    before = signal.getsignal(signal.SIGTERM)
    try:
        stop = multi_turn._servers.stop_on_sigterm(servers)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10)
    finally:
        signal.signal(signal.SIGTERM, before)
        child.kill()
    assert child.wait(10) is not None and child.returncode == -signal.SIGTERM


def test_a_run_stopped_by_sigterm_exits_as_terminated_and_a_whole_one_with_zero() -> None:
    stop = threading.Event()
    assert multi_turn._servers.exit_status(None) == 0
    assert multi_turn._servers.exit_status(stop) == 0
    stop.set()
    assert multi_turn._servers.exit_status(stop) == 143
