"""The hardened kernel launcher: run as ``python -I -S launcher.py '<json config>'``.

Stdlib only and import-free from the package on purpose: it runs with the proxy's privileges
before anything is dropped, so it must be small enough to read in one sitting.

What it does, in order (design.md section 5):

1. ``PR_SET_PDEATHSIG``: the launcher dies (SIGTERM, then cleans up) when the proxy dies.
2. New mount, network, IPC, UTS and PID namespaces (a user namespace too when not root): the
   kernel gets no network at all (only a loopback that stays down) and sees only its own
   processes.
3. Forks the kernel, which becomes PID 1 of the new PID namespace. The launcher stays outside
   as its parent: it forwards SIGTERM as SIGKILL and removes the host work dir when the kernel
   ends, so a crashed proxy still leaves nothing behind.
4. The kernel's filesystem is an allow-list: an empty read-only tmpfs root holding read-only
   binds of the Python installation, ``/usr`` and the system libraries, a minimal ``/etc``
   written here (no host files), ``/dev/{null,zero,random,urandom}``, a private ``/proc``, the
   IPC socket directory, and a size-capped tmpfs home (its only writable place). The proxy's
   config, ``.env``, keys and the rest of the host filesystem are simply not there.
5. Drops everything: a per-kernel uid/gid with no groups (root), an empty capability bounding
   set, ``PR_SET_NO_NEW_PRIVS``, rlimits (AS, CPU, NPROC, FSIZE, NOFILE, CORE=0), umask 077, a
   clean environment with no API keys or proxy settings, then execs ipykernel.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
import time
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _bind(root: str, source: str, *, writable: bool = False) -> None:
    """Bind ``source`` at the same path under ``root``, read-only unless ``writable``."""
    target = root + source
    if os.path.islink(source):
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(source), target)
        return
    if not os.path.exists(source):
        return
    if os.path.isdir(source):
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.exists(target):
            _write(target, "")
    _mount(source, target, None, MS_BIND)  # not MS_REC: submounts stay out
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV
    if not writable:
        flags |= MS_RDONLY
    _mount(None, target, None, flags)


def _build_root(cfg: dict[str, Any]) -> str:
    root: str = cfg["root"]  # an empty directory in the host work dir (private mount namespace)
    _mount("toolcode-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    for path in cfg["read_only"]:
        _bind(root, path)
    etc = root + "/etc"
    os.makedirs(etc, mode=0o755, exist_ok=True)
    uid, gid = cfg["uid"], cfg["gid"]
    _write(
        etc + "/passwd", f"root:x:0:0::/:/nonexistent\nsandbox:x:{uid}:{gid}::/home:/nonexistent\n"
    )
    _write(etc + "/group", f"root:x:0:\nsandbox:x:{gid}:\n")
    _write(etc + "/hosts", "127.0.0.1 localhost\n")
    _write(etc + "/hostname", "sandbox\n")
    for name in ("ld.so.cache", "localtime"):
        if os.path.isfile("/etc/" + name):
            _bind(root, "/etc/" + name)
    os.makedirs(root + "/dev", mode=0o755)
    for name in ("null", "zero", "random", "urandom"):
        _bind(root, "/dev/" + name, writable=name == "null")
    os.symlink("/proc/self/fd", root + "/dev/fd")
    os.makedirs(root + "/proc", mode=0o555)
    with contextlib.suppress(OSError):  # some runtimes forbid it; Python runs without /proc
        _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    home = root + "/home"
    os.makedirs(home, mode=0o755)
    _mount(
        "toolcode-home",
        home,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={cfg['disk_bytes']},nr_inodes={cfg['inodes']},mode=0700,uid={uid},gid={gid}",
    )
    _bind(root, cfg["ipc_dir"], writable=True)
    os.makedirs(root + "/tmp", mode=0o755, exist_ok=True)
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return root


def _limits(cfg: dict[str, Any]) -> None:
    cpu = int(cfg["cpu_seconds"])
    for limit, value in (
        (resource.RLIMIT_AS, (cfg["memory_bytes"], cfg["memory_bytes"])),
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_FSIZE, (cfg["file_bytes"], cfg["file_bytes"])),
        (resource.RLIMIT_NOFILE, (cfg["open_files"], cfg["open_files"])),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(limit, value)
    if cfg["per_kernel_uid"]:
        # counted per uid: only meaningful when the kernel has a uid of its own
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["processes"], cfg["processes"]))


def _make_cgroups(cfg: dict[str, Any]) -> list[str]:
    """Best effort (cgroup v1, root): a memory and a pids cgroup of the kernel's own, so memory
    and process counts are capped for the kernel as a whole, not only per process."""
    made = []
    for controller, path in cfg["cgroups"].items():
        try:
            os.mkdir(path, 0o755)
            made.append(path)
            if controller == "memory":
                _write(path + "/memory.limit_in_bytes", str(cfg["memory_bytes"]))
            elif controller == "pids":
                _write(path + "/pids.max", str(cfg["processes"]))
        except OSError:
            continue
    return made


def _join_cgroups(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            _write(path + "/cgroup.procs", "0")


def _kernel(cfg: dict[str, Any], cgroups: list[str]) -> None:
    """The child: PID 1 of the new namespace. Never returns."""
    _join_cgroups(cgroups)
    root = _build_root(cfg)
    os.chroot(root)
    os.chdir("/home")
    for cap in range(64):  # empty bounding set: exec never grants a capability again
        if _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            break
    if cfg["per_kernel_uid"]:
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    # after the uid change, which clears it: die with the launcher
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    os.umask(0o077)
    _limits(cfg)
    argv = cfg["argv"]
    os.execve(argv[0], argv, cfg["env"])


def main() -> None:
    cfg = json.loads(sys.argv[1])
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != cfg["parent"]:
        sys.exit(70)  # the proxy is already gone
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    if os.geteuid() != 0:
        uid, gid = os.geteuid(), os.getegid()
        _unshare(flags | CLONE_NEWUSER)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    else:
        _unshare(flags)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    cgroups = _make_cgroups(cfg)
    child = os.fork()
    if child == 0:
        try:
            _kernel(cfg, cgroups)
        except BaseException as exc:  # report to the host's log, never continue unsandboxed
            os.write(2, f"toolcode sandbox launcher: {exc!r}\n".encode())
        os._exit(71)

    def stop(signum: int, frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = 0
    reaped = False
    pending = list(cfg.get("close_ipc") or [])
    while pending and not reaped:
        # under a gateway nobody else closes the socket dir: do it once the kernel's sockets
        # exist (as kernel.py does for the proxy's own kernels)
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            break
        reaped = pid != 0
        if not reaped and all(os.path.exists(p) for p in pending):
            os.chmod(cfg["ipc_dir"], 0o711)
            break
        time.sleep(0.01)
    while not reaped:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    # the kernel's mounts live on in this (the launcher's) mount namespace: detach them before
    # removing anything, or the removal would walk into the binds
    if _libc.umount2(cfg["root"].encode(), 2) == 0:  # MNT_DETACH
        shutil.rmtree(cfg["workdir"], ignore_errors=True)
    for path in cgroups:  # empty now: every process of the namespace is gone
        with contextlib.suppress(OSError):
            os.rmdir(path)
    sys.exit(os.waitstatus_to_exitcode(status) & 0xFF if status else 0)


if __name__ == "__main__":
    main()
