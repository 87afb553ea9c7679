"""Where benchmarks leave their results: bench/results/<name>-<UTC date>.md."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.conftest import Proxy

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    """The machine as the overhead reports name it (the cores this process may use)."""
    return (
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"{len(os.sched_getaffinity(0))} cores"
    )


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def stop_all(proxies: Iterable[Proxy], upstream: subprocess.Popen[bytes]) -> None:
    """Stop the benchmark's proxies, then its fake upstream."""
    from tests.conftest import stop_proxy

    for proxy in proxies:
        stop_proxy(proxy)
    upstream.terminate()
    upstream.wait()


def write_report(name: str, report: str, out: Path | None = None) -> Path:
    """Write ``report`` to ``out``, by default the dated results file for ``name``; print it,
    return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = out or RESULTS / f"{name}-{time.strftime('%Y-%m-%d', time.gmtime())}.md"
    out.write_text(report)
    print(report)
    print(f"written to {out}")
    return out


async def sse_chunks(client: httpx.AsyncClient, payload: dict[str, Any]) -> AsyncIterator[Any]:
    """The chat-completion chunks of one streamed request; an error event raises."""
    async with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            yield chunk
