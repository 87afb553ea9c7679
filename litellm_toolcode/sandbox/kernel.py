"""One sandboxed kernel, seen from the proxy: start (hardened launcher), execute once, kill.

The proxy talks to the kernel with its own small ZeroMQ client (not jupyter_client's
KernelManager) so that every inbound message is size-capped by the socket itself
(``ZMQ_MAXMSGSIZE``), messages are signed JSON only (``Session`` with the json unpacker, never
pickle) and nothing blocks the event loop. Channels use the ``ipc`` transport: Unix sockets in
the kernel's work dir, no TCP port is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.session import Session

from .limits import Limits

__all__ = [
    "REPORT_TYPE",
    "BadMessage",
    "Kernel",
    "KernelDied",
    "KernelStartError",
    "OutputTooLarge",
]

log = logging.getLogger("litellm_toolcode.sandbox")

REPORT_TYPE = "application/vnd.toolcode.report+json"
_HERE = Path(__file__).resolve().parent
_PRELUDE = (_HERE / "prelude.py").read_text()
_PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
_UID_BASE = 1_000_000_000


class KernelStartError(RuntimeError):
    """A kernel could not be started (or warmed up) in time."""


class KernelDied(RuntimeError):
    """The kernel process ended while executing."""


class OutputTooLarge(RuntimeError):
    """The kernel sent more than the output cap."""


class BadMessage(RuntimeError):
    """The kernel sent a message that is not a signed Jupyter JSON message."""


def _read_only_paths() -> list[str]:
    paths = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32"]
    for prefix in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix):
        paths.append(prefix)
        real = os.path.realpath(prefix)
        if real != prefix:
            paths.append(real)
    # the interpreter the venv's python links to, wherever it lives
    exe = os.path.realpath(sys.executable)
    paths.append(str(Path(exe).parent.parent))
    seen: list[str] = []
    for path in paths:
        if path not in seen and os.path.exists(path):
            seen.append(path)
    # parents first, so a bind never hides an earlier one
    return sorted(seen, key=lambda p: p.count("/"))


def _cgroups(name: str) -> dict[str, str]:
    """Per-kernel cgroup dirs (v1 memory and pids) under the proxy's own, where root may
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


def _make_workdir(root: str) -> str:
    os.makedirs(root, mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix="toolcode-sandbox-", dir=root)


def _kernel_env() -> dict[str, str]:
    """A clean, explicit environment: nothing of the proxy's (keys, proxies, config paths)."""
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


@dataclass(eq=False)
class Kernel:
    """A started kernel, ready for exactly one execution."""

    limits: Limits
    context: zmq.asyncio.Context
    number: int
    workdir: Path = field(init=False)
    process: asyncio.subprocess.Process | None = field(default=None, init=False)
    uid: int = field(default=0, init=False)
    cgroups: dict[str, str] = field(default_factory=dict, init=False)
    started_at: float = field(default=0.0, init=False)
    ready_seconds: float = field(default=0.0, init=False)
    _session: Session = field(init=False)
    _sockets: dict[str, zmq.asyncio.Socket] = field(default_factory=dict, init=False)
    _stderr: bytes = field(default=b"", init=False)
    _closed: bool = field(default=False, init=False)
    _closing: asyncio.Task[None] | None = field(default=None, init=False)
    _drain: asyncio.Task[None] | None = field(default=None, init=False)

    # -- start -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.started_at = time.monotonic()
        self.workdir = Path(await asyncio.to_thread(_make_workdir, self.limits.work_root))
        try:
            await asyncio.wait_for(self._start(), self.limits.start_timeout)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, asyncio.TimeoutError):
                raise KernelStartError(
                    f"kernel did not start within {self.limits.start_timeout:g} s"
                ) from None
            raise
        self.ready_seconds = time.monotonic() - self.started_at

    async def _start(self) -> None:
        workdir = self.workdir
        os.chmod(workdir, 0o700)
        ipc = workdir / "ipc"
        ipc.mkdir(mode=0o700)
        (workdir / "root").mkdir(mode=0o700)
        root_user = os.geteuid() == 0
        self.uid = _UID_BASE + secrets.randbelow(1_000_000_000) if root_user else os.geteuid()
        self.cgroups = _cgroups(f"toolcode-{self.uid}-{os.getpid()}")
        gid = self.uid if root_user else os.getegid()
        key = secrets.token_hex(32)
        self._session = Session(
            key=key.encode(),
            signature_scheme="hmac-sha256",
            packer="json",
            unpacker="json",
            username="toolcode",
        )
        connection = {
            **_PORTS,
            "ip": str(ipc / "k"),
            "transport": "ipc",
            "key": key,
            "signature_scheme": "hmac-sha256",
            "kernel_name": "toolcode",
        }
        conn_file = ipc / "connection.json"
        conn_file.write_text(json.dumps(connection))
        conn_file.chmod(0o644)
        # The kernel (another uid) may create its sockets here but list nothing; once it is
        # up, the directory is closed to it (0711), so it cannot fill the host disk through it.
        os.chmod(ipc, 0o733)
        lim = self.limits
        config = {
            "parent": os.getpid(),
            "workdir": str(workdir),
            "root": str(workdir / "root"),
            "ipc_dir": str(ipc),
            "read_only": _read_only_paths(),
            "uid": self.uid,
            "gid": gid,
            "per_kernel_uid": root_user,
            "cgroups": self.cgroups,
            "memory_bytes": lim.memory_mb * 1024 * 1024,
            "cpu_seconds": lim.cpu_seconds,
            "file_bytes": lim.file_mb * 1024 * 1024,
            "disk_bytes": lim.disk_mb * 1024 * 1024,
            "inodes": 4096,
            "processes": lim.processes,
            "open_files": lim.open_files,
            "env": _kernel_env(),
            "argv": [
                sys.executable,
                "-I",
                "-B",
                "-m",
                "ipykernel_launcher",
                "-f",
                str(conn_file),
                "--HistoryManager.enabled=False",
            ],
        }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            str(_HERE / "launcher.py"),
            json.dumps(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,
        )
        self._drain = asyncio.get_running_loop().create_task(self._drain_stderr())
        sockets = [ipc / f"k-{_PORTS[p]}" for p in ("shell_port", "iopub_port", "control_port")]
        while not all(s.exists() for s in sockets):
            if self.process.returncode is not None:
                raise KernelStartError(self._died_message())
            await asyncio.sleep(0.01)
        cap = lim.output_kb * 1024 + 65536
        for name, kind in (("shell", zmq.DEALER), ("control", zmq.DEALER), ("iopub", zmq.SUB)):
            sock = self.context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, cap)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(f"ipc://{ipc}/k-{_PORTS[name + '_port']}")
            self._sockets[name] = sock
        # kernel_info answers once the kernel runs its loop; the iopub SUB is connected by then
        while True:
            reply = await self._request("shell", "kernel_info_request", {}, timeout=0.5)
            if reply is not None:
                break
            if self.process.returncode is not None:
                raise KernelStartError(self._died_message())
        os.chmod(ipc, 0o711)
        report = await self._execute(
            "exec(compile(__toolcode_prelude, '<toolcode prelude>', 'exec'),"
            " {'get_ipython': get_ipython, '__name__': 'toolcode_prelude'})\n"
            "del __toolcode_prelude",
            user_ns_setup=_PRELUDE,
            timeout=lim.start_timeout,
        )
        if report.get("ready") is not True:
            raise KernelStartError(f"prelude failed: {report.get('error')}")

    async def _drain_stderr(self) -> None:
        process = self.process
        if process is None or process.stderr is None:
            return
        with contextlib.suppress(Exception):
            while chunk := await process.stderr.read(4096):
                self._stderr = (self._stderr + chunk)[-4096:]

    def _died_message(self) -> str:
        code = self.process.returncode if self.process else None
        tail = self._stderr.decode(errors="replace").strip().splitlines()[-3:]
        return f"kernel exited with {code}" + (f": {' / '.join(tail)}" if tail else "")

    # -- messaging ---------------------------------------------------------------------------

    async def _send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg = self._session.msg(msg_type, content)
        frames = self._session.serialize(msg)
        await self._sockets[channel].send_multipart(frames)
        return str(msg["header"]["msg_id"])

    async def _recv(self, channel: str) -> dict[str, Any]:
        frames = await self._sockets[channel].recv_multipart()
        try:
            _, parts = self._session.feed_identities(frames)
            msg = self._session.deserialize(parts)  # checks the HMAC; JSON only
        except Exception as exc:  # anything: the kernel is untrusted
            raise BadMessage(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        if not isinstance(msg.get("content"), dict) or not isinstance(
            msg.get("parent_header"), dict
        ):
            raise BadMessage("message without content or parent header")
        return msg

    async def _request(
        self, channel: str, msg_type: str, content: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        msg_id = await self._send(channel, msg_type, content)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(self._recv(channel), left)
            except TimeoutError:
                return None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg
        return None

    # -- execute -----------------------------------------------------------------------------

    async def execute(self, code: str) -> dict[str, Any]:
        """Run one cell; the kernel's report (untrusted JSON, already size-capped)."""
        return await self._execute(code, timeout=self.limits.timeout)

    async def _execute(
        self, code: str, *, timeout: float, user_ns_setup: str | None = None
    ) -> dict[str, Any]:
        if user_ns_setup is not None:  # ship the prelude as data, not as a cell to parse
            code = f"__toolcode_prelude = {user_ns_setup!r}\n{code}"
        msg_id = await self._send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        try:
            return await asyncio.wait_for(self._collect(msg_id), timeout)
        except TimeoutError:
            await self._interrupt()
            raise

    async def _collect(self, msg_id: str) -> dict[str, Any]:
        budget = self.limits.output_kb * 1024
        report: dict[str, Any] = {}
        idle = False
        reply = False
        iopub = asyncio.ensure_future(self._recv("iopub"))
        shell: asyncio.Future[dict[str, Any]] | None = asyncio.ensure_future(self._recv("shell"))
        died = asyncio.ensure_future(self._wait_exit())
        try:
            while not (idle and reply):
                waiting: set[asyncio.Future[Any]] = {iopub, died}
                if shell is not None:
                    waiting.add(shell)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if died in done:
                    raise KernelDied(self._died_message())
                if shell is not None and shell in done:
                    msg = shell.result()
                    shell = None
                    if msg.get("parent_header", {}).get("msg_id") == msg_id:
                        reply = True
                    else:
                        shell = asyncio.ensure_future(self._recv("shell"))
                if iopub in done:
                    msg = iopub.result()
                    iopub = asyncio.ensure_future(self._recv("iopub"))
                    # every message counts, not only this execution's: a flood of others
                    # must not keep the proxy busy either
                    budget -= len(json.dumps(msg.get("content"))) + 256
                    if budget < 0:
                        raise OutputTooLarge(
                            f"the code printed more than {self.limits.output_kb} KiB"
                        )
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    msg_type = msg.get("msg_type") or msg["header"].get("msg_type")
                    if msg_type == "display_data":
                        data = (msg.get("content") or {}).get("data") or {}
                        if REPORT_TYPE in data:
                            report = {"report": data[REPORT_TYPE]}
                    elif msg_type == "status":
                        idle = (msg.get("content") or {}).get("execution_state") == "idle"
                    elif msg_type == "error" and "report" not in report:
                        content = msg.get("content") or {}
                        report = {"error": f"{content.get('ename')}: {content.get('evalue')}"}
        finally:
            for task in (iopub, shell, died):
                if task is not None:
                    task.cancel()
        if "report" in report:
            value = report["report"]
            return value if isinstance(value, dict) else {"error": "malformed report"}
        return {"error": report.get("error") or "the sandbox sent no report"}

    async def _wait_exit(self) -> None:
        if self.process is not None:
            await self.process.wait()

    async def _interrupt(self) -> None:
        """Ask the kernel to stop (SIGINT from inside); the caller kills it right after."""
        if self.process is None or self.process.returncode is not None or self._closed:
            return
        with contextlib.suppress(Exception):
            await self._request("control", "interrupt_request", {}, timeout=0.3)

    # -- close -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Kill the kernel (its whole PID namespace) and remove its work dir. Idempotent; a
        cancelled caller does not cancel the close itself."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._closed = True
        for sock in self._sockets.values():
            sock.close(linger=0)
        self._sockets.clear()
        process = self.process
        if process is not None:
            # SIGTERM to the launcher: it SIGKILLs the kernel (PID 1 of its namespace) and
            # reaps it, which returns only once every process of the namespace is gone.
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:  # never expected; the kernel dies with it anyway
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(process.wait(), 5)
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 2)
        if hasattr(self, "workdir"):
            await asyncio.to_thread(self._remove_dirs)

    def _remove_dirs(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        for path in self.cgroups.values():  # the launcher removes them; unless it was killed
            with contextlib.suppress(OSError):
                os.rmdir(path)

    def close_now(self) -> None:
        """Synchronous last resort (interpreter exit): kill and remove, without the loop."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for _ in range(50):  # cgroups can go once the namespace is gone: moments after
            if not any(os.path.exists(p) for p in self.cgroups.values()):
                break
            time.sleep(0.02)
            for path in self.cgroups.values():
                with contextlib.suppress(OSError):
                    os.rmdir(path)
        if hasattr(self, "workdir"):
            self._remove_dirs()
