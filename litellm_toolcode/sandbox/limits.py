"""Sandbox limits: per proxy (per worker process), read from environment variables."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields

from ..errors import ConfigError

__all__ = ["ENV_VARS", "Limits"]


@dataclass(frozen=True)
class Limits:
    """What one kernel may use, and how many spares the pool keeps ready."""

    pool_size: int = 2
    """Spare kernels kept started and waiting (``TOOLCODE_POOL_SIZE``); 0 starts one per request."""
    timeout: float = 5.0
    """Wall-clock seconds one execution may take before it is interrupted, then killed."""
    start_timeout: float = 30.0
    """Seconds a kernel may take to start (a loaded machine is slow) before it counts as failed."""
    cpu_seconds: int = 10
    """RLIMIT_CPU of a kernel, start-up included (about 1 s): SIGXCPU, then SIGKILL."""
    memory_mb: int = 512
    """RLIMIT_AS of a kernel in MiB (with MALLOC_ARENA_MAX=2); an idle kernel maps ~210 MiB."""
    disk_mb: int = 16
    """Size of the kernel's private tmpfs home, its only writable place."""
    file_mb: int = 8
    """RLIMIT_FSIZE: the largest file a kernel may write."""
    processes: int = 32
    """RLIMIT_NPROC for the kernel's own uid (threads count): stops fork and thread bombs."""
    open_files: int = 128
    """RLIMIT_NOFILE of a kernel."""
    output_kb: int = 1024
    """Bytes of messages (stdout, report) one execution may send before it is killed."""
    max_calls: int = 64
    """Tool calls one execution may record."""
    directory: str = ""
    """Where the per-kernel work dirs go (``TOOLCODE_SANDBOX_DIR``); default: the temp dir."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = ENV_VARS[f.name]
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            kind = type(getattr(cls(), f.name))
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
            if kind is not str and value < 0:
                raise ConfigError(f"{name}={raw!r} must not be negative")
            values[f.name] = value
        return cls(**values)  # type: ignore[arg-type]

    @property
    def work_root(self) -> str:
        return self.directory or tempfile.gettempdir()


ENV_VARS: dict[str, str] = {
    "pool_size": "TOOLCODE_POOL_SIZE",
    "timeout": "TOOLCODE_SANDBOX_TIMEOUT",
    "start_timeout": "TOOLCODE_SANDBOX_START_TIMEOUT",
    "cpu_seconds": "TOOLCODE_SANDBOX_CPU_SECONDS",
    "memory_mb": "TOOLCODE_SANDBOX_MEMORY_MB",
    "disk_mb": "TOOLCODE_SANDBOX_DISK_MB",
    "file_mb": "TOOLCODE_SANDBOX_FILE_MB",
    "processes": "TOOLCODE_SANDBOX_PROCESSES",
    "open_files": "TOOLCODE_SANDBOX_OPEN_FILES",
    "output_kb": "TOOLCODE_SANDBOX_OUTPUT_KB",
    "max_calls": "TOOLCODE_SANDBOX_MAX_CALLS",
    "directory": "TOOLCODE_SANDBOX_DIR",
}
