"""Multi-turn accuracy: BFCL v4 ``multi_turn_base`` as an agent loop, three ways, one local model.

A case is a conversation of several user turns over one or two of BFCL's stateful API classes
(a file system, a trading bot, a vehicle, ...). For each turn the harness asks the model, runs
the tool calls it gets with BFCL's own executable classes (state kept across the case), feeds
the results back and asks again, until the model answers without a call (or
``MAX_STEPS`` steps). The calls of every step are then scored by BFCL's own multi-turn checker
(``multi_turn_checker``: the classes' state and the calls' results after each turn, against the
ground truth's).

Modes are those of ``bench/accuracy.py`` (same model, servers and sampling):
  code    the LiteLLM proxy with ``config.yaml`` (alias ``coder``, toolcode on); results go back
          as OpenAI ``tool`` messages, which the plugin renders for the model
  json    LiteLLM's ``function_call_prompt`` straight to llama.cpp; results go back as a ``user``
          message (BFCL's default for prompting models)
  native  llama-cpp-python's ``chatml-function-calling``; results as ``tool`` messages

    .venv/bin/python bench/multi_turn.py --cases 20 --seed 20261201
    .venv/bin/python bench/multi_turn.py --cases 20 --seed 20261201 --resume   # continue a run

The tool docs of two classes are ~30 KB of JSON, so the llama.cpp servers run with
``--n-ctx`` (16384 by default). Rows go to ``bench/results/raw-multiturn-<tag>-<mode>.jsonl``
(one per case, with the whole transcript); the table to ``bench/results/multiturn-<tag>.md``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _servers, accuracy, json_baseline, multi_turn_report  # noqa: E402
from scripts import serve  # noqa: E402

RESULTS = accuracy.RESULTS
CATEGORY = "multi_turn_base"
MAX_STEPS = 20  # BFCL's own MAXIMUM_STEP_LIMIT per turn
MAX_TOKENS = 512
RESULT_CHARS = 4000  # a tool result longer than this is cut before it goes back to the model
LOGS = ROOT / ".data" / "logs" / "multiturn"  # the servers' logs (not results)


@dataclass(frozen=True)
class MultiCase:
    id: str
    turns: list[list[dict[str, Any]]]  # the user messages of each turn
    entry: dict[str, Any]  # BFCL's test entry (initial_config, involved_classes, ...)
    tools: list[dict[str, Any]]  # OpenAI tools, BFCL's own conversion
    ground_truth: list[list[str]]


def load_cases(count: int, seed: int) -> list[MultiCase]:
    """A fixed-seed sample of ``multi_turn_base``, in id order."""
    _, convert_to_tool, _, model_style, mapping = accuracy._bfcl()
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    data = resources.files("bfcl_eval") / "data"
    entries = accuracy._read_jsonl(data / f"BFCL_v4_{CATEGORY}.json")
    answers = {
        a["id"]: a["ground_truth"]
        for a in accuracy._read_jsonl(data / "possible_answer" / f"BFCL_v4_{CATEGORY}.json")
    }
    picked = random.Random(f"{seed}-{CATEGORY}").sample(entries, count)
    cases = []
    for entry in sorted(picked, key=lambda e: int(e["id"].rsplit("_", 1)[1])):
        functions: list[dict[str, Any]] = []
        for class_name in entry["involved_classes"]:
            doc = data / "multi_turn_func_doc" / MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]
            functions += accuracy._read_jsonl(doc)
        excluded = set(entry.get("excluded_function") or ())
        functions = [f for f in functions if f["name"] not in excluded]
        tools = convert_to_tool(functions, mapping, model_style.OPENAI_COMPLETIONS)
        cases.append(
            MultiCase(
                id=entry["id"],
                turns=entry["question"],
                entry=entry,
                tools=tools,
                ground_truth=answers[entry["id"]],
            )
        )
    return cases


# ---------------------------------------------------------------- running BFCL's classes


def call_string(name: str, arguments: dict[str, Any]) -> str:
    """A call as BFCL's executor and checker read it (``convert_to_function_call``'s form)."""
    return f"{name}({','.join(f'{k}={v!r}' for k, v in arguments.items())})"


def instance_name(mode: str, stem: str) -> str:
    """The name BFCL keeps a run's class state under. BFCL builds a Python name from it,
    replacing only ``-./:``: a ``+`` (``code+gbnf``) made every call a NameError, and the
    checker, whose ground-truth calls failed alike, passed the case."""
    return re.sub(r"\W", "_", f"bench_{mode}_{stem}")


def execute(case: MultiCase, instance: str, calls: list[str]) -> list[str]:
    """Run ``calls`` on the case's classes; ``instance`` keys their state (BFCL keeps it in
    module globals by model name and case id, so each mode and run needs its own name)."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import (
        execute_multi_turn_func_call,
    )

    results, _ = execute_multi_turn_func_call(
        func_call_list=calls,
        initial_config=case.entry["initial_config"],
        involved_classes=case.entry["involved_classes"],
        model_name=instance,
        test_entry_id=case.id,
    )
    return [str(r) for r in results]


def _verdict(case: MultiCase, decoded: list[list[list[str]]], turns: int, instance: str) -> str:
    """BFCL's checker on the first ``turns`` turns: "" when it accepts them, else why not."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    entry = copy.deepcopy(case.entry)
    try:
        verdict = multi_turn_checker(
            decoded[:turns], case.ground_truth[:turns], entry, CATEGORY, instance
        )
    except Exception as exc:  # the checker asserts on shapes it does not expect
        return f"checker: {type(exc).__name__}: {exc}"[:300]
    if verdict.get("valid"):
        return ""
    return f"{verdict.get('error_type')}: {verdict.get('error_message')}"[:300]


def score(case: MultiCase, decoded: list[list[list[str]]], instance: str) -> tuple[bool, str]:
    """BFCL's multi-turn verdict for the calls of every step of every turn."""
    if len(decoded) != len(case.ground_truth):
        return False, f"{len(decoded)} of {len(case.ground_truth)} turns answered"
    why = _verdict(case, decoded, len(decoded), instance)
    return not why, why


def turns_right(case: MultiCase, decoded: list[list[list[str]]], instance: str) -> int:
    """How many turns, from the first, BFCL's checker accepts before the first it refuses.

    BFCL scores a case all or nothing, and a small model passes almost none, so this shows how
    far each mode gets. The checker runs on each prefix of the turns, every prefix under its own
    instance name (BFCL keeps class state per name: a shared one would carry state over).
    """
    answered = min(len(decoded), len(case.ground_truth))
    for count in range(1, answered + 1):
        if _verdict(case, decoded, count, f"{instance}_{count}"):
            return count - 1
    return answered


# ---------------------------------------------------------------- one agent loop


@dataclass(frozen=True)
class Step:
    turn: int
    calls: list[str]
    results: list[str]
    text: str | None
    error: str | None
    seconds: float
    completion_tokens: int


def _ask(
    client: httpx.Client,
    mode: str,
    base: str,
    messages: list[dict[str, Any]],
    case: MultiCase,
    key: str,
) -> tuple[dict[str, Any] | None, str | None, int]:
    headers = {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = {"temperature": 0, "max_tokens": MAX_TOKENS}
    if mode == "json":
        body |= {"model": serve.MODEL_ALIAS}
        body["messages"] = json_baseline.json_prompt(messages, case.tools)
    else:
        body |= {"model": "coder" if mode.startswith("code") else serve.MODEL_ALIAS}
        body |= {"messages": messages, "tools": case.tools, "tool_choice": "auto"}
    try:
        return accuracy.ask(client, f"{base}/chat/completions", body, headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", 0


def _calls_of(mode: str, message: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(name, arguments, tool_call_id) of each call in the answer."""
    if mode == "json":
        found = json_baseline.json_calls(message.get("content") or "")
        return [(n, a, f"call_{i}") for i, call in enumerate(found) for n, a in call.items()]
    return [
        (c["function"]["name"], json.loads(c["function"].get("arguments") or "{}"), c["id"])
        for c in message.get("tool_calls") or []
    ]


def _feed_back(
    mode: str,
    messages: list[dict[str, Any]],
    message: dict[str, Any],
    calls: list[tuple[str, dict[str, Any], str]],
    results: list[str],
) -> None:
    """Append the answer and its calls' results as each mode's client would send them."""
    if mode == "json":
        messages.append({"role": "assistant", "content": message.get("content") or ""})
        lines = [
            f"{call_string(name, args)} returned: {result[:RESULT_CHARS]}"
            for (name, args, _), result in zip(calls, results, strict=True)
        ]
        messages.append({"role": "user", "content": "Function results:\n" + "\n".join(lines)})
        return
    messages.append(
        {
            "role": "assistant",
            # llama.cpp answers 500 to content null beside tool_calls (design.md section 7);
            # clients of the proxy send null, as the openai SDK does.
            "content": message.get("content") or (None if mode.startswith("code") else ""),
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for name, args, call_id in calls
            ],
        }
    )
    for (_, _, call_id), result in zip(calls, results, strict=True):
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result[:RESULT_CHARS]})


class Stopped(Exception):
    """The run was told to stop (SIGTERM) while this case was in flight."""


def run_case(
    client: httpx.Client,
    mode: str,
    base: str,
    case: MultiCase,
    instance: str,
    key: str = _servers.PROXY_KEY,
    stop: threading.Event | None = None,
) -> tuple[list[list[list[str]]], list[Step]]:
    """The agent loop over every turn; the decoded calls per turn per step, and the transcript.

    Raises Stopped once ``stop`` is set: a case cut short must not be scored as the model's.
    """
    messages: list[dict[str, Any]] = []
    decoded: list[list[list[str]]] = []
    steps: list[Step] = []
    for turn, user_messages in enumerate(case.turns):
        messages += user_messages
        turn_calls: list[list[str]] = []
        for _ in range(MAX_STEPS):
            started = time.monotonic()
            message, error, tokens = _ask(client, mode, base, messages, case, key)
            seconds = time.monotonic() - started
            if stop is not None and stop.is_set():
                raise Stopped(case.id)
            calls: list[tuple[str, dict[str, Any], str]] = []
            if message is not None:
                try:
                    calls = _calls_of(mode, message)
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    error = f"unreadable tool_calls: {exc}"
            strings = [call_string(name, args) for name, args, _ in calls]
            results = execute(case, instance, strings) if strings else []
            text = None if message is None else message.get("content")
            steps.append(Step(turn, strings, results, text, error, round(seconds, 2), tokens))
            if not calls:
                if message is not None:  # the turn's final answer goes into the history
                    messages.append({"role": "assistant", "content": text or ""})
                break
            turn_calls.append(strings)
            _feed_back(mode, messages, message or {}, calls, results)
        decoded.append(turn_calls)
    return decoded, steps


# ---------------------------------------------------------------- a run


def _raw(stem: str, mode: str) -> Path:
    return RESULTS / f"raw-multiturn-{stem}-{mode}.jsonl"


def finished_rows(stem: str, mode: str, cases: list[MultiCase]) -> list[dict[str, Any]]:
    path = _raw(stem, mode)
    wanted = {c.id for c in cases}
    rows = [r for r in (accuracy._read_jsonl(path) if path.exists() else []) if r["id"] in wanted]
    by_id = {c.id: c for c in cases}
    for row in rows:  # rows written before turns_right was counted
        if "turns_right" not in row:
            instance = f"{instance_name(mode, stem)}_prefix"
            row["turns_right"] = turns_right(by_id[row["id"]], row["decoded"], instance)
    return rows


def run_mode(
    mode: str,
    base: str,
    cases: list[MultiCase],
    stem: str,
    resume: bool,
    timeout: float,
    deadline: float | None,
    log: Callable[[str], None] = print,
    stop: threading.Event | None = None,
    key: str = _servers.PROXY_KEY,
) -> list[dict[str, Any]]:
    stop = stop or threading.Event()
    rows = finished_rows(stem, mode, cases) if resume else []
    done = {r["id"] for r in rows}
    with (
        httpx.Client(timeout=timeout) as client,
        _raw(stem, mode).open("a" if resume else "w") as out,
    ):
        for number, case in enumerate(cases, 1):
            if case.id in done:
                continue
            if deadline is not None and time.monotonic() > deadline:
                log(f"[{mode}] time budget spent after {number - 1} cases")
                break
            if stop.is_set():
                break
            instance = instance_name(mode, stem)
            started = time.monotonic()
            try:
                decoded, steps = run_case(client, mode, base, case, instance, key, stop)
            except Stopped:
                log(f"[{mode}] stopped: {case.id} not kept")
                break
            passed, why = score(case, decoded, f"{instance}_score")
            right = turns_right(case, decoded, f"{instance}_prefix")
            row = {
                "mode": mode,
                "id": case.id,
                "passed": passed,
                "why": why,
                "turns": len(case.turns),
                "turns_right": right,
                "steps": len(steps),
                "errors": sum(1 for s in steps if s.error),
                "seconds": round(time.monotonic() - started, 1),
                "completion_tokens": sum(s.completion_tokens for s in steps),
                "decoded": decoded,
                "transcript": [s.__dict__ for s in steps],
            }
            rows.append(row)
            out.write(json.dumps(row) + "\n")
            out.flush()
            mark = "ok " if passed else "BAD"
            log(f"[{mode} {number}/{len(cases)}] {mark} {case.id} {row['seconds']}s {why}"[:220])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--modes", default=",".join(_servers.MODES))
    parser.add_argument("--tag", default="", help="output files' name (default: date and seed)")
    parser.add_argument("--only", default="", help="comma-separated case ids of the sample")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per server")
    parser.add_argument("--n-ctx", type=int, default=16384, help="llama.cpp context per server")
    parser.add_argument("--minutes", type=float, default=0, help="start no case after (0: none)")
    parser.add_argument("--resume", action="store_true", help="keep finished cases of --tag")
    parser.add_argument("--step-timeout", type=float, default=900, help="seconds per model call")
    parser.add_argument("--report-only", action="store_true", help="table from the raw rows")
    parser.add_argument(
        "--rows",
        action="append",
        default=[],
        metavar="MODE=TAG",
        help="keep (read, resume, write) this mode's raw rows under another run's tag",
    )
    parser.add_argument("--gguf", default="", help=_servers.GGUF_HELP)
    parser.add_argument(
        "--base",
        action="append",
        default=[],
        metavar="MODE=URL",
        help="use this OpenAI base URL for a mode instead of starting servers (e.g. a proxy)",
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    known = {*_servers.MODES, *_servers.GRAMMAR_MODES}  # code+gbnf: code mode with the grammar
    if set(modes) - known:
        parser.error(f"unknown modes: {sorted(set(modes) - known)}")
    if bad := [item for item in args.rows if item.partition("=")[0] not in modes]:
        parser.error(f"--rows names a mode not in --modes: {bad}")
    accuracy.ensure_bfcl()
    cases = load_cases(args.cases, args.seed)
    if args.only:
        cases = [c for c in cases if c.id in set(args.only.split(","))]
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    stem = args.tag or f"{date}-seed{args.seed}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    given = dict(item.split("=", 1) for item in args.base)
    rows_from = dict(item.split("=", 1) for item in args.rows)
    stems = {m: rows_from.get(m, stem) for m in modes}
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes else None
    stop: threading.Event | None = None
    if args.report_only:
        rows = [r for m in modes for r in finished_rows(stems[m], m, cases)]
    elif set(modes) <= set(given):
        stop = _servers.stop_on_sigterm(None)
        rows = _run_side_by_side(modes, given, cases, stems, args, deadline, stop)
    else:
        os.environ.setdefault("TOOLCODE_LLAMA_THREADS", str(args.threads))
        servers = _servers.Servers(_servers.model_file(args.gguf), LOGS, n_ctx=args.n_ctx)
        stop = _servers.stop_on_sigterm(servers)  # the servers outlived a killed run before
        try:
            bases = {m: given.get(m) or servers.base(m) for m in modes}
            rows = _run_side_by_side(modes, bases, cases, stems, args, deadline, stop)
        finally:
            servers.close()
    report = multi_turn_report.report(
        date=date,
        category=CATEGORY,
        sampled=len(cases),
        seed=args.seed,
        header=(
            f"Up to {MAX_STEPS} model calls per turn, temperature 0, max_tokens {MAX_TOKENS}, "
            f"llama.cpp n_ctx {args.n_ctx}.\nModel: {_servers.model_label(args.gguf)}. "
            f"Machine: {accuracy.machine()}."
        ),
        rows=rows,
        modes=modes,
        cases=cases,
    )
    out_path = RESULTS / f"multiturn-{stem}.md"
    out_path.write_text(report)
    print("\n" + report)
    print(f"written to {out_path.relative_to(ROOT)}")
    return _servers.exit_status(stop)


def _run_side_by_side(
    modes: list[str],
    bases: dict[str, str],
    cases: list[MultiCase],
    stems: dict[str, str],
    args: argparse.Namespace,
    deadline: float | None,
    stop: threading.Event,
) -> list[dict[str, Any]]:
    def one(mode: str) -> list[dict[str, Any]]:
        return run_mode(
            mode,
            bases[mode],
            cases,
            stems[mode],
            args.resume,
            args.step_timeout,
            deadline,
            stop=stop,
        )

    with ThreadPoolExecutor(len(modes)) as pool:
        return [row for rows in pool.map(one, modes) for row in rows]


if __name__ == "__main__":
    sys.exit(main())
