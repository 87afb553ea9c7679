"""Tool-calling accuracy on a fixed-seed sample of BFCL v4, three ways, with one local model.

Modes (same model, same llama.cpp build, temperature 0, same max_tokens):
  code    our plugin: the real LiteLLM proxy with ``config.yaml`` (alias ``coder``, toolcode on)
          in front of the llama.cpp server (``--chat_format chatml``), OpenAI ``tools`` sent
  json    the JSON-prompt baseline: the tools put into the system prompt with the text of
          LiteLLM's own ``function_call_prompt`` (what ``litellm.add_function_to_prompt`` does),
          sent straight to the same llama.cpp server; the answer's JSON objects
          ``{name, arguments}`` are the calls
  native  llama-cpp-python's ``chatml-function-calling`` chat handler (a second server
          instance), OpenAI ``tools`` sent, its ``tool_calls`` read
  code+gbnf  ``code`` with ``model_info.toolcode.grammar: gbnf``: the answer is constrained by
          the grammar made from the tools (docs/configuration.md); run on request only

Scoring is BFCL's own AST checker (``bfcl_eval.eval_checker.ast_eval.ast_checker``) against
BFCL's possible answers; for ``irrelevance`` a case passes when an answer came back and it makes
no call. An HTTP error or an unreadable answer fails the case in every category.

    .venv/bin/python bench/accuracy.py                       # 40 per category, all modes
    .venv/bin/python bench/accuracy.py --per-category 10 --modes code,json
    .venv/bin/python bench/accuracy.py --per-category 10 --seed 4242 --modes code,code+gbnf
    .venv/bin/python bench/accuracy.py --gguf ~/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf

Needs llama-cpp-python and the model (``.venv/bin/python scripts/serve.py --prepare-only``) and
``bfcl-eval`` (installed with ``--no-deps`` on first use). Raw answers go to
``bench/results/raw-<date>-<mode>.jsonl``, the table to ``bench/results/accuracy-<date>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(ROOT))

from bench._report import cpu_name  # noqa: E402
from bench._servers import (  # noqa: E402
    GGUF_HELP,
    GRAMMAR_MODES,
    MODES,
    PROXY_KEY,
    Servers,
    exit_status,
    model_file,
    model_label,
    stop_on_sigterm,
)
from bench.json_baseline import json_calls, json_prompt  # noqa: E402
from scripts import serve  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CATEGORIES = {  # our name -> BFCL v4 file stem (also BFCL's test_category for the checker)
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "irrelevance": "irrelevance",
}
MAX_TOKENS = 256
CHECKER_MODEL = "toolcode-bench"


# ---------------------------------------------------------------- BFCL without its extras


BFCL_REQUIREMENT = "bfcl-eval==2026.3.23"


def ensure_bfcl() -> None:
    """Install bfcl-eval without its dependencies (they pin numpy 1.26, torch via
    sentence-transformers, vendor SDKs...): the data and the AST checker need none of them."""
    try:
        import bfcl_eval  # noqa: F401
    except ImportError:
        print(f"installing {BFCL_REQUIREMENT} (--no-deps)", flush=True)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", BFCL_REQUIREMENT]
        subprocess.run(cmd, check=True)


def _bfcl() -> tuple[Any, Any, Any, Any, Any]:
    """Import BFCL's checker and tool converter without its model-handler dependencies.

    ``bfcl_eval`` imports every vendor SDK (anthropic, tree_sitter, ...) through
    ``constants.model_config``; the checker only needs ``underscore_to_dot`` from it, and the
    converter does not need the Java/JS parsers, so those three modules are stood in for.
    """
    config = types.SimpleNamespace(underscore_to_dot=True)  # tools are sent with . -> _
    stand_ins = {
        "bfcl_eval.constants.model_config": {"MODEL_CONFIG_MAPPING": {CHECKER_MODEL: config}},
        "bfcl_eval.model_handler.parser.java_parser": {"parse_java_function_call": None},
        "bfcl_eval.model_handler.parser.js_parser": {"parse_javascript_function_call": None},
    }
    for name, attrs in stand_ins.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules.setdefault(name, module)
    from bfcl_eval.constants.enums import Language, ModelStyle
    from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.utils import convert_to_tool

    return ast_checker, convert_to_tool, Language, ModelStyle, GORILLA_TO_OPENAPI


def _read_jsonl(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Case:
    id: str
    category: str  # our name
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]  # BFCL's own descriptions (for the checker)
    tools: list[dict[str, Any]]  # OpenAI tools, as BFCL sends them to OpenAI-style models
    answer: list[dict[str, Any]] = field(default_factory=list)


def load_cases(per_category: int, seed: int) -> list[Case]:
    _, convert_to_tool, _, model_style, mapping = _bfcl()
    data = resources.files("bfcl_eval") / "data"
    cases: list[Case] = []
    for category, stem in CATEGORIES.items():
        entries = _read_jsonl(data / f"BFCL_v4_{stem}.json")
        answers: dict[str, Any] = {}
        if category != "irrelevance":
            answers = {
                a["id"]: a["ground_truth"]
                for a in _read_jsonl(data / "possible_answer" / f"BFCL_v4_{stem}.json")
            }
        picked = random.Random(f"{seed}-{category}").sample(entries, per_category)
        for entry in sorted(picked, key=lambda e: int(e["id"].rsplit("_", 1)[1])):
            # BFCL's own conversion for OpenAI-style models: {"type": "function", ...}, dotted
            # names as underscores, BFCL types mapped to JSON Schema ones.
            tools = convert_to_tool(entry["function"], mapping, model_style.OPENAI_COMPLETIONS)
            cases.append(
                Case(
                    id=entry["id"],
                    category=category,
                    messages=entry["question"][0],
                    functions=entry["function"],
                    tools=tools,
                    answer=answers.get(entry["id"], []),
                )
            )
    return cases


def score(case: Case, calls: list[dict[str, Any]] | None) -> tuple[bool, str]:
    """BFCL's verdict for one answer; ``calls`` is None when no usable answer came back."""
    if calls is None:
        return False, "no usable answer"
    if case.category == "irrelevance":
        return (not calls), ("" if not calls else f"called {next(iter(calls[0]))}")
    if not calls:
        return False, "no call"
    ast_checker, _, language, _, _ = _bfcl()
    verdict = ast_checker(
        case.functions,
        calls,
        case.answer,
        language.PYTHON,
        CATEGORIES[case.category],
        CHECKER_MODEL,
    )
    return bool(verdict["valid"]), "; ".join(map(str, verdict.get("error", [])))[:300]


# ---------------------------------------------------------------- the three modes


def _openai_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or []:
        function = call["function"]
        arguments = function.get("arguments") or "{}"
        calls.append({function["name"]: json.loads(arguments)})
    return calls


@dataclass
class Outcome:
    calls: list[dict[str, Any]] | None
    text: str | None
    error: str | None
    seconds: float
    completion_tokens: int
    timed_out: bool = False  # the server may still be generating: restart it


def ask(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[dict[str, Any] | None, str | None, int]:
    response = client.post(url, json=body, headers=headers)
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}: {response.text[:300]}", 0
    data = response.json()
    usage = data.get("usage") or {}
    return data["choices"][0]["message"], None, int(usage.get("completion_tokens") or 0)


def run_case(client: httpx.Client, mode: str, base: str, case: Case) -> Outcome:
    sampling = {"temperature": 0, "max_tokens": MAX_TOKENS}
    headers = {"Authorization": f"Bearer {PROXY_KEY}"}
    started = time.monotonic()
    if mode == "json":
        body = {"model": serve.MODEL_ALIAS, "messages": json_prompt(case.messages, case.tools)}
    else:
        body = {"model": "coder" if mode.startswith("code") else serve.MODEL_ALIAS}
        body |= {"messages": case.messages, "tools": case.tools, "tool_choice": "auto"}
    try:
        message, error, tokens = ask(client, f"{base}/chat/completions", body | sampling, headers)
    except httpx.TimeoutException:
        seconds = time.monotonic() - started
        return Outcome(None, None, f"no answer within {seconds:.0f} s", seconds, 0, True)
    except httpx.HTTPError as exc:
        message, error, tokens = None, f"{type(exc).__name__}: {exc}", 0
    seconds = time.monotonic() - started
    if message is None:
        return Outcome(None, None, error, seconds, tokens)
    text = message.get("content")
    try:
        calls = json_calls(text or "") if mode == "json" else _openai_calls(message)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return Outcome(None, text, f"unreadable tool_calls: {exc}", seconds, tokens)
    return Outcome(calls, text, None, seconds, tokens)


# ---------------------------------------------------------------- table


def table(rows: list[dict[str, Any]], modes: list[str]) -> str:
    lines = ["| category | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for category in [*CATEGORIES, "overall"]:
        cells = []
        for mode in modes:
            mine = [r for r in rows if r["mode"] == mode]
            if category != "overall":
                mine = [r for r in mine if r["category"] == category]
            passed, count = sum(r["passed"] for r in mine), len(mine)
            cells.append(f"{passed}/{count} ({100 * passed / count:.1f}%)" if count else "-")
        label = f"**{category}**" if category == "overall" else category
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| mean s/case | " + " | ".join(_mean(rows, m, "seconds") for m in modes) + " |")
    lines.append(
        "| mean output tokens | "
        + " | ".join(_mean(rows, m, "completion_tokens") for m in modes)
        + " |"
    )
    lines.append(
        "| errors (HTTP/unreadable/timeout) | "
        + " | ".join(str(sum(1 for r in rows if r["mode"] == m and r["error"])) for m in modes)
        + " |"
    )
    return "\n".join(lines)


def _mean(rows: list[dict[str, Any]], mode: str, key: str) -> str:
    values = [r[key] for r in rows if r["mode"] == mode]
    return f"{sum(values) / len(values):.1f}" if values else "-"


def machine() -> str:
    return f"{os.cpu_count()} cores, {cpu_name()}, {platform.system()} {platform.release()}"


# ---------------------------------------------------------------- main


def interleaved(cases: list[Case]) -> list[Case]:
    """Round-robin over the categories, so a run cut short still covers each of them."""
    by_category = [[c for c in cases if c.category == name] for name in CATEGORIES]
    longest = max((len(group) for group in by_category), default=0)
    return [group[i] for i in range(longest) for group in by_category if i < len(group)]


def finished_rows(stem: str, mode: str, cases: list[Case]) -> list[dict[str, Any]]:
    """Rows an earlier (interrupted) run with the same stem already wrote for these cases."""
    raw = RESULTS / f"raw-{stem}-{mode}.jsonl"
    wanted = {c.id for c in cases}
    rows = _read_jsonl(raw) if raw.exists() else []
    return [r for r in rows if r.get("mode") == mode and r.get("id") in wanted]


def run_mode(
    mode: str,
    base: str,
    cases: list[Case],
    stem: str,
    deadline: float | None,
    resume: bool,
    timeout: float,
    restart: Callable[[str], None],
    stop: threading.Event | None = None,
) -> list[dict[str, Any]]:
    stop = stop or threading.Event()
    rows = finished_rows(stem, mode, cases) if resume else []
    done = {r["id"] for r in rows}
    raw = RESULTS / f"raw-{stem}-{mode}.jsonl"
    with httpx.Client(timeout=timeout) as client, raw.open("a" if resume else "w") as out:
        for number, case in enumerate(cases, 1):
            if case.id in done:
                continue
            if deadline is not None and time.monotonic() > deadline:
                print(f"[{mode}] time budget spent after {number - 1} cases", flush=True)
                break
            if stop.is_set():
                break
            outcome = run_case(client, mode, base, case)
            if stop.is_set():  # its servers went mid-case: an error of ours, not the model's
                print(f"[{mode}] stopped: {case.id} not kept", flush=True)
                break
            if outcome.timed_out:
                restart(mode)
            passed, why = score(case, outcome.calls)
            row = {
                "mode": mode,
                "id": case.id,
                "category": case.category,
                "passed": passed,
                "why": why if not passed else "",
                "error": outcome.error,
                "calls": outcome.calls,
                "text": outcome.text,
                "seconds": round(outcome.seconds, 2),
                "completion_tokens": outcome.completion_tokens,
            }
            rows.append(row)
            out.write(json.dumps(row) + "\n")
            out.flush()
            mark = "ok " if passed else "BAD"
            detail = why or outcome.error or ""
            print(
                f"[{mode} {number}/{len(cases)}] {mark} {case.id} {outcome.seconds:.1f}s {detail}"[
                    :220
                ],
                flush=True,
            )
    return rows


def run_all(
    modes: list[str], cases: list[Case], stem: str, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], threading.Event]:
    """Start the servers, run every mode side by side, stop the servers: the rows, and the
    event a SIGTERM sets."""
    model = model_file(args.gguf)
    os.environ.setdefault("TOOLCODE_LLAMA_THREADS", str(args.threads))
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as logs:
        servers = Servers(model, Path(logs))
        stop = stop_on_sigterm(servers)
        try:
            bases = {mode: servers.base(mode) for mode in modes}
            print(f"servers up in {time.monotonic() - started:.0f} s", flush=True)
            with ThreadPoolExecutor(len(modes)) as pool:
                done = pool.map(
                    lambda mode: run_mode(
                        mode,
                        bases[mode],
                        cases,
                        stem,
                        deadline,
                        args.resume,
                        args.case_timeout,
                        servers.restart,
                        stop,
                    ),
                    modes,
                )
                for mode_rows in done:
                    rows += mode_rows
        finally:
            servers.close()
    return rows, stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-category", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--tag", default="", help="suffix for the output files")
    parser.add_argument(
        "--only", default="", help="comma-separated case ids: run only these of the sample"
    )
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per server")
    parser.add_argument(
        "--minutes", type=float, default=0, help="time budget: start no case after it (0: none)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows an earlier run with the same --tag wrote; run only the other cases",
    )
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=900,
        help="seconds a case may take; then it fails and the mode's llama.cpp server restarts",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: build the table from the rows the runs with this --tag wrote",
    )
    parser.add_argument("--gguf", default="", help=GGUF_HELP)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    categories = [c for c in args.categories.split(",") if c]
    unknown = set(modes) - {*MODES, *GRAMMAR_MODES} or set(categories) - set(CATEGORIES)
    if unknown:
        parser.error(f"unknown: {sorted(unknown)}")

    ensure_bfcl()
    cases = [c for c in load_cases(args.per_category, args.seed) if c.category in categories]
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.id in wanted]
    cases = interleaved(cases)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    stem = f"{date}{'-' + args.tag if args.tag else ''}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stop: threading.Event | None = None
    if args.report_only:
        rows = [r for mode in modes for r in finished_rows(stem, mode, cases)]
    else:
        rows, stop = run_all(modes, cases, stem, args)
    # Compare like with like: only the cases every mode finished before the deadline.
    finished = [{r["id"] for r in rows if r["mode"] == m} for m in modes]
    common = set.intersection(*finished) if finished else set()
    rows = [r for r in rows if r["id"] in common]
    partial = (
        ""
        if len(common) == len(cases)
        else (
            f" Stopped at the time budget: {len(common)} of {len(cases)} cases finished in every "
            "mode; the table counts those."
        )
    )
    elapsed = time.monotonic() - started
    wall = (
        "Table rebuilt from the raw rows of earlier runs (--report-only)."
        if args.report_only
        else f"Wall time: {elapsed / 60:.1f} min."
    )
    report = (
        f"# Accuracy, {date}\n\n"
        f"BFCL v4 (bfcl-eval 2026.3.23), {args.per_category} cases per category, seed "
        f"{args.seed}, scored with BFCL's AST checker (irrelevance: an answer without a call).\n"
        f"Model: {model_label(args.gguf)} on llama-cpp-python 0.3.36, temperature 0, "
        f"max_tokens {MAX_TOKENS}.\nMachine: {machine()}, llama.cpp threads per server: "
        f"{args.threads}, modes run side by side. {wall}{partial}\n\n"
        f"Modes: `code` = litellm-toolcode through the LiteLLM proxy (`config.yaml`, alias "
        f"`coder`); `json` = LiteLLM's `function_call_prompt` (add_function_to_prompt) straight "
        f"to llama.cpp; `native` = llama-cpp-python's `chatml-function-calling`; `code+gbnf` = "
        f"`code` with `grammar: gbnf` (docs/configuration.md).\n\n" + table(rows, modes) + "\n"
    )
    out_path = RESULTS / f"accuracy-{stem}.md"
    out_path.write_text(report)
    print("\n" + report)
    print(f"written to {out_path.relative_to(ROOT)}")
    return exit_status(stop)


if __name__ == "__main__":
    sys.exit(main())
