"""Kernels on a Jupyter Kernel Gateway (``execution: gateway``): for a proxy whose host cannot
create namespaces (LiteLLM's stock Docker image), kernels start on a host that can.

Same contract as the local backend (``backend.py``): a fresh kernel per execution, the prelude
loaded while it waits as a spare, one execution, then ``DELETE``. The gateway's kernelspec wraps
our launcher (``gateway_kernel.py``; ``scripts/gateway.py`` starts such a gateway), so the
kernel has the same walls as a local one, including no network.

A small asyncio client (the facts behind it: ``docs/gateway.md``): REST with ``httpx``, one
WebSocket per kernel with ``websockets`` (LiteLLM's proxy extra brings both), the legacy JSON
framing. The gateway checks the kernel's HMAC signatures on its ZeroMQ side; here every frame is
size-capped (``max_size``), JSON only, and read by the shared ``Collector``. We always send
``"env": {}`` (otherwise KG gives the kernel the gateway's whole environment), never follow
``HTTP(S)_PROXY`` with the token, and never log the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.frames import CloseCode
from websockets.protocol import State

from ..config import GatewaySettings
from .backend import SandboxKernel
from .limits import Limits
from .messages import (
    BadMessage,
    Collector,
    GatewayLost,
    KernelDied,
    KernelStartError,
    OutputTooLarge,
    execute_content,
    prelude_cell,
)

__all__ = ["GatewayBackend", "GatewayKernel", "GatewaySettings"]

log = logging.getLogger("litellm_toolcode.sandbox")


class GatewayBackend:
    """Kernels on one gateway; holds the REST client and the ids not yet deleted."""

    name = "gateway"

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.open_ids: set[str] = set()
        self._http: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.settings.url,
                headers=self.settings.headers(),
                timeout=httpx.Timeout(15.0, connect=5.0),
                trust_env=False,  # the token goes to the gateway only, never via a proxy
            )
        return self._http

    def kernel(self, limits: Limits, number: int) -> SandboxKernel:
        return GatewayKernel(self, limits, number)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def close_now(self) -> None:
        """At interpreter exit (no loop): delete what is left, briefly; the gateway's idle
        culling is the backstop."""
        if not self.open_ids:
            return
        with httpx.Client(
            base_url=self.settings.url,
            headers=self.settings.headers(),
            timeout=2.0,
            trust_env=False,
        ) as client:
            for kernel_id in list(self.open_ids):
                with contextlib.suppress(httpx.HTTPError):
                    client.delete(f"/api/kernels/{kernel_id}")
        self.open_ids.clear()


@dataclass(eq=False)
class GatewayKernel:
    """A kernel on the gateway, ready for exactly one execution."""

    backend: GatewayBackend
    limits: Limits
    number: int
    ready_seconds: float = field(default=0.0, init=False)
    kernel_id: str | None = field(default=None, init=False)
    _ws: ClientConnection | None = field(default=None, init=False)
    _session: str = field(default_factory=lambda: uuid.uuid4().hex, init=False)
    _full: bool = field(default=False, init=False)  # the gateway said it is at max_kernels
    _creating: asyncio.Future[httpx.Response] | None = field(default=None, init=False)
    _closing: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def alive(self) -> bool:
        return self._ws is not None and self._ws.state is State.OPEN and self._closing is None

    @property
    def _url(self) -> str:
        return self.backend.settings.url

    # -- start -------------------------------------------------------------------------------

    async def start(self) -> None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._start(), self.limits.start_timeout)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, TimeoutError):
                if self._full:
                    raise KernelStartError(
                        f"the kernel gateway at {self._url} is at its kernel limit "
                        f"(max_kernels): no kernel was free within {self.limits.start_timeout:g} s"
                    ) from None
                raise KernelStartError(
                    f"the kernel gateway at {self._url} did not start a kernel within "
                    f"{self.limits.start_timeout:g} s"
                ) from None
            if isinstance(exc, (GatewayLost, KernelDied, BadMessage, OutputTooLarge)):
                raise KernelStartError(f"a gateway kernel failed while warming up: {exc}") from None
            raise
        self.ready_seconds = time.monotonic() - started

    async def _start(self) -> None:
        self.kernel_id = await self._create()
        self._ws = await self._connect(self.kernel_id)
        report = await self._execute(prelude_cell())
        if report.get("ready") is not True:
            raise KernelStartError(f"prelude failed on the gateway's kernel: {report.get('error')}")

    async def _create(self) -> str:
        delay = 0.1
        while True:
            body = {"name": self.backend.settings.kernel_name, "env": {}}
            # shielded: a start cancelled mid-POST (pool closing, start timeout) still learns
            # the kernel's id in close(), and deletes it
            self._creating = asyncio.ensure_future(
                self.backend.http().post("/api/kernels", json=body)
            )
            try:
                response = await asyncio.shield(self._creating)
            except httpx.HTTPError as exc:
                raise KernelStartError(
                    f"cannot reach the kernel gateway at {self._url} ({type(exc).__name__}); "
                    "is it running? (`make gateway`)"
                ) from None
            kernel_id = self._created(response)
            if kernel_id is not None:
                return kernel_id
            if response.status_code == 403 and "Resource Limit" in response.text:
                # full: wait (bounded by start_timeout) for a kernel to be deleted
                self._full = True
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            if response.status_code in (401, 403):
                raise KernelStartError(
                    f"the kernel gateway at {self._url} refused the token "
                    f"(HTTP {response.status_code}): check TOOLCODE_GATEWAY_TOKEN"
                )
            raise KernelStartError(
                f"the kernel gateway at {self._url} could not start a kernel: "
                f"HTTP {response.status_code} {response.text[:200]!r}"
            )

    def _created(self, response: httpx.Response) -> str | None:
        self._creating = None
        if response.status_code != 201:
            return None
        kernel_id = _json(response).get("id")
        if not isinstance(kernel_id, str) or not kernel_id.replace("-", "").isalnum():
            raise KernelStartError(f"the kernel gateway at {self._url} sent no kernel id")
        self.kernel_id = kernel_id
        self.backend.open_ids.add(kernel_id)
        return kernel_id

    async def _connect(self, kernel_id: str) -> ClientConnection:
        base = "ws" + self._url[len("http") :]
        url = f"{base}/api/kernels/{kernel_id}/channels?session_id={self._session}"
        try:
            return await connect(
                url,
                additional_headers=self.backend.settings.headers(),
                max_size=self.limits.output_kb * 1024 + 65536,  # as ZMQ_MAXMSGSIZE locally
                compression=None,
                proxy=None,
                open_timeout=10,
                user_agent_header=None,
            )
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code in (401, 403):
                raise KernelStartError(
                    f"the kernel gateway at {self._url} refused the token on the kernel's "
                    f"channels (HTTP {code}): check TOOLCODE_GATEWAY_TOKEN"
                ) from None
            raise KernelStartError(
                f"the kernel gateway at {self._url} refused the kernel's channels (HTTP {code})"
            ) from None
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise KernelStartError(
                f"cannot open the kernel's channels on {self._url} ({type(exc).__name__})"
            ) from None

    # -- execute -----------------------------------------------------------------------------

    async def execute(self, code: str) -> dict[str, Any]:
        """Run one cell; the kernel's report (untrusted JSON, already size-capped). On a
        timeout the kernel is not interrupted: it is deleted right after, never reused."""
        return await asyncio.wait_for(self._execute(code), self.limits.timeout)

    async def _execute(self, code: str) -> dict[str, Any]:
        ws = self._ws
        assert ws is not None
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "toolcode",
                "session": self._session,
                "date": datetime.now(UTC).isoformat(),
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": execute_content(code),
            "buffers": [],
            "channel": "shell",
        }
        try:
            await ws.send(json.dumps(message))
        except ConnectionClosed:
            raise GatewayLost(f"the kernel gateway at {self._url} closed the connection") from None
        collector = Collector(msg_id, self.limits.output_kb)
        while not collector.done:
            msg = await self._receive(ws)
            channel = msg.get("channel") or "shell"
            if channel == "iopub":
                state = msg["content"].get("execution_state")
                if msg.get("msg_type") == "status" and state in ("restarting", "dead"):
                    raise KernelDied(f"the kernel died on the gateway ({state})")
                collector.iopub(msg)
            elif channel == "shell":
                collector.shell(msg)
        return collector.result()

    async def _receive(self, ws: ClientConnection) -> dict[str, Any]:
        try:
            raw = await ws.recv()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                raise OutputTooLarge(
                    f"the code printed more than {self.limits.output_kb} KiB"
                ) from None
            if exc.rcvd is not None and exc.rcvd.code == CloseCode.POLICY_VIOLATION:
                # our gateway's verdict on a message that failed its signature check
                reason = exc.rcvd.reason
                raise BadMessage(f"the gateway refused a kernel message: {reason}") from None
            raise GatewayLost(
                f"the kernel gateway at {self._url} closed the kernel's connection"
            ) from None
        if isinstance(raw, bytes):  # only messages with buffers come binary: not ours
            raise BadMessage("a binary frame (a message with buffers)")
        try:
            msg = json.loads(raw)
        except ValueError:
            raise BadMessage("a frame that is not JSON") from None
        if (
            not isinstance(msg, dict)
            or not isinstance(msg.get("content"), dict)
            or not isinstance(msg.get("parent_header"), dict)
        ):
            raise BadMessage("message without content or parent header")
        return msg

    # -- close -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the channels and delete the kernel on the gateway. Idempotent; never raises;
        a cancelled caller does not cancel the close itself."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2)
        if self.kernel_id is None and self._creating is not None:
            with contextlib.suppress(Exception):
                self._created(await asyncio.wait_for(self._creating, 15))
        kernel_id = self.kernel_id
        if kernel_id is None:
            return
        try:
            response = await self.backend.http().delete(f"/api/kernels/{kernel_id}")
            if response.status_code not in (204, 404):
                log.warning(
                    "sandbox: the gateway answered HTTP %d deleting kernel %d",
                    response.status_code,
                    self.number,
                )
        except httpx.HTTPError as exc:
            log.warning(
                "sandbox: could not delete gateway kernel %d (%s); the gateway's idle culling will",
                self.number,
                type(exc).__name__,
            )
        self.backend.open_ids.discard(kernel_id)

    def close_now(self) -> None:
        """Nothing to kill here: ``GatewayBackend.close_now`` deletes what is left."""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
