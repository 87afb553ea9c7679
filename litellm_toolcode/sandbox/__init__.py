"""Run model code that the literal AST path cannot read, in a hardened, pooled Jupyter kernel.

- ``launcher.py``: namespaces, allow-list filesystem, per-kernel uid, rlimits, no privileges.
- ``jail.py``: what a kernel gets (work dir, uid, paths, env); also the kernelspec wrapper of
  the Kernel Gateway we ship (``scripts/gateway.py``, ``make gateway``).
- ``kernel.py``: one local kernel seen from the proxy (async ZeroMQ client, size caps, kill).
- ``gateway.py``: one kernel on a Jupyter Kernel Gateway (``execution: gateway``).
- ``backend.py``: the seam between the pool and where kernels run.
- ``messages.py``: the execute request, reading the messages into one report, the errors.
- ``prelude.py``: the kernel-side recorder (stubs record calls, results are placeholders).
- ``pool.py``: pre-started spares, one fresh kernel per execution, background refill.
- ``run.py``: ``run_code(code, toolset)`` -> the calls the code made.

Logs go to ``logging.getLogger("litellm_toolcode.sandbox")``. Limits: ``limits.Limits``
(environment variables ``TOOLCODE_POOL_SIZE``, ``TOOLCODE_SANDBOX_*``).
"""

from __future__ import annotations

from ..config import GatewaySettings
from .limits import ENV_VARS, Limits
from .pool import KernelPool, PoolStats, SandboxUnavailable, pool_for_loop
from .run import (
    CodeExecutionError,
    Execution,
    SandboxLimitError,
    SandboxUnavailableError,
    executor,
    run_code,
    warm,
)

__all__ = [
    "ENV_VARS",
    "CodeExecutionError",
    "Execution",
    "GatewaySettings",
    "KernelPool",
    "Limits",
    "PoolStats",
    "SandboxLimitError",
    "SandboxUnavailable",
    "SandboxUnavailableError",
    "executor",
    "pool_for_loop",
    "run_code",
    "warm",
]
