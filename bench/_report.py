"""Where benchmarks leave their results: bench/results/<name>-<UTC date>.md."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"


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
