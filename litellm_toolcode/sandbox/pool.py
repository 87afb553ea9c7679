"""A pool of pre-started spare kernels; one fresh kernel per execution, refilled in the background.

Everything runs on the proxy's event loop and never blocks it: kernels start as subprocesses,
the ZeroMQ client is asyncio, work dirs are made and removed in a thread. A used kernel is
killed (with its whole PID namespace) and its work dir removed right after its one execution,
in the background.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from .backend import Backend, LocalBackend, SandboxKernel
from .limits import Limits
from .messages import KernelStartError

__all__ = ["KernelPool", "PoolStats", "SandboxUnavailable", "pool_for_loop"]

log = logging.getLogger("litellm_toolcode.sandbox")

_MAX_STARTING = 2  # kernels starting at once: ~0.5 s of CPU each, the machine is shared


class SandboxUnavailable(RuntimeError):
    """No kernel can be had: the pool is closed, or kernels fail to start on this host."""


@dataclass
class PoolStats:
    spares: int = 0  # ready kernels waiting
    starting: int = 0
    started: int = 0  # kernels started since the pool was made
    start_failures: int = 0
    killed: int = 0  # kernels killed (each after its one execution, or at close)
    executions: int = 0
    timeouts: int = 0
    limit_hits: int = 0  # output cap, kernel death (memory, CPU, ...)
    waits: int = 0  # executions that found no spare and waited for a kernel


class KernelPool:
    """Spare kernels of one backend for one event loop (a proxy worker). Use ``take()`` and
    ``release()``."""

    def __init__(self, limits: Limits | None = None, backend: Backend | None = None) -> None:
        self.limits = limits or Limits.from_env()
        self.backend: Backend = backend or LocalBackend()
        self.stats = PoolStats()
        self._ready: deque[SandboxKernel] = deque()
        self._waiters: deque[asyncio.Future[SandboxKernel]] = deque()
        self._kernels: set[SandboxKernel] = set()  # every kernel not yet closed, for close_now()
        self._tasks: set[asyncio.Task[None]] = set()
        self._starts: set[asyncio.Task[None]] = set()
        self._numbers = 0
        self._closed = False
        self._failures = 0  # consecutive start failures (backoff)
        self._last_error = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        _POOLS.add(self)

    # -- public ------------------------------------------------------------------------------

    def warm(self) -> None:
        """Start spares now (non-blocking); call from the event loop."""
        self._loop = self._loop or asyncio.get_running_loop()
        self._refill()

    async def take(self) -> SandboxKernel:
        """A fresh, started kernel; waits for one (bounded) when no spare is ready."""
        if self._closed:
            raise SandboxUnavailable("the sandbox pool is closed")
        self._loop = self._loop or asyncio.get_running_loop()
        while self._ready:
            kernel = self._ready.popleft()
            self.stats.spares = len(self._ready)
            self._refill()
            if kernel.alive:
                return kernel
            self._discard(kernel)  # died while waiting (it should not; be safe)
        if self._failures >= 3:  # kernels keep failing here: answer now, keep retrying behind
            self._refill()
            raise SandboxUnavailable(f"sandbox kernels fail to start: {self._last_error}")
        self.stats.waits += 1
        waiter: asyncio.Future[SandboxKernel] = self._loop.create_future()
        self._waiters.append(waiter)
        self._refill()
        try:
            return await asyncio.wait_for(waiter, self.limits.start_timeout + 5)
        except TimeoutError:
            raise SandboxUnavailable(
                "no sandbox kernel became ready in time"
                + (f" (last start failure: {self._last_error})" if self._last_error else "")
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def release(self, kernel: SandboxKernel) -> None:
        """Done with ``kernel``: kill it and remove its work dir, in the background."""
        self._discard(kernel)

    async def aclose(self) -> None:
        """Kill every kernel and wait until they are gone."""
        self._closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(SandboxUnavailable("the sandbox pool is closed"))
        for task in list(self._starts):  # closes (the other tasks) run to their end
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        kernels = list(self._kernels)
        self._ready.clear()
        await asyncio.gather(*(self._close(k) for k in kernels), return_exceptions=True)
        await self.backend.aclose()
        _POOLS.discard(self)
        log.info("sandbox pool closed: %s", self.describe())

    def close_now(self) -> None:
        """Synchronous last resort at interpreter exit: kill every kernel, remove dirs."""
        self._closed = True
        for kernel in list(self._kernels):
            kernel.close_now()
        self._kernels.clear()
        self.backend.close_now()

    def describe(self) -> dict[str, int]:
        self.stats.spares = len(self._ready)
        return asdict(self.stats)

    # -- internals ---------------------------------------------------------------------------

    def _target(self) -> int:
        return self.limits.pool_size + len([w for w in self._waiters if not w.done()])

    def _refill(self) -> None:
        if self._closed or self._loop is None:
            return
        while (
            len(self._ready) + self.stats.starting < self._target()
            and self.stats.starting < _MAX_STARTING
        ):
            self.stats.starting += 1
            task = self._spawn(self._start_one())
            self._starts.add(task)
            task.add_done_callback(self._starts.discard)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start_one(self) -> None:
        if self._failures:  # back off after failures: never hot-loop on a broken host
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(self._failures, 6)))
        self._numbers += 1
        kernel = self.backend.kernel(self.limits, self._numbers)
        self._kernels.add(kernel)
        try:
            await kernel.start()
        except (KernelStartError, Exception) as exc:
            self.stats.starting -= 1
            self.stats.start_failures += 1
            self._failures += 1
            self._last_error = str(exc)
            self._kernels.discard(kernel)
            log.warning("sandbox kernel failed to start: %s", exc)
            if self._failures >= 3:  # fail the waiting requests instead of letting them hang
                while self._waiters:
                    waiter = self._waiters.popleft()
                    if not waiter.done():
                        waiter.set_exception(SandboxUnavailable(f"kernels fail to start: {exc}"))
            self._refill()
            return
        except BaseException:  # cancelled (pool closing)
            self.stats.starting -= 1
            await self._close(kernel)
            raise
        self.stats.starting -= 1
        self.stats.started += 1
        self._failures = 0
        self._last_error = ""
        if self._closed:
            await self._close(kernel)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(kernel)
                break
        else:
            self._ready.append(kernel)
        self.stats.spares = len(self._ready)
        log.info(
            "sandbox kernel %d ready in %.0f ms (spares %d, starting %d, started %d, killed %d)",
            kernel.number,
            kernel.ready_seconds * 1000,
            len(self._ready),
            self.stats.starting,
            self.stats.started,
            self.stats.killed,
        )
        self._refill()

    def _discard(self, kernel: SandboxKernel) -> None:
        if self._loop is None:
            kernel.close_now()
            self._kernels.discard(kernel)
            return
        self._spawn(self._close(kernel))

    async def _close(self, kernel: SandboxKernel) -> None:
        try:
            await asyncio.shield(kernel.close())
        finally:
            if kernel in self._kernels:
                self._kernels.discard(kernel)
                self.stats.killed += 1


_POOLS: weakref.WeakSet[KernelPool] = weakref.WeakSet()
_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, KernelPool]] = (
    weakref.WeakKeyDictionary()
)


def pool_for_loop(key: str = "local", backend: Callable[[], Backend] | None = None) -> KernelPool:
    """The running loop's pool for ``key`` (one per proxy worker and backend), made on first
    use from the env with ``backend()`` (default: the local one)."""
    loop = asyncio.get_running_loop()
    pools = _BY_LOOP.setdefault(loop, {})
    pool = pools.get(key)
    if pool is None or pool._closed:
        pool = KernelPool(backend=backend() if backend is not None else None)
        pools[key] = pool
        pool.warm()
        log.info("sandbox pool created (%s): %s", pool.backend.name, pool.limits)
    return pool


@atexit.register
def _close_all() -> None:
    started = time.monotonic()
    for pool in list(_POOLS):
        pool.close_now()
    if _POOLS:
        log.debug("sandbox pools closed at exit in %.3f s", time.monotonic() - started)
