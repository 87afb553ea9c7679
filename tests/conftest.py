"""Fixtures: the fake upstream, the real LiteLLM proxy process with the plugin, a real openai
client, and a per-test ``case`` that scripts the upstream and asks through the proxy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fake_upstream import FakeUpstream, Scripted

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Sandbox kernels of every proxy the tests start: few (the machine is shared), quick to time
# out, and all in one directory, checked empty at the end (no_kernel_left_behind).
SANDBOX_DIR = Path(tempfile.gettempdir()) / f"toolcode-test-kernels-{os.getpid()}"  # made on use
os.environ["TOOLCODE_SANDBOX_DIR"] = str(SANDBOX_DIR)
os.environ.setdefault("TOOLCODE_POOL_SIZE", "1")
os.environ.setdefault("TOOLCODE_SANDBOX_TIMEOUT", "3")

MASTER_KEY = "sk-toolcode-test-master"
UPSTREAM_KEY = "sk-upstream-secret-do-not-log"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def model_entry(upstream_url: str, alias: str, toolcode: str = "", extra: str = "") -> str:
    """One ``model_list`` entry on the fake upstream; ``toolcode`` is its flow-style settings
    (none: plugin off), ``extra`` more ``litellm_params`` lines."""
    text = (
        f"  - model_name: {alias}\n"
        f"    litellm_params:\n"
        f"      model: openai/fake-{alias}\n"
        f"      api_base: {upstream_url}\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        # /v1/responses reaches the fake upstream's chat endpoint (test_endpoints.py).
        f"      use_chat_completions_api: true\n"
        f"{extra}"
    )
    return text + (f"    model_info:\n      toolcode: {toolcode}\n" if toolcode else "")


def proxy_config(upstream_url: str) -> str:
    def entry(alias: str, model_info: str = "") -> str:
        return model_entry(upstream_url, alias, model_info)

    return (
        "model_list:\n"
        + entry("coder", "{enabled: true, max_repair_rounds: 1, execution: literal_only}")
        + entry("runner", "{enabled: true, max_repair_rounds: 0, execution: auto}")
        + entry("strict", "{enabled: true, max_repair_rounds: 0}")
        + entry("thinker", "{enabled: true, think_prefilled: true, execution: literal_only}")
        + entry("plain")
        + entry("misconfigured", "{enabled: true, max_tool_result_char: 10}")
        + "litellm_settings:\n"
        '  callbacks: ["litellm_toolcode.proxy_handler_instance"]\n'
        "  use_chat_completions_url_for_anthropic_messages: true\n"  # /v1/messages too
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )


@dataclass
class Proxy:
    url: str
    log: Path
    process: subprocess.Popen[bytes]


def start_proxy(
    config: str,
    workdir: Path,
    extra_args: tuple[str, ...] = (),
    port: int | None = None,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> Proxy:
    """Start ``litellm --config`` (the console script beside this interpreter) and wait.

    ``env`` is added to the proxy's environment (the shipped config reads its upstream there);
    ``prefix`` runs it under another command (``setpriv``: a host without namespaces).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(config)
    port = port or free_port()
    log = workdir / "proxy.log"
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    cmd = [
        *prefix,
        str(Path(sys.executable).parent / "litellm"),
        "--config",
        "config.yaml",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra_args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"proxy exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                return Proxy(url=url, log=log, process=process)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"proxy did not come up:\n{log.read_text()[-3000:]}")


def stop_proxy(proxy: Proxy) -> None:
    proxy.process.terminate()
    try:
        proxy.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proxy.process.kill()
        proxy.process.wait()


@pytest.fixture(scope="session", autouse=True)
def no_kernel_left_behind() -> Iterator[None]:
    """Every sandbox kernel the session's proxies started is gone at the end, with its dir."""
    yield
    from tests.sandbox_helpers import processes_mentioning

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        dirs = sorted(os.listdir(SANDBOX_DIR)) if SANDBOX_DIR.exists() else []
        left = (processes_mentioning(str(SANDBOX_DIR)), dirs)
        if left == ([], []):
            break
        time.sleep(0.1)
    shutil.rmtree(SANDBOX_DIR, ignore_errors=True)
    assert left == ([], []), f"sandbox kernels or work dirs left behind: {left}"


@pytest.fixture(scope="session")
def gateway() -> Iterator[Any]:
    """A real Kernel Gateway as ``make gateway`` starts it (tests/gateway_helpers.py)."""
    from tests.gateway_helpers import start_gateway, stop_gateway

    running = start_gateway()
    yield running
    stop_gateway(running)


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    running = start_proxy(proxy_config(upstream.url), tmp_path_factory.mktemp("proxy"))
    yield running
    stop_proxy(running)


@pytest.fixture(scope="session")
def client(proxy: Proxy) -> openai.OpenAI:
    # max_retries=0: a retry would replay the next scripted answer and hide the first outcome.
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)


@dataclass
class Result:
    """What a client got, the same shape whether it streamed or not."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    reasoning_content: str | None
    usage: Any
    raw: Any

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        import json

        return [(c["name"], json.loads(c["arguments"])) for c in self.tool_calls]


class Case:
    """One test's conversation: a unique key ties its scripted answers to its requests."""

    def __init__(self, upstream: FakeUpstream, client: openai.OpenAI, stream: bool) -> None:
        self.key = f"case-{uuid.uuid4().hex[:12]}"
        self.upstream = upstream
        self.client = client
        self.stream = stream

    def script(self, *answers: Scripted | str) -> None:
        self.upstream.script(
            self.key, *(Scripted(content=a) if isinstance(a, str) else a for a in answers)
        )

    def user(self, text: str) -> dict[str, Any]:
        return {"role": "user", "content": f"{text} [{self.key}]"}

    @property
    def seen(self) -> list[dict[str, Any]]:
        """The request bodies the upstream received for this case."""
        return self.upstream.requests(self.key)

    def ask(self, messages: list[dict[str, Any]], model: str = "coder", **kwargs: Any) -> Result:
        if not self.stream:
            response = self.client.chat.completions.create(model=model, messages=messages, **kwargs)
            message = response.choices[0].message
            return Result(
                content=message.content,
                tool_calls=[
                    {"id": c.id, "type": c.type, **c.function.model_dump()}
                    for c in message.tool_calls or []
                ],
                finish_reason=response.choices[0].finish_reason,
                reasoning_content=getattr(message, "reasoning_content", None),
                usage=response.usage,
                raw=response,
            )
        reasoning: list[str] = []
        with self.client.chat.completions.stream(
            model=model, messages=messages, **kwargs
        ) as stream:
            for event in stream:
                if event.type == "chunk" and event.chunk.choices:
                    delta = event.chunk.choices[0].delta
                    extra = getattr(delta, "reasoning_content", None)
                    if extra:
                        reasoning.append(extra)
            final = stream.get_final_completion()
        message = final.choices[0].message
        return Result(
            content=message.content,
            tool_calls=[
                {
                    "id": c.id,
                    "type": c.type,
                    "name": c.function.name,
                    "arguments": c.function.arguments,
                }
                for c in message.tool_calls or []
            ],
            finish_reason=final.choices[0].finish_reason,
            reasoning_content="".join(reasoning) or None,
            usage=final.usage,
            raw=final,
        )


@pytest.fixture(params=[False, True], ids=["json", "stream"])
def case(request: pytest.FixtureRequest, upstream: FakeUpstream, client: openai.OpenAI) -> Case:
    return Case(upstream, client, stream=request.param)
