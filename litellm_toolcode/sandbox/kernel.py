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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.session import Session

from . import jail
from .limits import Limits
from .messages import (
    REPORT_TYPE,
    BadMessage,
    Collector,
    KernelDied,
    KernelStartError,
    OutputTooLarge,
    execute_content,
    prelude_cell,
)

__all__ = [
    "REPORT_TYPE",
    "BadMessage",
    "Kernel",
    "KernelDied",
    "KernelStartError",
    "OutputTooLarge",
]

log = logging.getLogger("litellm_toolcode.sandbox")

_HERE = Path(__file__).resolve().parent
_PORTS = jail.PORTS


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

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    # -- start -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.started_at = time.monotonic()
        self.workdir = Path(await asyncio.to_thread(jail.make_workdir, self.limits.work_root))
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
        self.uid, gid, per_kernel_uid = jail.pick_uid()
        self.cgroups = jail.cgroups(f"toolcode-{self.uid}-{os.getpid()}")
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
        config = jail.launch_config(
            workdir=str(workdir),
            conn_file=str(conn_file),
            uid=self.uid,
            gid=gid,
            per_kernel_uid=per_kernel_uid,
            groups=self.cgroups,
            limits={k: getattr(lim, k) for k in jail.LIMIT_KEYS},
            parent=os.getpid(),
        )
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
        report = await self._execute(prelude_cell(), timeout=lim.start_timeout)
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

    async def _execute(self, code: str, *, timeout: float) -> dict[str, Any]:
        msg_id = await self._send("shell", "execute_request", execute_content(code))
        try:
            return await asyncio.wait_for(self._collect(msg_id), timeout)
        except TimeoutError:
            await self._interrupt()
            raise

    async def _collect(self, msg_id: str) -> dict[str, Any]:
        collector = Collector(msg_id, self.limits.output_kb)
        iopub = asyncio.ensure_future(self._recv("iopub"))
        shell: asyncio.Future[dict[str, Any]] | None = asyncio.ensure_future(self._recv("shell"))
        died = asyncio.ensure_future(self._wait_exit())
        try:
            while not collector.done:
                waiting: set[asyncio.Future[Any]] = {iopub, died}
                if shell is not None:
                    waiting.add(shell)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if died in done:
                    raise KernelDied(self._died_message())
                if shell is not None and shell in done:
                    collector.shell(shell.result())
                    if not collector.replied:
                        shell = asyncio.ensure_future(self._recv("shell"))
                    else:
                        shell = None
                if iopub in done:
                    msg = iopub.result()
                    iopub = asyncio.ensure_future(self._recv("iopub"))
                    collector.iopub(msg)
        finally:
            for task in (iopub, shell, died):
                if task is not None:
                    task.cancel()
        return collector.result()

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
