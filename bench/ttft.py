"""Time to first content token while streaming: the plain LiteLLM alias vs the plugin alias, in
one run, on the same fake upstream (its own process, 127.0.0.1 only).

The upstream streams its answer at a model's pace (``--token-ms`` per 4-character delta) so
that holding text back would show. Requests carry one tool in both cases; the upstream answers:

- ``prose``: a plain prose answer (the plugin must stream it as it comes);
- ``prose+code``: a sentence of prose, then the call in a fenced block (the plugin streams the
  sentence, holds the block and sends the call as tool-call deltas at the end);
- ``prose, no pacing``: the prose answer with no delay per delta (the plugin's own overhead).

For each: median and p90 of the time to the first non-empty content delta and of the time to
the end of the stream, over ``--requests`` interleaved requests per alias. Run:

    .venv/bin/python -m bench.ttft [--requests 30] [--token-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._report import machine, sse_chunks, write_report
from bench.upstream_server import serve_forever
from tests.conftest import MASTER_KEY, Proxy, free_port, start_proxy, stop_proxy
from tests.fake_upstream import Scripted

PROSE = (
    "The weather in Paris is mild today, around 18 degrees with a light breeze from the west. "
    "Clouds will gather in the afternoon, and there is a small chance of rain after six, so a "
    "light jacket is a good idea if you plan to walk along the Seine this evening."
)
LEAD = "Let me look that up for you right away.\n\n"
CALL = "```python\n# tool: get_weather\nget_weather(location='Paris')\n```"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def config(upstream: str) -> str:
    def entry(alias: str, plugin: bool) -> str:
        text = (
            f"  - model_name: {alias}\n"
            "    litellm_params:\n"
            f"      model: openai/fake-{alias}\n"
            f"      api_base: {upstream}\n"
            "      api_key: none\n"
        )
        return text + ("    model_info:\n      toolcode: {enabled: true}\n" if plugin else "")

    return (
        "model_list:\n"
        + entry("plain", False)
        + entry("coder", True)
        + 'litellm_settings:\n  callbacks: ["litellm_toolcode.proxy_handler_instance"]\n'
        + f"general_settings:\n  master_key: {MASTER_KEY}\n"
    )


def serve(port: int, token_ms: float) -> None:
    """The upstream process: the answer is named in the last user message."""

    def respond(body: dict[str, Any]) -> Scripted:
        last = str((body.get("messages") or [{}])[-1].get("content"))
        delay = 0.0 if "[fast]" in last else token_ms / 1000
        text = LEAD + CALL if "[code]" in last else PROSE
        return Scripted(content=text, chunk_size=4, chunk_delay=delay)

    serve_forever(port, respond)


async def one(client: httpx.AsyncClient, alias: str, tag: str) -> tuple[float, float, str]:
    """(seconds to the first content delta, seconds to the end, the content)."""
    payload = {
        "model": alias,
        "stream": True,
        "messages": [{"role": "user", "content": f"Weather in Paris? {tag}"}],
        "tools": [TOOL],
    }
    start = time.perf_counter()
    first = None
    content = []
    async for chunk in sse_chunks(client, payload):
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                first = first if first is not None else time.perf_counter() - start
                content.append(text)
    if first is None:
        raise RuntimeError(f"{alias} {tag}: no content")
    return first, time.perf_counter() - start, "".join(content)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(proxy: Proxy, requests: int) -> list[str]:
    rows = [
        "| answer | alias | TTFT p50 ms | TTFT p90 ms | end p50 ms | TTFT ratio plugin/plain |",
        "|---|---|---|---|---|---|",
    ]
    async with httpx.AsyncClient(
        base_url=proxy.url, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60
    ) as client:
        for label, tag in (
            ("prose", "[prose]"),
            ("prose+code", "[code]"),
            ("prose, no pacing", "[fast]"),
        ):
            times: dict[str, list[tuple[float, float]]] = {"plain": [], "coder": []}
            for alias in times:  # warm-up
                for _ in range(3):
                    await one(client, alias, tag)
            for _ in range(requests):  # interleaved, so drift hits both alike
                for alias in times:
                    first, total, content = await one(client, alias, tag)
                    expected = LEAD.strip() if alias == "coder" and tag == "[code]" else None
                    if content != (expected or (LEAD + CALL if tag == "[code]" else PROSE)):
                        raise RuntimeError(f"{alias} {tag}: unexpected content {content!r}")
                    times[alias].append((first, total))
            p50 = {a: statistics.median(f for f, _ in t) * 1e3 for a, t in times.items()}
            for alias, pairs in times.items():
                firsts = [f for f, _ in pairs]
                ratio = f"{p50['coder'] / p50['plain']:.2f}" if alias == "coder" else ""
                rows.append(
                    f"| {label} | {alias} | {p50[alias]:.1f} | {pct(firsts, 0.9) * 1e3:.1f} | "
                    f"{statistics.median(t for _, t in pairs) * 1e3:.1f} | {ratio} |"
                )
    return rows


async def main_async(args: argparse.Namespace) -> str:
    port = free_port()
    upstream = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.ttft",
            "--serve",
            str(port),
            "--token-ms",
            str(args.token_ms),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert upstream.stdout is not None
    upstream.stdout.readline()
    proxy = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proxy = start_proxy(config(f"http://127.0.0.1:{port}/v1"), Path(tmp))
            rows = await measure(proxy, args.requests)
    finally:
        if proxy is not None:
            stop_proxy(proxy)
        upstream.terminate()
        upstream.wait()
    deltas = len(PROSE) // 4 + 1
    head = (
        f"# bench/ttft.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Machine: {machine()}; one proxy with both aliases; fake upstream in its "
        f"own process streaming 4-character deltas every {args.token_ms:g} ms (the prose answer "
        f"is {deltas} deltas, so ~{deltas * args.token_ms:.0f} ms); {args.requests} requests per "
        "row. `plain` passes the tool through (the upstream streams prose either way); `coder` "
        "is the plugin.\n"
    )
    return head + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--token-ms", type=float, default=20.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.token_ms)
        return
    write_report("ttft", asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
