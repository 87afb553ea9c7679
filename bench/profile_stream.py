"""Where the proxy's time goes: py-spy samples the plain and the plugin proxy under the same
load (bench/latency.py's fake upstream and requests), and the top frames are summarised.

Loads: ``stream`` (sequential streaming requests, 1 and 20 tools alternating) and ``saturate``
(8 clients, non-streaming, 1 tool). For each proxy and load, py-spy (``pip install
py-spy==0.4.3``) records raw collapsed stacks; the summary lists the frames with the most
samples, inclusive (on the stack) and by self time, and the share of samples under
litellm_toolcode. Run:

    .venv/bin/python -m bench.profile_stream [--seconds 20] [--rate 250]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import upstream_server
from bench._report import machine, stop_all, write_report
from bench.latency import body, client_for, config, one
from tests.conftest import Proxy, start_proxy

IDLE = ("select", "epoll", "poll (selectors", "_worker (concurrent", "wait (threading")


def _frame(raw: str) -> str:
    """``fn (path/to/module.py:12)`` -> ``fn (module.py)``: lines vary, functions do not."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(
        parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-2:]
    )
    return f"{name} ({short})"


def summarise(raw: Path, top: int) -> list[str]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = ours = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")[1:]]  # [0] is the thread
        if not frames or any(marker in frames[-1] for marker in IDLE):
            continue  # an idle thread or the loop waiting: not work
        count = int(count_text)
        total += count
        ours += count if any("litellm_toolcode" in f for f in frames) else 0
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    rows = [
        f"busy samples: {total}; under litellm_toolcode: {ours} "
        f"({100 * ours / max(total, 1):.1f}%)",
        "",
        "| inclusive % | frame |",
        "|---|---|",
        *(f"| {100 * n / total:.1f} | `{f}` |" for f, n in inclusive.most_common(top)),
        "",
        "| self % | frame |",
        "|---|---|",
        *(f"| {100 * n / total:.1f} | `{f}` |" for f, n in own.most_common(top)),
    ]
    return rows


async def load(proxy: Proxy, kind: str, seconds: float) -> int:
    done = 0
    deadline = time.monotonic() + seconds
    async with client_for(proxy) as client:
        if kind == "stream":
            payloads = [body(1, True), body(20, True)]
            while time.monotonic() < deadline:
                await one(client, payloads[done % 2])
                done += 1
            return done

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await one(client, body(1, False))
                done += 1

        await asyncio.gather(*(worker() for _ in range(8)))
    return done


async def main_async(args: argparse.Namespace, out_dir: Path) -> str:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    upstream, url = upstream_server.spawn()
    proxies: dict[str, Proxy] = {}
    sections = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("plain", "plugin"):
                proxies[name] = start_proxy(config(url, name == "plugin"), Path(tmp) / name)
            for kind in ("stream", "saturate"):
                for name, proxy in proxies.items():
                    await load(proxy, kind, 3)  # warm-up
                    raw = out_dir / f"profile-{kind}-{name}.txt"
                    recorder = subprocess.Popen(
                        [
                            spy,
                            "record",
                            "--pid",
                            str(proxy.process.pid),
                            "--format",
                            "raw",
                            "--rate",
                            str(args.rate),
                            "--duration",
                            str(args.seconds),
                            "--nonblocking",
                            "-o",
                            str(raw),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=(out_dir / f"py-spy-{kind}-{name}.log").open("w"),
                    )
                    count = await load(proxy, kind, args.seconds)
                    await asyncio.to_thread(recorder.wait)
                    sections += [
                        f"## {kind}, {name} ({count} requests in {args.seconds:g} s)",
                        "",
                        *summarise(raw, args.top),
                        "",
                    ]
    finally:
        stop_all(proxies.values(), upstream)
    head = (
        f"# bench/profile_stream.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Machine: {machine()}; py-spy {args.rate} Hz, {args.seconds:g} s per "
        "row, proxy main process only; idle frames (epoll, waiting workers) left out. `stream`: "
        "sequential streaming requests, 1 and 20 tools alternating; `saturate`: 8 clients, "
        "non-streaming, 1 tool.\n"
    )
    return head + "\n" + "\n".join(sections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="toolcode-profile-"))
    write_report("profile-stream", asyncio.run(main_async(args, out_dir)))
    print(f"raw stacks in {out_dir}")


if __name__ == "__main__":
    main()
