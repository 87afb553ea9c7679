"""Shared helpers for the sandbox tests: a real pool on a background event loop (as in the
proxy), and host-side views of what the kernels left behind (processes, dirs)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from litellm_toolcode.answer import Reply, interpret_executing
from litellm_toolcode.results import Answered
from litellm_toolcode.sandbox import Execution, GatewaySettings, KernelPool, Limits, run_code
from litellm_toolcode.sandbox.gateway import GatewayBackend
from litellm_toolcode.schema_code import Toolset, build_toolset

T = TypeVar("T")


def tool(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool",
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOL_SPECS = [
    tool("note", {"text": {"type": "string"}}, ["text"]),
    tool(
        "get_weather",
        {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        ["location"],
    ),
]
TOOLS = build_toolset(TOOL_SPECS)


class LoopThread:
    """An event loop in a thread, holding one pool (local kernels, or ``gateway``'s): tests
    submit coroutines to it."""

    def __init__(self, limits: Limits, gateway: GatewaySettings | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.backend = "gateway" if gateway is not None else "local"
        self.pool: KernelPool = self.call(self._make(limits, gateway))

    @staticmethod
    async def _make(limits: Limits, gateway: GatewaySettings | None) -> KernelPool:
        pool = KernelPool(limits, GatewayBackend(gateway) if gateway is not None else None)
        pool.warm()
        return pool

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 90) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(
        self, code: str, toolset: Toolset = TOOLS, known: Mapping[str, str] | None = None
    ) -> Execution:
        return self.call(run_code(code, toolset, self.pool, known))

    def interpret(
        self, text: str, toolset: Toolset = TOOLS, answered: Answered | None = None
    ) -> Reply:
        async def execute(code: str, ts: Toolset, known: Mapping[str, str]) -> Any:
            return (await run_code(code, ts, self.pool, known)).calls

        return self.call(interpret_executing(text, toolset, execute, answered=answered))

    def settle(self) -> None:
        """Wait until every used kernel is killed and its dir removed (background closes)."""

        async def drain() -> None:
            for _ in range(400):
                tasks = [t for t in self.pool._tasks if "_close" in repr(t.get_coro())]
                if not tasks:
                    return
                await asyncio.gather(*tasks, return_exceptions=True)

        self.call(drain())

    def close(self) -> None:
        self.call(self.pool.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (kernels carry their work dir in argv)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def processes_of_uid(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                found.append(int(entry))
    return found
