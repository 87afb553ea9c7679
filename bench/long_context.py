"""What llama.cpp settings do to a long prompt on the embedded model, in tokens/s.

A multi-turn case's tool list makes prompts of 2,000-5,000 tokens (the JSON baseline's system
prompt for a BFCL trading case: 5,012), and there the embedded llama.cpp evaluated ~10 prompt
tokens/s, where a 429-token prompt goes at ~56 (``llama-build-flags-2026-12-01.md``). Each
variant is a set of ``llama_cpp.Llama`` keyword arguments (``flash_attn``, ``n_ubatch``, ...);
for every variant, in a fresh process each time: load the model with ``--n-ctx``, warm up,
evaluate a fixed prompt of ``--prompt-tokens`` tokens (prompt eval tok/s), then a short
user message after it (what each later step of an agent's case adds) and ``--gen`` tokens
generated greedily, EOS ignored (generation tok/s at that context). Runs alternate
between variants (A B A B ...) so that load from other work falls on all of them alike. The
report also says whether each variant generated the same greedy tokens as the first: a setting
that changes the numerics changes answers at temperature 0. Run, e.g.:

    .venv/bin/python -m bench.long_context --variant off='{}' \\
        --variant flash='{"flash_attn": true}' [--repeats 3] [--prompt-tokens 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench._report import cpu_name, write_report
from bench.llama_build_flags import PROMPT
from scripts import serve

TAIL = "<|im_end|>\n<|im_start|>user\nAnd now the next step, please: call the next tool.<|im_end|>"


def child(
    model: str, kwargs: dict[str, Any], prompt_tokens: int, gen: int, threads: int, n_ctx: int
) -> dict[str, Any]:
    """One measurement in this process."""
    import llama_cpp

    llm = llama_cpp.Llama(model, n_ctx=n_ctx, n_threads=threads, verbose=False, **kwargs)
    unit = llm.tokenize(PROMPT.encode(), special=True)
    prompt = (unit * (prompt_tokens // len(unit) + 1))[:prompt_tokens]
    tail = llm.tokenize(TAIL.encode(), add_bos=False, special=True)
    llm.eval(prompt[:32])  # warm-up: pages the weights in, sets up the buffers
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt)
    prompt_s = time.perf_counter() - started
    started = time.perf_counter()
    llm.eval(tail)
    tail_s = time.perf_counter() - started
    tokens = []
    started = time.perf_counter()
    for _ in range(gen):
        tokens.append(int(llm.sample(temp=0)))
        llm.eval([tokens[-1]])
    gen_s = time.perf_counter() - started
    return {
        "prompt_tokens": len(prompt),
        "prompt_tps": len(prompt) / prompt_s,
        "tail_tokens": len(tail),
        "tail_s": tail_s,
        "gen_tps": gen / gen_s,
        "tokens": tokens,
    }


def _median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON kwargs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=5000)
    parser.add_argument("--gen", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=16384)
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = str(serve.model_path())
    if args.child:
        kwargs = json.loads(args.child)
        result = child(model, kwargs, args.prompt_tokens, args.gen, args.threads, args.n_ctx)
        print(json.dumps(result))
        return
    variants = dict(spec.partition("=")[::2] for spec in args.variant) or {"default": "{}"}
    for name, spec in variants.items():
        if not isinstance(json.loads(spec), dict):
            parser.error(f"--variant {name}: not a JSON object of Llama keyword arguments")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, spec in variants.items():
            cmd = [sys.executable, "-m", "bench.long_context", "--child", spec]
            cmd += ["--prompt-tokens", str(args.prompt_tokens), "--gen", str(args.gen)]
            cmd += ["--threads", str(args.threads), "--n-ctx", str(args.n_ctx)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(result)
            print(
                f"{name} run {repeat + 1}: prompt {result['prompt_tps']:.1f} tok/s, tail "
                f"{result['tail_s']:.2f} s, gen {result['gen_tps']:.2f} tok/s",
                flush=True,
            )
    first = next(iter(runs))
    base = {key: _median(runs[first], key) for key in ("prompt_tps", "tail_s", "gen_tps")}
    lines = [
        f"# bench/long_context.py, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores; model {serve.MODEL_NAME}; n_threads "
        f"{args.threads}, n_ctx {args.n_ctx}; prompt {runs[first][0]['prompt_tokens']} tokens, "
        f"then a {runs[first][0]['tail_tokens']}-token tail, then {args.gen} tokens generated "
        f"greedily (EOS ignored); {args.repeats} runs per variant, alternating, each a fresh "
        "process after a warm-up. Median (min-max).",
        "",
        "| variant | Llama kwargs | prompt eval tok/s | vs first | tail s | vs first | "
        "generation tok/s | vs first | same tokens as first |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, results in runs.items():
        cells = []
        for key in ("prompt_tps", "tail_s", "gen_tps"):
            values = [r[key] for r in results]
            median = statistics.median(values)
            cells.append(f"{median:.2f} ({min(values):.2f}-{max(values):.2f})")
            cells.append(f"{median / base[key] - 1:+.1%}")
        same = all(r["tokens"] == runs[first][0]["tokens"] for r in results)
        lines.append(f"| {name} | `{variants[name]}` | {' | '.join(cells)} | {same} |")
    lines += ["", "Raw runs:", "", "```json", json.dumps(runs), "```", ""]
    write_report("long-context", "\n".join(lines))


if __name__ == "__main__":
    main()
