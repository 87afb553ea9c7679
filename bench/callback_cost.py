"""What registering a callback costs in LiteLLM itself (issue 19): the same proxy started several
ways on one fake upstream (bench/upstream_server.py, its own process), non-streaming, one tool.

Variants (``--variants``, comma-separated):

- ``plain``: no callback in ``litellm_settings``;
- ``noop``: a do-nothing CustomLogger overriding the plugin's three hooks (bench/latency.py's
  control, the same class);
- ``noop-success``: ``noop`` registered under ``litellm_settings.success_callback`` instead of
  ``callbacks`` (are its hooks still called?);
- ``noop-pre``: a do-nothing CustomLogger overriding only ``async_pre_call_hook``;
- ``noop-bare``: a CustomLogger subclass that overrides nothing (LiteLLM's hook loops still see
  it in ``litellm.callbacks``);
- ``noop20``: twenty distinct instances of ``noop``'s class, so the cost of one is resolved
  above the spread between processes ((noop20 - plain) / 20);
- ``plugin``: litellm-toolcode as shipped (``model_info.toolcode.enabled`` on the alias).

Two measurements:

- ``counts``: each proxy runs under cProfile (bench/_profiled_proxy.py, main thread, where the
  event loop runs every hook and logging handler) for ``--requests`` requests; the report lists
  the functions whose calls per request differ from ``plain`` (what LiteLLM does because the
  callback is registered) and the calls per request in all.
- ``rate``: rounds of ``--requests`` requests per variant at each ``--clients``, the variants
  interleaved (the order rotates every round, so drift hits all alike): requests per second
  (wall clock) and the proxy process's CPU seconds per request (``/proc/<pid>/stat``, all its
  threads), medians over ``--rounds``. Wall-clock rates are only a result on an idle machine.

Run (``flock /work/heavy.lock`` around ``rate`` on a shared machine):

    .venv/bin/python -m bench.callback_cost counts [--requests 300] [--out FILE]
    .venv/bin/python -m bench.callback_cost rate [--rounds 5] [--requests 400] [--clients 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import upstream_server
from bench.latency import NOOP_CALLBACK, rotation
from bench.latency import timed as run
from tests.conftest import MASTER_KEY, Proxy, start_proxy, stop_proxy

NOOP_PRE = """from litellm.integrations.custom_logger import CustomLogger


class NoopPre(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        return data


noop_instance = NoopPre()
"""

NOOP_BARE = """from litellm.integrations.custom_logger import CustomLogger


class NoopBare(CustomLogger):
    pass


noop_instance = NoopBare()
"""

# Twenty do-nothing callbacks, each its own class with bench/latency.py's three hooks in its
# body (LiteLLM's logging lists keep one instance per class): one's cost, times 20.
NOOP_20 = (
    NOOP_CALLBACK
    + """
_hooks = {key: value for key, value in vars(Noop).items() if key.startswith("async_")}
for _n in range(20):
    globals()[f"noop_{_n}"] = type(f"Noop{_n}", (CustomLogger,), dict(_hooks))()
"""
)

# name: (callback module written beside the config, or None; the callbacks' dotted names)
VARIANTS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "plain": (None, ()),
    "noop-success": (NOOP_CALLBACK, ("noop_callback.noop_instance",)),
    "noop": (NOOP_CALLBACK, ("noop_callback.noop_instance",)),
    "noop-pre": (NOOP_PRE, ("noop_callback.noop_instance",)),
    "noop-bare": (NOOP_BARE, ("noop_callback.noop_instance",)),
    "noop20": (NOOP_20, tuple(f"noop_callback.noop_{n}" for n in range(20))),
    "plugin": (None, ("litellm_toolcode.proxy_handler_instance",)),
}
LAUNCHER = Path(__file__).with_name("_profiled_proxy.py")


def _variant(name: str) -> str:
    """``plain~2``: a second process of ``plain`` (same config), for the spread between
    processes of one configuration."""
    return name.split("~", 1)[0]


def config(upstream: str, name: str) -> str:
    """bench/latency.py's config: one alias ``bench``; the plugin's has toolcode enabled."""
    name = _variant(name)
    text = (
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/fake-bench\n"
        f"      api_base: {upstream}\n"
        "      api_key: none\n"
    )
    if name == "plugin":
        text += "    model_info:\n      toolcode: {enabled: true}\n"
    callbacks = VARIANTS[name][1]
    if callbacks:
        setting = "success_callback" if name == "noop-success" else "callbacks"
        text += f"litellm_settings:\n  {setting}: {list(callbacks)}\n"
    return text + f"general_settings:\n  master_key: {MASTER_KEY}\n"


PROXY_CPU: int | None = None  # --pin: the core every proxy runs on (the rest stay off it)


def start(name: str, upstream: str, workdir: Path, profile_out: Path | None = None) -> Proxy:
    workdir.mkdir(parents=True)
    module = VARIANTS[_variant(name)][0]
    if module is not None:
        (workdir / "noop_callback.py").write_text(module)  # found beside the config
    if profile_out is None:
        pin = ("taskset", "-c", str(PROXY_CPU)) if PROXY_CPU is not None else ()
        return start_proxy(config(upstream, name), workdir, prefix=pin)
    return start_proxy(
        config(upstream, name),
        workdir,
        prefix=(sys.executable, str(LAUNCHER)),
        env={"TOOLCODE_PROFILE_OUT": str(profile_out)},
    )


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of the process, all threads (exited ones included), or of one thread."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _key(entry: tuple[str, int, str]) -> str:
    path, line, function = entry
    if path.endswith("/noop_callback.py"):
        path = "noop_callback.py"  # written to a temporary directory per run
    return f"{function} ({path.split('site-packages/')[-1].split('/wt-cb/')[-1]}:{line})"


def _thread_key(key: str) -> str:
    where, name = key.rsplit(" ", 1)
    path, line = where.rsplit(":", 1)
    return _key((path, int(line), name))


def _calls(path: Path, requests: int) -> tuple[dict[str, float], float]:
    stats = pstats.Stats(str(path))
    per: dict[str, float] = {}
    for entry, (_, ncalls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        key = _key(entry)
        if key.startswith("<built-in method __new__ of type object at"):
            key = "<built-in method __new__ of type object>"  # its address varies by process
        per[key] = per.get(key, 0.0) + ncalls / requests
    return per, stats.total_calls / requests  # type: ignore[attr-defined]


async def counts(
    url: str, names: list[str], requests: int, tmp: Path, keep: Path | None, top: int
) -> list[str]:
    per: dict[str, dict[str, float]] = {}
    per_thread: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for name in names:
        out = tmp / f"{name}.pstats"
        proxy = start(name, url, tmp / name, profile_out=out)
        try:
            await run(proxy, 50, 8)  # warm-up: first-request setup is not per request
            proxy.process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.5)
            await run(proxy, requests, 8)
            proxy.process.send_signal(signal.SIGUSR2)
            for _ in range(100):
                await asyncio.sleep(0.1)
                if out.exists() and out.stat().st_size:
                    break
            await asyncio.sleep(0.5)
        finally:
            stop_proxy(proxy)
        per[name], totals[name] = _calls(out, requests)
        threads = json.loads(Path(f"{out}.threads.json").read_text())
        per_thread[name] = {_thread_key(k): n / requests for k, n in threads.items()}
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, keep / out.name)
            shutil.copy(f"{out}.threads.json", keep / f"{out.name}.threads.json")
    thread_totals = {n: sum(per_thread[n].values()) for n in names}
    lines = [
        "| variant | Python function calls per request, main thread | more than plain | "
        "in other threads | more than plain |",
        "|---|---|---|---|---|",
        *(
            f"| {n} | {totals[n]:.0f} | {totals[n] - totals['plain']:+.0f} | "
            f"{thread_totals[n]:.0f} | {thread_totals[n] - thread_totals['plain']:+.0f} |"
            for n in names
        ),
        "",
    ]
    lines += _diff_tables(per, names, top, "")
    lines += _diff_tables(per_thread, names, top, " (other threads)")
    return lines


def _diff_tables(
    per: dict[str, dict[str, float]], names: list[str], top: int, where: str
) -> list[str]:
    lines: list[str] = []
    base = per["plain"]
    for name in names:
        if name == "plain":
            continue
        rows = []
        for key in set(base) | set(per[name]):
            diff = per[name].get(key, 0.0) - base.get(key, 0.0)
            if abs(diff) >= 0.9:  # one call per request or more; the rest is warm-up noise
                rows.append((diff, key))
        rows.sort(key=lambda r: (-abs(r[0]), r[1]))
        left_out = max(0, len(rows) - top)
        rows = rows[:top]
        lines += [
            f"Functions called at least once more (or less) per request in `{name}` than in "
            f"`plain`{where}:",
            "",
            "| calls/req plain | calls/req this | function |",
            "|---|---|---|",
            *(f"| {base.get(k, 0.0):.2f} | {per[name].get(k, 0.0):.2f} | `{k}` |" for _, k in rows),
            *([f"({left_out} more functions left out.)"] if left_out else []),
            "",
        ]
    return lines


async def rates(
    url: str, names: list[str], rounds: int, requests: int, clients: list[int], tmp: Path
) -> list[str]:
    proxies = {name: start(name, url, tmp / name) for name in names}
    wall: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    main: dict[tuple[str, int], list[float]] = {}
    try:
        for proxy in proxies.values():
            await run(proxy, 100, 8)  # warm-up
        last_round = -1
        for round_number, concurrency, name in rotation(names, rounds, clients):
            if round_number != last_round:
                print(f"round {round_number + 1}/{rounds}", file=sys.stderr, flush=True)
                last_round = round_number
            proxy = proxies[name]
            await run(proxy, 2 * concurrency, concurrency)
            pid = proxy.process.pid
            before, before_main = cpu_seconds(pid), cpu_seconds(pid, pid)
            seconds = await run(proxy, requests, concurrency)
            used = cpu_seconds(pid) - before
            used_main = cpu_seconds(pid, pid) - before_main
            wall.setdefault((name, concurrency), []).append(requests / seconds)
            cpu.setdefault((name, concurrency), []).append(used / requests)
            main.setdefault((name, concurrency), []).append(used_main / max(used, 1e-9))
    finally:
        for proxy in proxies.values():
            stop_proxy(proxy)
    lines = [
        "| clients | variant | req/s median | req/s per round | ratio to plain (median of "
        "per-round ratios) | proxy CPU ms/request median | CPU ratio to plain | main thread's "
        "share of that CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for concurrency in clients:
        base_wall = wall["plain", concurrency]
        base_cpu = cpu["plain", concurrency]
        for name in names:
            w, c = wall[name, concurrency], cpu[name, concurrency]
            ratio = statistics.median(a / b for a, b in zip(w, base_wall, strict=True))
            cpu_ratio = statistics.median(a / b for a, b in zip(c, base_cpu, strict=True))
            lines.append(
                f"| {concurrency} | {name} | {statistics.median(w):.1f} | "
                f"{' '.join(f'{x:.0f}' for x in w)} | {ratio:.3f} | "
                f"{statistics.median(c) * 1e3:.2f} | {cpu_ratio:.3f} | "
                f"{statistics.median(main[name, concurrency]):.2f} |"
            )
    return lines


async def main_async(args: argparse.Namespace) -> str:
    names = args.variants.split(",")
    if names[0] != "plain":
        raise SystemExit("the first variant must be plain (the others are compared with it)")
    global PROXY_CPU
    if args.pin:
        cores = sorted(os.sched_getaffinity(0))
        PROXY_CPU = cores[-1]  # the proxies' core; this process and the upstream get the rest
        os.sched_setaffinity(0, set(cores[:-1]))
    upstream, url = upstream_server.spawn()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.mode == "counts":
                section = [
                    f"## Calls per request under cProfile ({args.requests} requests, 8 clients)",
                    "",
                    *await counts(url, names, args.requests, Path(tmp), args.keep, args.top),
                ]
            else:
                section = [
                    f"## Throughput, {args.rounds} interleaved rounds of {args.requests} "
                    "requests, 1 tool, non-streaming",
                    "",
                    *await rates(url, names, args.rounds, args.requests, args.clients, Path(tmp)),
                ]
    finally:
        upstream.terminate()
        upstream.wait()
    load = os.getloadavg()
    head = (
        f"# bench/callback_cost.py {args.mode}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Machine: {platform.machine()}, {platform.python_version()}, "
        f"{os.cpu_count()} cores"
        + (
            f" (proxies pinned to core {PROXY_CPU}, client and upstream on the others)"
            if PROXY_CPU is not None
            else ""
        )
        + ", load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; fake upstream on 127.0.0.1 (own "
        "process).\n"
    )
    return head + "\n" + "\n".join(section) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("counts", "rate"))
    parser.add_argument("--variants", default="plain,noop,noop-pre,noop-bare,plugin")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="rate: every proxy on the last core (taskset), the client and upstream on the others",
    )
    parser.add_argument("--top", type=int, default=60, help="counts: rows per variant")
    parser.add_argument("--keep", type=Path, default=None, help="counts: copy the pstats here")
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 300 if args.mode == "counts" else 400
    report = asyncio.run(main_async(args))
    if args.out is not None:
        args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
