"""A real Jupyter Kernel Gateway for the tests, started the way ``make gateway`` starts it
(``scripts/gateway.py`` in the gateway's own venv) on 127.0.0.1 on a free port, and used only
once it has printed ready (it proves ``GET /api`` with the token and a kernel start first)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from litellm_toolcode.sandbox import GatewaySettings
from tests.sandbox_helpers import processes_mentioning

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_PYTHON = ROOT / ".venv-gateway" / "bin" / "python"
# planted in every test gateway's environment: no kernel may ever see it
HOST_SECRET = "sk-host-secret-7f3a9c"


@dataclass
class Gateway:
    url: str
    token: str
    port: int
    home: Path  # TOOLCODE_DATA_DIR of the gateway: its kernelspec, runtime dir, log
    sandbox_dir: Path  # where its kernels' work dirs go
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def settings(self) -> GatewaySettings:
        return GatewaySettings(url=self.url, token=self.token)

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(
    max_kernels: int = 8,
    port: int | None = None,
    token: str | None = None,
    args: tuple[str, ...] = (),
) -> Gateway:
    """``args``: more Kernel Gateway options, as ``make gateway GATEWAY_ARGS=...`` passes."""
    subprocess.run(["make", "-s", "gateway-install"], cwd=ROOT, check=True)
    # short paths: a Unix socket path has ~107 bytes, and the gateway's names are long
    home = Path(tempfile.mkdtemp(prefix="tcgw-"))
    sandbox_dir = home / "k"
    port = port or free_port()
    token = token or secrets.token_urlsafe(24)
    log = home / "gateway.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TOOLCODE_DATA_DIR": str(home),
        "TOOLCODE_GATEWAY_PORT": str(port),
        "TOOLCODE_GATEWAY_TOKEN": token,
        "TOOLCODE_GATEWAY_MAX_KERNELS": str(max_kernels),
        "TOOLCODE_SANDBOX_DIR": str(sandbox_dir),
        "TOOLCODE_TEST_SECRET": HOST_SECRET,
        **(
            {"TOOLCODE_GATEWAY_NODELAY": os.environ["TOOLCODE_GATEWAY_NODELAY"]}
            if "TOOLCODE_GATEWAY_NODELAY" in os.environ  # bench/gateway_latency.py
            else {}
        ),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(GATEWAY_PYTHON), str(ROOT / "scripts" / "gateway.py"), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", token, port, home, sandbox_dir, process, log)
    deadline = time.monotonic() + 120
    while "gateway ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_gateway(gateway, remove=False)
            raise RuntimeError(f"the gateway did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    assert gateway.api("GET", "/api").status_code == 200  # answers, with the token
    return gateway


def stop_gateway(gateway: Gateway, remove: bool = True) -> None:
    """Stop it (its kernels with it) and check that nothing of them is left."""
    if gateway.process.poll() is None:
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(gateway.process.pid, signal.SIGKILL)
            gateway.process.wait()
    if not remove:
        return
    deadline = time.monotonic() + 10
    while True:
        dirs = sorted(os.listdir(gateway.sandbox_dir)) if gateway.sandbox_dir.exists() else []
        left = (processes_mentioning(str(gateway.sandbox_dir)), dirs)
        if left == ([], []) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    shutil.rmtree(gateway.home, ignore_errors=True)
    assert left == ([], []), f"gateway kernels or work dirs left behind: {left}"


def server_pid(gateway: Gateway) -> int:
    """The Kernel Gateway process itself (a child of scripts/gateway.py)."""
    children = Path(f"/proc/{gateway.process.pid}/task/{gateway.process.pid}/children")
    (pid,) = children.read_text().split()
    return int(pid)


def kernel_pids(gateway: Gateway) -> list[int]:
    """The gateway's kernel processes (ipykernel inside the walls, not the launchers)."""
    return [
        pid
        for pid in processes_mentioning(str(gateway.sandbox_dir))
        if b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
