"""What the portable llama.cpp build costs against ``-march=native`` (issue 16), in tokens/s.

Each build is llama-cpp-python 0.3.36 compiled with a flag set: a wheel file (unpacked into a
temporary directory put first on ``PYTHONPATH``) or ``installed`` (the venv's own build, the one
``make run`` made; its marker names the flags). For every build, in a fresh process each time:
load the model, warm up, then evaluate a fixed ~300-token prompt (prompt eval tok/s) and
generate ``--gen`` tokens greedily, EOS ignored so every run generates the same count
(generation tok/s). Runs alternate between builds (A B A B ...) so that load from other work on
the machine falls on all of them alike. The report also counts AMX and AVX-512 (zmm)
instructions in each build's ``libggml-cpu.so`` (objdump). Run, e.g.:

    .venv/bin/python -m bench.llama_build_flags --build native=NATIVE.whl \\
        --build portable=installed [--repeats 3] [--gen 128] [--threads 2]

Needs the model (``.venv/bin/python scripts/serve.py --prepare-only``) and the venv's
llama-cpp-python (for its dependencies).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench._report import cpu_name, write_report
from scripts import llama_build, serve

PROMPT = (
    "<|im_start|>system\nYou are a careful Python programmer.<|im_end|>\n<|im_start|>user\n"
    "Here is a module:\n\n```python\n"
    + "\n".join(
        f"def step_{i}(values: list[int], factor: int = {i}) -> list[int]:\n"
        f'    """Multiply every value by factor and add {i}."""\n'
        f"    return [v * factor + {i} for v in values]\n"
        for i in range(8)
    )
    + "```\n\nWrite a function `pipeline(values)` that applies step_0 to step_7 in order, "
    "with a docstring and type hints, then explain it.<|im_end|>\n<|im_start|>assistant\n"
)


def child(model: str, gen: int, threads: int) -> dict[str, Any]:
    """One measurement in this process, with whatever llama_cpp is first on the path."""
    import llama_cpp

    llm = llama_cpp.Llama(model, n_ctx=2048, n_threads=threads, verbose=False)
    prompt = llm.tokenize(PROMPT.encode(), special=True)
    llm.eval(prompt[:32])  # warm-up: pages the weights in, sets up the buffers
    llm.eval([llm.sample(temp=0)])
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt)
    prompt_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(gen):
        llm.eval([llm.sample(temp=0)])
    gen_s = time.perf_counter() - started
    return {
        "module": llama_cpp.__file__,
        "prompt_tokens": len(prompt),
        "prompt_tps": len(prompt) / prompt_s,
        "gen_tokens": gen,
        "gen_tps": gen / gen_s,
    }


def instruction_counts(lib: Path) -> dict[str, int]:
    if not shutil.which("objdump") or not lib.is_file():
        return {}
    text = subprocess.run(["objdump", "-d", str(lib)], capture_output=True, text=True).stdout
    return {
        "AMX (ldtilecfg/tdp*/tileload*)": len(re.findall(r"\b(ldtilecfg|tdpb\w+|tileloadd)", text)),
        "AVX-512 (zmm)": len(re.findall(r"%zmm\d", text)),
        "AVX2/AVX (ymm)": len(re.findall(r"%ymm\d", text)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="append", default=[], help="NAME=WHEEL or NAME=installed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gen", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = str(serve.model_path())
    if args.child:
        print(json.dumps(child(model, args.gen, args.threads)))
        return

    work = Path(tempfile.mkdtemp(prefix="llama-build-flags-"))
    builds: dict[str, Path | None] = {}  # name -> directory to put first on PYTHONPATH
    for spec in args.build:
        name, _, where = spec.partition("=")
        if where == "installed":
            builds[name] = None
        else:
            target = work / name
            zipfile.ZipFile(where).extractall(target)
            builds[name] = target
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for repeat in range(args.repeats):
        for name, path in builds.items():
            env = dict(os.environ)
            if path is not None:
                env["PYTHONPATH"] = os.pathsep.join([str(path), str(Path.cwd())])
            cmd = [sys.executable, "-m", "bench.llama_build_flags", "--child"]
            cmd += ["--gen", str(args.gen), "--threads", str(args.threads)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(result)
            print(
                f"{name} run {repeat + 1}: prompt {result['prompt_tps']:.1f} tok/s, "
                f"gen {result['gen_tps']:.2f} tok/s",
                flush=True,
            )
    counts: dict[str, dict[str, int]] = {}
    for name, path in builds.items():
        lib_dir = (path / "llama_cpp" / "lib") if path else Path(llama_cpp_dir()) / "lib"
        counts[name] = instruction_counts(lib_dir / "libggml-cpu.so")
    shutil.rmtree(work, ignore_errors=True)

    marker = llama_build.read_marker(llama_build.marker_path())
    first = next(iter(runs))
    base_prompt = statistics.median(r["prompt_tps"] for r in runs[first])
    base_gen = statistics.median(r["gen_tps"] for r in runs[first])
    lines = [
        f"# bench/llama_build_flags.py, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
        "",
        f"Machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; llama-cpp-python {llama_build.VERSION}; model "
        f"{serve.MODEL_NAME}; n_threads {args.threads}; prompt {runs[first][0]['prompt_tokens']} "
        f"tokens, then {args.gen} generated greedily (EOS ignored); {args.repeats} runs per "
        "build, alternating; each run a fresh process after a warm-up. Median (min-max).",
        "",
        f"Builds: {', '.join(args.build)}. The installed build's marker: "
        f"{marker.describe() if marker else 'none'}"
        + (f", CMAKE_ARGS `{' '.join(marker.cmake_args)}`." if marker else "."),
        "",
        "| build | prompt eval tok/s | generation tok/s | prompt vs first | gen vs first |",
        "|---|---|---|---|---|",
    ]
    for name, results in runs.items():
        prompt = [r["prompt_tps"] for r in results]
        gen = [r["gen_tps"] for r in results]
        lines.append(
            f"| {name} | {statistics.median(prompt):.1f} ({min(prompt):.1f}-{max(prompt):.1f}) "
            f"| {statistics.median(gen):.2f} ({min(gen):.2f}-{max(gen):.2f}) "
            f"| {statistics.median(prompt) / base_prompt - 1:+.1%} "
            f"| {statistics.median(gen) / base_gen - 1:+.1%} |"
        )
    lines += ["", "Instructions in each build's libggml-cpu.so (objdump -d, operand mentions):", ""]
    for name, found in counts.items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    lines += ["", "Raw runs:", "", "```json", json.dumps(runs, indent=1), "```", ""]
    write_report("llama-build-flags", "\n".join(lines))


def llama_cpp_dir() -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


if __name__ == "__main__":
    main()
