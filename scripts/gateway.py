"""``make gateway``: a local Jupyter Kernel Gateway whose only kernel is our hardened launcher.

Runs with the gateway's own venv (``.venv-gateway``: Kernel Gateway, ipykernel, pydantic; no
LiteLLM). It writes a private kernelspec whose ``argv`` wraps ipykernel in
``litellm_toolcode/sandbox/jail.py`` -> ``launcher.py`` (namespaces, no network, allow-list
file system, rlimits), starts ``kernel_gateway`` on 127.0.0.1 with that kernel forced whatever
name a client asks for, proves it answers (``GET /api`` with the token, then a kernel start),
prints the two settings the proxy needs, and stays in the foreground.

Arguments are more Kernel Gateway options (TLS: ``--KernelGatewayApp.certfile``, ``keyfile``),
replacing ours where they set the same one. Settings (environment): ``TOOLCODE_GATEWAY_PORT``
(8765), ``TOOLCODE_GATEWAY_IP`` (127.0.0.1; another address only behind TLS or a private
network), ``TOOLCODE_GATEWAY_TOKEN`` (else one is
made once and kept in ``.data/gateway/token``, 0600), ``TOOLCODE_GATEWAY_MAX_KERNELS`` (8),
``TOOLCODE_GATEWAY_CULL_IDLE`` (60 s), and the kernel-side limits
``TOOLCODE_SANDBOX_{MEMORY_MB,CPU_SECONDS,FILE_MB,DISK_MB,PROCESSES,OPEN_FILES}`` and
``TOOLCODE_SANDBOX_DIR`` (default ``.data/gateway/kernels``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "litellm_toolcode" / "sandbox"
sys.path.insert(0, str(SANDBOX))
import jail  # noqa: E402  (stdlib only: this venv has no LiteLLM)

KERNEL = "toolcode"


def data_dir() -> Path:
    return Path(os.environ.get("TOOLCODE_DATA_DIR") or ROOT / ".data") / "gateway"


def token(data: Path) -> tuple[str, str]:
    """The gateway's token and where it came from (never put on a command line)."""
    if os.environ.get("TOOLCODE_GATEWAY_TOKEN"):
        return os.environ["TOOLCODE_GATEWAY_TOKEN"], "TOOLCODE_GATEWAY_TOKEN"
    path = data / "token"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    path.chmod(0o600)
    return path.read_text().strip(), str(path)


def kernel_dir(data: Path) -> Path:
    """Where kernels' work dirs go: ``TOOLCODE_SANDBOX_DIR``, or the gateway's own."""
    return Path(os.environ.get("TOOLCODE_SANDBOX_DIR") or data / "kernels")


def sweep(data: Path) -> None:
    """What kernels killed with the gateway (SIGKILL: their launcher could not clean up) left:
    their work dirs, and the gateway's dangling socket links."""
    place = kernel_dir(data)
    for workdir in place.glob("toolcode-sandbox-*") if place.is_dir() else []:
        try:
            conn = json.loads((workdir / "ipc" / "connection.json").read_text())
        except (OSError, ValueError):
            conn = {}
        if conn.get("kernel_name") == jail.GATEWAY_KERNEL:  # ours, not a local proxy's
            shutil.rmtree(workdir, ignore_errors=True)
    for link in (data / "runtime").glob("kernel-*-ipc-*"):
        if link.is_symlink() and not link.exists():
            link.unlink()


def kernel_settings(data: Path) -> dict[str, Any]:
    limits = {}
    for key, name in jail.LIMIT_ENV.items():
        raw = os.environ.get(name)
        if raw:
            if not raw.isdigit():
                sys.exit(f"{name}={raw!r} is not a whole number")
            limits[key] = int(raw)
    return {"directory": str(kernel_dir(data)), "limits": limits}


def write_kernelspec(data: Path) -> None:
    spec = data / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [
            sys.executable,
            "-I",
            "-S",
            str(SANDBOX / "jail.py"),
            "{connection_file}",
            json.dumps(kernel_settings(data)),
        ],
        "display_name": "Python (toolcode sandbox)",
        "language": "python",
        "interrupt_mode": "message",  # over the control channel, not a signal to the wrapper
        "metadata": {"debugger": False},
    }
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1))


def command(port: int) -> list[str]:
    ip = os.environ.get("TOOLCODE_GATEWAY_IP", "127.0.0.1")
    max_kernels = os.environ.get("TOOLCODE_GATEWAY_MAX_KERNELS", "8")
    cull = os.environ.get("TOOLCODE_GATEWAY_CULL_IDLE", "60")
    return [
        sys.executable,
        "-m",
        "kernel_gateway",
        f"--KernelGatewayApp.ip={ip}",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        # the allow-list does not stop a launch by name (python3 falls back to ipykernel's
        # bundled spec): force ours whatever a client sends
        f"--KernelGatewayApp.force_kernel_name={KERNEL}",
        f"--KernelGatewayApp.default_kernel_name={KERNEL}",
        "--KernelSpecManager.ensure_native_kernel=False",
        f"--KernelGatewayApp.max_kernels={max_kernels}",
        # TCP_NODELAY on the kernel WebSocket (Nagle + delayed ACK cost ~40 ms per execute);
        # TOOLCODE_GATEWAY_NODELAY=0 only to measure the difference (bench/gateway_latency.py)
        "--KernelGatewayApp.kernel_websocket_connection_class=toolcode_kg."
        + (
            "Connection"
            if os.environ.get("TOOLCODE_GATEWAY_NODELAY") == "0"
            else "NoDelayConnection"
        ),
        # the proxy caps output itself and errors clearly; a rate limit would drop output
        # silently (the report among it)
        "--ZMQChannelsWebsocketConnection.limit_rate=False",
        # a kernel has no network: ZeroMQ over Unix sockets, joined by jail.py's symlinks
        "--KernelManager.transport=ipc",
        # a DELETE asks the kernel to stop, then SIGTERMs its launcher (which kills the whole
        # namespace and removes the work dir), SIGKILL only as the last resort
        "--KernelManager.shutdown_wait_time=4",
        # a dead kernel is never restarted (it is never reused), and is noticed fast
        "--KernelRestarter.restart_limit=0",
        "--KernelRestarter.time_to_dead=1",
        # kernels a client left behind (a proxy killed before it could delete its spares) go
        # after this long idle and disconnected; a connected spare is never culled
        f"--MappingKernelManager.cull_idle_timeout={cull}",
        "--MappingKernelManager.cull_interval=15",
        "--MappingKernelManager.cull_connected=False",
    ]


def with_extra(cmd: list[str], extra: list[str]) -> list[str]:
    """More Kernel Gateway options (TLS: ``--KernelGatewayApp.certfile=...``; ``make gateway
    GATEWAY_ARGS='...'``); one that sets an option of ours replaces it (traitlets refuses an
    option given twice)."""
    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}
    return [arg for arg in cmd if arg.split("=", 1)[0] not in given] + extra


def environment(secret: str, data: Path) -> dict[str, str]:
    """The gateway's own environment: nothing of the caller's but PATH and locale. Kernels get
    ``"env": {}`` from our client and a clean one from the launcher in any case."""
    runtime = data / "runtime"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(data),
        "JUPYTER_PATH": str(data / "jupyter"),
        "JUPYTER_DATA_DIR": str(data / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(data / "config"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parent),  # toolcode_kg
        "KG_AUTH_TOKEN": secret,  # via the environment, never argv (/proc/*/cmdline)
    }


def _call(url: str, secret: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {secret}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def prove(url: str, secret: str, process: subprocess.Popen[bytes], seconds: float = 60) -> float:
    """``GET /api`` with the token, then a kernel that starts, answers and is deleted. Returns
    the kernel's start time."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {process.returncode}")
        try:
            if _call(f"{url}/api", secret)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not answer GET /api")
        time.sleep(0.2)
    started = time.monotonic()
    status, kernel = _call(f"{url}/api/kernels", secret, "POST", {"name": KERNEL, "env": {}})
    if status != 201:
        raise RuntimeError(f"the gateway did not start a kernel (HTTP {status})")
    kernel_id = kernel["id"]
    try:
        left = max(5.0, deadline - time.monotonic())
        asyncio.run(asyncio.wait_for(_kernel_info(url, secret, kernel_id), left))
    except (TimeoutError, OSError, RuntimeError) as exc:
        raise RuntimeError(
            f"the gateway's kernel did not answer ({type(exc).__name__}: {exc}); can this host "
            "create namespaces? (see the gateway's log above)"
        ) from None
    finally:
        _call(f"{url}/api/kernels/{kernel_id}", secret, "DELETE")
    return time.monotonic() - started


async def _kernel_info(url: str, secret: str, kernel_id: str) -> None:
    """A kernel_info round trip over the kernel's channels (tornado: a gateway dependency)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws_url = f"ws{url[4:]}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    request = HTTPRequest(ws_url, headers={"Authorization": f"token {secret}"})
    connection = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "version": "5.3"}
    header |= {"session": uuid.uuid4().hex, "username": "toolcode", "date": ""}
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": {}}
    await connection.write_message(json.dumps({**message, "buffers": [], "channel": "shell"}))
    try:
        while True:
            raw = await connection.read_message()
            if raw is None:
                raise RuntimeError("the gateway closed the kernel's channels")
            if isinstance(raw, str):
                reply = json.loads(raw)
                ours = reply.get("parent_header", {}).get("msg_id") == msg_id
                if ours and reply.get("msg_type") == "kernel_info_reply":
                    return
    finally:
        connection.close()


def main() -> None:
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret, source = token(data)
    sweep(data)
    write_kernelspec(data)
    port = int(os.environ.get("TOOLCODE_GATEWAY_PORT", "8765"))
    cmd = with_extra(command(port), sys.argv[1:])
    process = subprocess.Popen(cmd, env=environment(secret, data), cwd=data)

    def stop(signum: int, frame: Any) -> None:
        process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host = os.environ.get("TOOLCODE_GATEWAY_IP", "127.0.0.1")
    tls = any(arg.startswith("--KernelGatewayApp.certfile") for arg in sys.argv[1:])
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    try:
        seconds = prove(url, secret, process)
    except RuntimeError as exc:
        process.terminate()
        process.wait(15)
        sys.exit(f"make gateway: {exc}")
    # a token the operator chose is not echoed (this output may go to a log); a generated one
    # must be, once, for them to hand to the proxy
    shown = f"(as set in {source})" if source == "TOOLCODE_GATEWAY_TOKEN" else secret
    print(
        f"gateway ready (a kernel started in {seconds * 1000:.0f} ms). For the proxy:\n"
        f"  TOOLCODE_GATEWAY_URL={url}\n"
        f"  TOOLCODE_GATEWAY_TOKEN={shown}"
        + ("" if source == "TOOLCODE_GATEWAY_TOKEN" else f"   (kept in {source})"),
        flush=True,
    )
    try:
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        sweep(data)
    sys.exit(code)


if __name__ == "__main__":
    main()
