"""What the plugin costs: the plain LiteLLM proxy vs the proxy with litellm-toolcode, in one run,
on the same fake upstream (its own process, 127.0.0.1 only).

- added latency, p50/p99, 1 tool and 20 tools, non-streaming and streaming (literal path);
  streaming twice: against a native call in one upstream delta, and against a native call
  whose arguments stream token by token, in as many upstream deltas as the plugin's code
  answer (llama.cpp and vLLM stream tool calls so), for the same LiteLLM parsing work;
- on an upstream streaming at a model's pace (4 characters every 20 ms): the time to the first
  prose token of a prose answer, and to the first tool-call delta of a three-call answer (plain
  native streaming vs the plugin, with one repair round allowed and with none: only without
  can calls go out before the answer ends, early.py);
- throughput at 1, 8 and 32 concurrent clients, in interleaved rounds (each round every proxy,
  in a rotating order) and as the median of the per-round ratios;
- proxy memory (RSS) after 100 and after N mixed requests, plain and plugin side by side.

A third proxy is a control: LiteLLM with a callback that overrides the plugin's three hooks and
does nothing in them, for the share of the cost that is LiteLLM's callback machinery itself. On
the paced prose stream it runs twice: as is, and on the alias ``bench-held``, where it holds the
upstream's first, content-less chunk (as a stream that sends nothing before its first prose
does): LiteLLM starts the HTTP response only with the first chunk a callback yields.
Plain LiteLLM passes the tools through and the upstream answers with a native tool call; with
the plugin the upstream answers with the same call written as Python. Run:

    .venv/bin/python -m bench.latency [--requests 300] [--paced-requests 100]
        [--throughput-requests 300] [--rounds 5] [--memory-requests 10000]
        [--sections latency paced throughput memory] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import upstream_server
from bench._report import machine, sse_chunks, stop_all, write_report
from tests.conftest import MASTER_KEY, Proxy, start_proxy

# A control, not a plugin: a CustomLogger overriding the plugin's three hooks with nothing in
# them, for what merely being a callback on these paths costs in LiteLLM itself.
NOOP_CALLBACK = """from litellm.integrations.custom_logger import CustomLogger


class Noop(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        return data

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        return None

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict, response, request_data
    ):
        holding = request_data.get("model") == "bench-held"
        async for chunk in response:
            if holding and not any(getattr(c.delta, "content", None) for c in chunk.choices):
                continue  # the control that yields nothing before the first content
            holding = False
            yield chunk


noop_instance = Noop()
"""


def config(upstream: str, plugin: bool, callback: str | None = None) -> str:
    """``bench``: the alias every row uses; ``bench-norepair``: the same with no repair round
    (the plugin's default allows one), for calls sent before the end; ``bench-held``: for the
    do-nothing control holding the first chunk. ``callback``: another callback instead of the
    plugin's (the do-nothing control)."""

    def entry(alias: str, toolcode: str) -> str:
        text = (
            f"  - model_name: {alias}\n"
            "    litellm_params:\n"
            "      model: openai/fake-bench\n"
            f"      api_base: {upstream}\n"
            "      api_key: none\n"
        )
        return text + (f"    model_info:\n      toolcode: {toolcode}\n" if plugin else "")

    text = "model_list:\n" + entry("bench", "{enabled: true}")
    text += entry("bench-norepair", "{enabled: true, max_repair_rounds: 0}")
    text += entry("bench-held", "{enabled: false}")
    callback = "litellm_toolcode.proxy_handler_instance" if plugin else callback
    if callback:
        text += f'litellm_settings:\n  callbacks: ["{callback}"]\n'
    return text + f"general_settings:\n  master_key: {MASTER_KEY}\n"


def start(name: str, upstream: str, workdir: Path) -> Proxy:
    """The ``plain``, ``plugin`` or ``noop`` (do-nothing callback) proxy."""
    workdir.mkdir(parents=True)
    if name == "noop":
        (workdir / "noop_callback.py").write_text(NOOP_CALLBACK)  # found beside the config
        return start_proxy(config(upstream, False, "noop_callback.noop_instance"), workdir)
    return start_proxy(config(upstream, name == "plugin"), workdir)


def tools(count: int) -> list[dict[str, Any]]:
    first = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    }
    others = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{n}",
                "description": f"Tool number {n}, which does something else",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string"},
                        "limit": {"type": "integer", "minimum": 1},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["query"],
                },
            },
        }
        for n in range(count - 1)
    ]
    return [first, *others]


def body(
    n_tools: int, stream: bool, prose: bool = False, tags: str = "", model: str = "bench"
) -> dict[str, Any]:
    text = "What's the weather in Paris?" + (" [prose]" if prose else "") + tags
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "tools": tools(n_tools),
    }
    if stream:
        payload["stream"] = True
    return payload


async def one(client: httpx.AsyncClient, payload: dict[str, Any]) -> float:
    start = time.perf_counter()
    if payload.get("stream"):
        async with client.stream("POST", "/v1/chat/completions", json=payload) as response:
            response.raise_for_status()
            async for _ in response.aiter_bytes():
                pass
    else:
        response = await client.post("/v1/chat/completions", json=payload)
        response.raise_for_status()
        choice = response.json()["choices"][0]
        if not choice["message"].get("tool_calls") and "[prose]" not in json.dumps(payload):
            raise RuntimeError(f"expected tool calls, got {choice}")
    return time.perf_counter() - start


async def first(
    client: httpx.AsyncClient, payload: dict[str, Any], field: str
) -> tuple[float, float]:
    """(seconds to the first delta carrying ``field``: content or tool_calls, to the end)."""
    start = time.perf_counter()
    seen = None
    async for chunk in sse_chunks(client, payload):
        if seen is None and any((c.get("delta") or {}).get(field) for c in chunk["choices"]):
            seen = time.perf_counter() - start
    if seen is None:
        raise RuntimeError(f"no {field} delta in the stream of {payload['model']}")
    return seen, time.perf_counter() - start


def client_for(proxy: Proxy) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=proxy.url,
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=60,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(proxies: dict[str, Proxy], requests: int) -> list[str]:
    rows = [
        "| request | plain p50 ms | plugin p50 ms | p50 ratio | plain p99 ms | plugin p99 ms "
        "| do-nothing callback p50 ms | its ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # The prose row is a control: both upstreams stream the same prose in the same deltas, so
    # what differs is the plugin's own work per delta (a native call is one delta, its code ~8).
    # The split rows give the native call as many upstream deltas as the code (upstream_server).
    shapes = [(n, stream, False, "") for n in (1, 20) for stream in (False, True)]
    split = [(n, True, False, " [split]") for n in (1, 20)]
    for n_tools, stream, prose, tags in [*shapes, (1, True, True, ""), *split]:
        payload = body(n_tools, stream, prose, tags)
        times: dict[str, list[float]] = {name: [] for name in proxies}
        clients = {name: client_for(p) for name, p in proxies.items()}
        for name in times:  # warm-up: codegen cache, connections, LiteLLM's own caches
            for _ in range(20):
                await one(clients[name], payload)
        for _ in range(requests):  # interleaved, so drift hits both alike
            for name in times:
                times[name].append(await one(clients[name], payload))
        for c in clients.values():
            await c.aclose()
        plain, plugin = times["plain"], times["plugin"]
        p50a, p50b = statistics.median(plain) * 1e3, statistics.median(plugin) * 1e3
        p50c = statistics.median(times["noop"]) * 1e3
        native = f", native in {upstream_server.code_deltas()} deltas" if tags else ""
        rows.append(
            f"| {n_tools} tool{'s' if n_tools > 1 else ''}, "
            f"{'stream' if stream else 'json'}{', prose' if prose else ''}{native} | "
            f"{p50a:.1f} | {p50b:.1f} | "
            f"{p50b / p50a:.3f} | {pct(plain, 0.99) * 1e3:.1f} | "
            f"{pct(plugin, 0.99) * 1e3:.1f} | {p50c:.1f} | {p50c / p50a:.3f} |"
        )
    code = upstream_server.code_deltas()
    return [
        *rows,
        "",
        f"Upstream deltas of a tool-call answer: the plugin's is always its Python, {code} "
        f"content deltas. Plain LiteLLM's native call is one delta in the `stream` rows, and "
        f"{code} in the `native in {code} deltas` rows (its name, then its arguments in "
        f"{code - 1} pieces, as native servers stream them): there both parse as many deltas.",
    ]


_NAMES = {"plain": "plain", "plugin": "plugin", "noop": "do-nothing callback"}


async def paced(proxies: dict[str, Proxy], requests: int) -> list[str]:
    rows = [
        "| answer | proxy (alias) | first p50 ms | first p90 ms | end p50 ms | first ratio |",
        "|---|---|---|---|---|---|",
    ]
    # (proxy, alias) runs per case; the do-nothing control's share is LiteLLM's own
    cases = [
        (
            "prose: first content",
            "content",
            body(1, True, True, " [paced]"),
            [("noop", "bench"), ("noop", "bench-held"), ("plugin", "bench")],
        ),
        (
            "3 calls: first tool-call delta",
            "tool_calls",
            body(1, True, False, " [paced] [three]"),
            [("noop", "bench"), ("plugin", "bench"), ("plugin", "bench-norepair")],
        ),
    ]
    for label, field, payload, others in cases:
        runs = [("plain", "bench"), *others]
        times: dict[tuple[str, str], list[tuple[float, float]]] = {run: [] for run in runs}
        clients = {name: client_for(p) for name, p in proxies.items()}
        for _ in range(requests + 3):  # interleaved, so drift hits all alike; 3 to warm up
            for name, alias in runs:
                times[name, alias].append(
                    await first(clients[name], {**payload, "model": alias}, field)
                )
        for c in clients.values():
            await c.aclose()
        firsts = {run: [f for f, _ in pairs[3:]] for run, pairs in times.items()}
        base = statistics.median(firsts["plain", "bench"])
        for run, values in firsts.items():
            p50 = statistics.median(values)
            end = statistics.median(t for _, t in times[run][3:])
            ratio = "" if run[0] == "plain" else f"{p50 / base:.3f}"
            rows.append(
                f"| {label} | {_NAMES[run[0]]} ({run[1]}) | {p50 * 1e3:.1f} | "
                f"{pct(values, 0.9) * 1e3:.1f} | {end * 1e3:.1f} | {ratio} |"
            )
    return rows


CLIENTS = (1, 8, 32)


async def timed(proxy: Proxy, requests: int, clients: int) -> float:
    """``requests`` non-streaming 1-tool requests from ``clients`` concurrent clients: seconds."""
    payload = body(1, False)
    async with client_for(proxy) as client:
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                await one(client, payload)

        start_time = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - start_time


def rotation(
    names: list[str], rounds: int, clients: tuple[int, ...] | list[int]
) -> Iterator[tuple[int, int, str]]:
    """(round, clients, name): every name in every round, in an order that rotates by round, so
    the machine's drift falls on all of them: measured once each, one after the other, the
    plugin gave 0.85-0.91x of plain that did not reproduce."""
    for round_number in range(rounds):
        shift = round_number % len(names)
        for concurrency in clients:
            for name in names[shift:] + names[:shift]:
                yield round_number, concurrency, name


async def throughput(proxies: dict[str, Proxy], requests: int, rounds: int) -> list[str]:
    names = list(proxies)
    rates: dict[tuple[str, int], list[float]] = {}
    for proxy in proxies.values():
        await timed(proxy, 100, 8)  # warm-up
    for _, concurrency, name in rotation(names, rounds, CLIENTS):
        await timed(proxies[name], 2 * concurrency, concurrency)  # connections up
        seconds = await timed(proxies[name], requests, concurrency)
        rates.setdefault((name, concurrency), []).append(requests / seconds)
    rows = [
        "| clients | plain req/s | plugin req/s | ratio | do-nothing callback req/s | its ratio |",
        "|---|---|---|---|---|---|",
    ]

    def ratio(name: str, concurrency: int) -> float:
        pairs = zip(rates[name, concurrency], rates["plain", concurrency], strict=True)
        return statistics.median(a / b for a, b in pairs)

    for concurrency in CLIENTS:
        median = {name: statistics.median(rates[name, concurrency]) for name in names}
        rows.append(
            f"| {concurrency} | {median['plain']:.0f} | {median['plugin']:.0f} | "
            f"{ratio('plugin', concurrency):.3f} | {median['noop']:.0f} | "
            f"{ratio('noop', concurrency):.3f} |"
        )
    return rows


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def memory_of(proxy: Proxy, total: int) -> dict[int, float]:
    mix = [body(1, False), body(20, False), body(1, True), body(20, True), body(1, False, True)]
    done = 0
    readings = {}
    async with client_for(proxy) as client:

        async def run(count: int) -> None:
            nonlocal done
            queue = iter(range(count))

            async def worker() -> None:
                nonlocal done
                for _ in queue:
                    await one(client, mix[done % len(mix)])
                    done += 1

            await asyncio.gather(*(worker() for _ in range(8)))

        await run(100)
        readings[100] = rss_mib(proxy.process.pid)
        await run(total - 100)
        readings[total] = rss_mib(proxy.process.pid)
    return readings


async def memory(proxies: dict[str, Proxy], total: int) -> list[str]:
    readings = {name: await memory_of(proxies[name], total) for name in ("plain", "plugin")}
    plain, plugin = readings["plain"], readings["plugin"]
    return [
        "| requests | plain proxy RSS MiB | plugin proxy RSS MiB |",
        "|---|---|---|",
        *(f"| {n} | {plain[n]:.1f} | {plugin[n]:.1f} |" for n in plain),
        f"| growth | {plain[total] - plain[100]:+.1f} | {plugin[total] - plugin[100]:+.1f} |",
    ]


async def main_async(args: argparse.Namespace) -> str:
    upstream, url = upstream_server.spawn()
    proxies: dict[str, Proxy] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("plain", "plugin", "noop"):
                proxies[name] = start(name, url, Path(tmp) / name)
            sections: list[str] = []
            if "latency" in args.sections:
                sections += [
                    "## Added latency (sequential requests, literal path)",
                    *await latency(proxies, args.requests),
                    "",
                ]
            if "paced" in args.sections:
                sections += [
                    f"## Paced upstream ({args.paced_requests} requests per row, streaming)",
                    *await paced(proxies, args.paced_requests),
                    "",
                ]
            if "throughput" in args.sections:
                sections += [
                    f"## Throughput ({args.rounds} interleaved rounds of "
                    f"{args.throughput_requests} requests per proxy and client count, 1 tool, "
                    "non-streaming; medians)",
                    *await throughput(proxies, args.throughput_requests, args.rounds),
                    "",
                ]
            if "memory" in args.sections:
                sections += [
                    "## Memory (mixed: 1/20 tools, json/stream, prose)",
                    *await memory(proxies, args.memory_requests),
                    "",
                ]
    finally:
        stop_all(proxies.values(), upstream)
    head = (
        f"# bench/latency.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Machine: {machine()}; fake upstream on 127.0.0.1 "
        f"(own process); {args.requests} requests per latency row; sections: "
        f"{', '.join(args.sections)}.\n"
    )
    return head + "\n" + "\n".join(sections)


SECTIONS = ("latency", "paced", "throughput", "memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--throughput-requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    # 100: at 30 the first prose token's p50 is known to about 1 ms (its p90 lies 5 ms above),
    # half the 1.05x margin of about 2 ms
    parser.add_argument("--paced-requests", type=int, default=100)
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="what to run"
    )
    parser.add_argument(
        "--out", type=Path, help="the report file (default: bench/results/latency-<UTC date>.md)"
    )
    args = parser.parse_args()
    write_report("latency", asyncio.run(main_async(args)), args.out)


if __name__ == "__main__":
    main()
