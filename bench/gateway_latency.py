"""What running code on a Kernel Gateway costs, against local kernels, in one run.

Starts a real gateway as ``make gateway`` does (and a second one without the TCP_NODELAY fix,
``TOOLCODE_GATEWAY_NODELAY=0``), then for each backend:

1. start: a kernel from nothing to ready (created, channels open, prelude loaded), sequential;
2. execute: one loop cell (3 recorded calls) on a warm spare, sequential with pauses so a spare
   is always ready: the time a request spends in the sandbox.

    .venv/bin/python -m bench.gateway_latency [--runs 30] [--starts 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time

from litellm_toolcode.sandbox import KernelPool, Limits, run_code
from litellm_toolcode.sandbox.backend import Backend, LocalBackend
from litellm_toolcode.sandbox.gateway import GatewayBackend
from litellm_toolcode.schema_code import build_toolset
from tests.gateway_helpers import start_gateway, stop_gateway
from tests.test_proxy import WEATHER

LOOP = "for city in ['Paris', 'Rome', 'Oslo']:\n    get_weather(location=city)"


def row(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {p90:.1f} | {max(ms):.1f} |"


async def measure(name: str, backend: Backend, runs: int, starts: int) -> list[str]:
    limits = Limits(pool_size=1, timeout=10, directory=tempfile.mkdtemp(prefix="tc-bench-"))
    started: list[float] = []
    for number in range(starts):
        kernel = backend.kernel(limits, 10_000 + number)
        t = time.monotonic()
        await kernel.start()
        started.append(time.monotonic() - t)
        await kernel.close()
    pool = KernelPool(limits, backend)
    pool.warm()
    toolset = build_toolset([WEATHER])
    executed: list[float] = []
    for _ in range(runs):
        while pool.describe()["spares"] < 1:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the previous kernel's delete is done, the machine quiet
        execution = await run_code(LOOP, toolset, pool)
        assert len(execution.calls) == 3
        executed.append(execution.seconds)
    await pool.aclose()
    return [row(f"{name}: start", started), row(f"{name}: execute", executed)]


async def main(runs: int, starts: int) -> None:
    rows = await measure("local", LocalBackend(), runs, starts)
    for nodelay in ("1", "0"):
        os.environ["TOOLCODE_GATEWAY_NODELAY"] = nodelay
        gateway = start_gateway()
        try:
            label = "gateway" if nodelay == "1" else "gateway, Nagle on"
            rows += await measure(label, GatewayBackend(gateway.settings), runs, starts)
        finally:
            stop_gateway(gateway)
    os.environ.pop("TOOLCODE_GATEWAY_NODELAY", None)
    print(f"{platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    print("| path | n | median ms | p90 ms | max ms |\n|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.starts))
