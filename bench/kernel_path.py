"""What the kernel path costs: code run in the sandbox vs calls read from the AST (literal path).

Two measurements, in one run:

1. stage: ``answer.interpret`` on literal calls vs ``answer.interpret_executing`` on a loop
   making the same calls, with a warm pool (pauses between requests let spares refill, as in
   a proxy whose requests arrive slower than ~2 kernel starts per second), and back-to-back
   (no pause: requests outrun the refill and wait for kernel starts);
2. proxy: the same two answers through the real LiteLLM proxy with the plugin (fake upstream
   on 127.0.0.1), non-streaming, sequential with pauses: the end-to-end added latency.

    .venv/bin/python -m bench.kernel_path [--requests 60] [--pause 1.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("TOOLCODE_POOL_SIZE", "2")

from litellm_toolcode.answer import interpret, interpret_executing
from litellm_toolcode.check import LiteralCall
from litellm_toolcode.sandbox import Execution, KernelPool, Limits, run_code
from litellm_toolcode.schema_code import Toolset, build_toolset
from tests.test_proxy import WEATHER

CITIES = ["Paris", "Rome", "Oslo"]
LITERAL = "```python\n" + "\n".join(f"get_weather(location={c!r})" for c in CITIES) + "\n```"
LOOP = f"```python\nfor city in {CITIES!r}:\n    get_weather(location=city)\n```"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {percentile(ms, 0.99):.1f} | "
        f"{max(ms):.1f} |"
    )


async def stage(requests: int, pause: float) -> list[str]:
    toolset = build_toolset([WEATHER])
    work = tempfile.mkdtemp(prefix="toolcode-bench-")
    pool = KernelPool(Limits.from_env())
    pool = KernelPool(Limits(**{**pool.limits.__dict__, "directory": work}))
    pool.warm()

    executions: list[Execution] = []

    async def execute(code: str, ts: Toolset, known: object) -> tuple[LiteralCall, ...]:
        execution = await run_code(code, ts, pool)
        executions.append(execution)
        return execution.calls

    await asyncio.sleep(3)  # spares up
    literal: list[float] = []
    warm: list[float] = []
    waits: list[float] = []
    for _ in range(requests):
        started = time.perf_counter()
        reply = interpret(LITERAL, toolset)
        literal.append(time.perf_counter() - started)
        assert len(reply.tool_calls) == 3
        started = time.perf_counter()
        reply = await interpret_executing(LOOP, toolset, execute)
        warm.append(time.perf_counter() - started)
        assert len(reply.tool_calls) == 3
        await asyncio.sleep(pause)
    burst: list[float] = []
    for _ in range(max(10, requests // 3)):
        started = time.perf_counter()
        execution = await run_code(LOOP.split("\n", 1)[1].rsplit("```", 1)[0], toolset, pool)
        burst.append(time.perf_counter() - started)
        waits.append(execution.waited)
    spare = [e.seconds for e in executions if e.waited < 0.001]
    stats = pool.describe()
    await pool.aclose()
    shutil.rmtree(work, ignore_errors=True)
    return [
        "| stage | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        summary("literal path (AST)", literal),
        summary("kernel path, warm pool (all)", warm),
        summary("  of which the execution itself, a spare was ready", spare),
        summary("  of which waiting for a kernel start", [e.waited for e in executions]),
        summary("kernel path, back-to-back (pool exhausted)", burst),
        summary("  of which waiting for a kernel start", waits),
        "",
        f"pool: {stats}",
    ]


def proxy(requests: int, pause: float) -> list[str]:
    import openai

    from tests.conftest import MASTER_KEY, SANDBOX_DIR, start_proxy, stop_proxy
    from tests.fake_upstream import FakeUpstream, Scripted

    upstream = FakeUpstream().start()
    config = (
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/fake-bench\n"
        f"      api_base: {upstream.url}\n"
        "      api_key: none\n"
        "    model_info:\n      toolcode: {enabled: true, execution: auto}\n"
        'litellm_settings:\n  callbacks: ["litellm_toolcode.proxy_handler_instance"]\n'
        f"general_settings:\n  master_key: {MASTER_KEY}\n"
    )
    workdir = Path(tempfile.mkdtemp(prefix="toolcode-bench-proxy-"))
    running = start_proxy(config, workdir)
    client = openai.OpenAI(base_url=f"{running.url}/v1", api_key=MASTER_KEY, max_retries=0)
    timings: dict[str, list[float]] = {"literal": [], "loop": []}
    try:
        for i in range(requests + 3):
            for kind, answer in (("literal", LITERAL), ("loop", LOOP)):
                key = f"bench-{uuid.uuid4().hex[:12]}"
                upstream.script(key, Scripted(content=answer))
                started = time.perf_counter()
                response = client.chat.completions.create(
                    model="bench",
                    messages=[{"role": "user", "content": f"weather [{key}]"}],
                    tools=[WEATHER],  # type: ignore[list-item]
                )
                elapsed = time.perf_counter() - started
                assert len(response.choices[0].message.tool_calls or []) == 3
                if i >= 3:  # warm-up: first requests build caches and start the pool
                    timings[kind].append(elapsed)
            time.sleep(pause)
    finally:
        stop_proxy(running)
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(SANDBOX_DIR, ignore_errors=True)
    added = [b - a for a, b in zip(timings["literal"], timings["loop"], strict=True)]
    return [
        "| through the proxy | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        summary("literal answer", timings["literal"]),
        summary("loop answer (kernel)", timings["loop"]),
        summary("added by the kernel path (paired)", added),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--pause", type=float, default=1.5)
    parser.add_argument("--skip-proxy", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    lines = [
        f"# kernel path, {time.strftime('%Y-%m-%d %H:%M')}",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {load[0]:.1f} at start; pool {os.environ['TOOLCODE_POOL_SIZE']} spares, "
        f"pause {args.pause} s between requests",
        "",
        *asyncio.run(stage(args.requests, args.pause)),
    ]
    if not args.skip_proxy:
        lines += ["", *proxy(args.requests, args.pause)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
