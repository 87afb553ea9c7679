"""The seam between the pool and where kernels run: a backend makes kernels; a kernel starts
(hardened, prelude loaded), executes exactly once, and is closed. ``run.py`` (the cell, the
report's checks, the limits' errors) and ``pool.py`` (spares, waits, refill) are shared.

- ``LocalBackend``: kernels on this host behind ``launcher.py`` (``kernel.py``).
- ``gateway.GatewayBackend``: kernels on a Jupyter Kernel Gateway whose kernelspec wraps the
  same launcher (``gateway_kernel.py``), over REST and one WebSocket per kernel.
"""

from __future__ import annotations

from typing import Any, Protocol

import zmq.asyncio

from .kernel import Kernel
from .limits import Limits

__all__ = ["Backend", "LocalBackend", "SandboxKernel"]


class SandboxKernel(Protocol):
    number: int
    ready_seconds: float

    @property
    def alive(self) -> bool: ...

    async def start(self) -> None:
        """Start and load the prelude; ``KernelStartError`` (or any error) when it cannot."""

    async def execute(self, code: str) -> dict[str, Any]:
        """Run one cell; the report. Raises ``TimeoutError``, ``OutputTooLarge``,
        ``KernelDied``, ``GatewayLost`` or ``BadMessage`` (``messages.py``)."""

    async def close(self) -> None:
        """Kill it and free what it held; idempotent, never raises."""

    def close_now(self) -> None:
        """Synchronous last resort at interpreter exit."""


class Backend(Protocol):
    name: str

    def kernel(self, limits: Limits, number: int) -> SandboxKernel: ...

    async def aclose(self) -> None: ...

    def close_now(self) -> None: ...


class LocalBackend:
    """Kernels on this host (the default: ``execution: auto``)."""

    name = "local"

    def __init__(self) -> None:
        self._context = zmq.asyncio.Context()

    def kernel(self, limits: Limits, number: int) -> SandboxKernel:
        return Kernel(limits, self._context, number)

    async def aclose(self) -> None:
        self._context.term()

    def close_now(self) -> None:
        """Kernels are killed one by one; the context goes with the process."""
