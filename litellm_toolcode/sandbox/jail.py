"""What a hardened kernel gets, computed on the host that starts it: its work dir, uid,
cgroups, read-only paths, environment and the launcher's config.

Stdlib only, with no package-relative imports: the proxy's ``kernel.py`` imports it, and so
does ``gateway_kernel.py``, the kernelspec wrapper a Kernel Gateway runs with ``python -I -S``
(where importing the package would import LiteLLM).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LIMITS",
    "LIMIT_ENV",
    "LIMIT_KEYS",
    "PORTS",
    "cgroups",
    "gateway_kernel",
    "kernel_argv",
    "kernel_env",
    "launch_config",
    "make_workdir",
    "pick_uid",
    "read_only_paths",
]

UID_BASE = 1_000_000_000
PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
LIMIT_KEYS = ("memory_mb", "cpu_seconds", "file_mb", "disk_mb", "processes", "open_files")
# the kernel-side limits' defaults (limits.Limits has the same; a test keeps them equal) and
# their variables, read on the host that starts kernels (the proxy's, or a gateway's)
DEFAULT_LIMITS = {
    "memory_mb": 512,
    "cpu_seconds": 10,
    "file_mb": 8,
    "disk_mb": 16,
    "processes": 32,
    "open_files": 128,
}
GATEWAY_KERNEL = "toolcode-gateway"  # names a gateway kernel's work dir (scripts/gateway.py)
LIMIT_ENV = {key: f"TOOLCODE_SANDBOX_{key.upper()}" for key in LIMIT_KEYS}


def read_only_paths() -> list[str]:
    paths = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32"]
    for prefix in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix):
        paths.append(prefix)
        real = os.path.realpath(prefix)
        if real != prefix:
            paths.append(real)
    # the venv itself (under ``-S``, as in the gateway's wrapper, sys.prefix is not the venv)
    paths.append(os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))))
    # the interpreter the venv's python links to, wherever it lives
    exe = os.path.realpath(sys.executable)
    paths.append(str(Path(exe).parent.parent))
    seen: list[str] = []
    for path in paths:
        if path not in seen and os.path.exists(path):
            seen.append(path)
    # parents first, so a bind never hides an earlier one
    return sorted(seen, key=lambda p: p.count("/"))


def cgroups(name: str) -> dict[str, str]:
    """Per-kernel cgroup dirs (v1 memory and pids) under this process's own, where root may
    create them; the launcher makes them and the kernel joins them (best effort)."""
    if os.geteuid() != 0:
        return {}
    found: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in ("memory", "pids"):
            if controller in controllers.split(","):
                base = f"/sys/fs/cgroup/{controller}{path.rstrip('/')}"
                if os.access(base, os.W_OK):
                    found[controller] = f"{base}/{name}"
    return found


def make_workdir(root: str) -> str:
    root = root or tempfile.gettempdir()
    os.makedirs(root, mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix="toolcode-sandbox-", dir=root)


def kernel_env() -> dict[str, str]:
    """A clean, explicit environment: nothing of the host's (keys, proxies, config paths)."""
    home = "/home"
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MALLOC_ARENA_MAX": "2",
        "IPYTHONDIR": f"{home}/.ipython",
        "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
        "JUPYTER_DATA_DIR": f"{home}/.jupyter/data",
        "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter/runtime",
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLBACKEND": "agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def pick_uid() -> tuple[int, int, bool]:
    """(uid, gid, per-kernel): a random uid of its own where we are root, else ours."""
    if os.geteuid() == 0:
        uid = UID_BASE + secrets.randbelow(1_000_000_000)
        return uid, uid, True
    return os.geteuid(), os.getegid(), False


def kernel_argv(conn_file: str) -> list[str]:
    return [
        sys.executable,
        "-I",
        "-B",
        "-m",
        "ipykernel_launcher",
        "-f",
        conn_file,
        "--HistoryManager.enabled=False",
    ]


def launch_config(
    *,
    workdir: str,
    conn_file: str,
    uid: int,
    gid: int,
    per_kernel_uid: bool,
    groups: Mapping[str, str],
    limits: Mapping[str, int],
    parent: int,
    close_ipc: list[str] | None = None,
) -> dict[str, Any]:
    """The launcher's JSON config (see launcher.py). ``close_ipc``: socket paths after whose
    creation the launcher closes the socket dir to the kernel (when nobody else will)."""
    mib = 1024 * 1024
    return {
        "parent": parent,
        "workdir": workdir,
        "root": f"{workdir}/root",
        "ipc_dir": f"{workdir}/ipc",
        "read_only": read_only_paths(),
        "uid": uid,
        "gid": gid,
        "per_kernel_uid": per_kernel_uid,
        "cgroups": dict(groups),
        "memory_bytes": limits["memory_mb"] * mib,
        "cpu_seconds": limits["cpu_seconds"],
        "file_bytes": limits["file_mb"] * mib,
        "disk_bytes": limits["disk_mb"] * mib,
        "inodes": 4096,
        "processes": limits["processes"],
        "open_files": limits["open_files"],
        "env": kernel_env(),
        "argv": kernel_argv(conn_file),
        "close_ipc": close_ipc or [],
    }


def gateway_kernel(argv: list[str]) -> None:
    """A Kernel Gateway's kernelspec ``argv``: ``python -I -S jail.py {connection_file}
    '<json: directory, limits>'``. Prepares a work dir as ``kernel.py`` does for the proxy's own
    kernels, then becomes ``launcher.py``, which execs ipykernel inside the walls.

    The gateway must use ``--KernelManager.transport=ipc`` (a kernel has no network): it
    connects to the sockets its connection file names; the kernel binds them in its own work
    dir, and symlinks there from the names the gateway uses join the two.
    """
    # Die with the gateway from here on (the launcher re-arms this after the exec), and make
    # sure it is still there: a wrapper the gateway spawned just before dying would otherwise
    # start an orphan kernel nobody will ever delete.
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            parent = handle.read()
    except OSError:
        parent = b""
    if b"gateway" not in parent:
        sys.exit("toolcode kernel: the gateway that started this kernel is gone")
    conn_path, settings = argv[0], json.loads(argv[1])
    with open(conn_path) as handle:
        conn = json.load(handle)
    if conn.get("transport") != "ipc":
        sys.exit(
            "toolcode kernel: the gateway must start kernels with --KernelManager.transport=ipc "
            "(the kernel has no network to reach TCP ports)"
        )
    workdir = make_workdir(settings.get("directory", ""))
    os.chmod(workdir, 0o700)
    ipc = f"{workdir}/ipc"
    os.mkdir(ipc, 0o700)
    os.mkdir(f"{workdir}/root", 0o700)
    uid, gid, per_kernel_uid = pick_uid()
    groups = cgroups(f"toolcode-{uid}-{os.getppid()}")
    own_conn = f"{ipc}/connection.json"
    with open(own_conn, "w") as handle:
        json.dump({**conn, "ip": f"{ipc}/k", "kernel_name": GATEWAY_KERNEL}, handle)
    os.chmod(own_conn, 0o644)
    sockets = []
    for name in PORTS:
        port = int(conn[name])
        sockets.append(f"{ipc}/k-{port}")
        link = f"{conn['ip']}-{port}"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(sockets[-1], link)
    os.chmod(ipc, 0o733)  # the kernel may create its sockets here; the launcher closes it after
    limits = {**DEFAULT_LIMITS, **settings.get("limits", {})}
    config = launch_config(
        workdir=workdir,
        conn_file=own_conn,
        uid=uid,
        gid=gid,
        per_kernel_uid=per_kernel_uid,
        groups=groups,
        limits=limits,
        parent=os.getppid(),  # the launcher's parent once this process becomes it
        close_ipc=sockets,
    )
    launcher = str(Path(__file__).resolve().parent / "launcher.py")
    os.execv(sys.executable, [sys.executable, "-I", "-S", launcher, json.dumps(config)])


if __name__ == "__main__":
    gateway_kernel(sys.argv[1:])
