"""Run model code that the literal AST path cannot read, in a hardened, pooled Jupyter kernel.

- ``launcher.py``: namespaces, allow-list filesystem, per-kernel uid, rlimits, no privileges.
- ``kernel.py``: one kernel seen from the proxy (async ZeroMQ client, size caps, kill).
- ``prelude.py``: the kernel-side recorder (stubs record calls, results are placeholders).
- ``pool.py``: pre-started spares, one fresh kernel per execution, background refill.
- ``run.py``: ``run_code(code, toolset)`` -> the calls the code made.

Logs go to ``logging.getLogger("litellm_toolcode.sandbox")``. Limits: ``limits.Limits``
(environment variables ``TOOLCODE_POOL_SIZE``, ``TOOLCODE_SANDBOX_*``).
"""

from __future__ import annotations

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
