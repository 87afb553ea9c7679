"""The gateway backend through its API, against a real Kernel Gateway started as ``make gateway``
starts it: settings, and the attacks only a gateway has (another kernel name, the gateway's
environment and token, its API from inside a kernel, a kernel held past its request, output
past the gateway's rate limits). The local attack suite runs on the gateway too
(tests/test_sandbox.py, backend ``gateway``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from litellm_toolcode.config import GatewaySettings, settings_for
from litellm_toolcode.errors import ConfigError
from litellm_toolcode.sandbox import ENV_VARS, Limits, SandboxLimitError, jail
from litellm_toolcode.sandbox.messages import Collector, OutputTooLarge
from litellm_toolcode.sandbox.run import _cell
from tests.gateway_helpers import HOST_SECRET, Gateway, start_gateway, stop_gateway
from tests.sandbox_helpers import TOOLS, LoopThread, processes_of_uid

# --- settings ---------------------------------------------------------------------------------


def test_gateway_settings_come_from_the_environment() -> None:
    env = {"TOOLCODE_GATEWAY_URL": "http://gw:8765/", "TOOLCODE_GATEWAY_TOKEN": "t0k"}
    alias = settings_for("a", {"toolcode": {"enabled": True, "execution": "gateway"}})
    found = alias.gateway(env)
    assert found is not None
    assert (found.url, found.token) == ("http://gw:8765", "t0k")
    assert "t0k" not in repr(found) and "t0k" not in found.key
    assert settings_for("a", {"toolcode": {"enabled": True}}).gateway(env) is None
    with pytest.raises(ConfigError, match="TOOLCODE_GATEWAY_TOKEN"):
        alias.gateway({"TOOLCODE_GATEWAY_URL": "http://gw:8765"})
    with pytest.raises(ConfigError, match="http"):
        alias.gateway({**env, "TOOLCODE_GATEWAY_URL": "gw:8765"})
    own = settings_for(
        "b",
        {
            "toolcode": {
                "enabled": True,
                "execution": "gateway",
                "gateway_url": "https://kg.internal",
                "gateway_token_env": "KG_B",
            }
        },
    ).gateway({"KG_B": "other"})
    assert own == GatewaySettings(url="https://kg.internal", token="other")


@pytest.mark.parametrize(
    "toolcode",
    [{"gateway_token": "abc"}, {"gateway_token_env": "os.environ/KG_B"}],
    ids=["a-token", "a-reference"],
)
def test_a_token_in_model_info_is_refused(toolcode: dict[str, str]) -> None:
    # model_info is shown by /model/info (and LiteLLM resolves os.environ/ references in it):
    # only the name of the variable belongs there
    with pytest.raises(ConfigError) as caught:
        settings_for(
            "my-alias", {"toolcode": {"enabled": True, "execution": "gateway", **toolcode}}
        )
    assert "my-alias" in caught.value.message and "gateway_token_env" in caught.value.message


def test_kernel_side_limit_defaults_match_the_proxy_s() -> None:
    assert {key: getattr(Limits(), key) for key in jail.LIMIT_KEYS} == jail.DEFAULT_LIMITS
    assert set(jail.LIMIT_ENV.values()) <= set(ENV_VARS.values())


def test_the_gateway_s_rate_limit_notice_is_an_error_not_a_short_report() -> None:
    # what jupyter_server sends when its IOPub rate limit dropped output (the report may be
    # among the dropped messages): never read as a complete run
    collector = Collector("m1", output_kb=1024)
    notice = {
        "msg_type": "stream",
        "parent_header": {"msg_id": "m1"},
        "content": {"name": "stderr", "text": "IOPub data rate exceeded.\nThe Jupyter server..."},
    }
    with pytest.raises(OutputTooLarge, match="rate limit"):
        collector.iopub(notice)


# --- against a real gateway -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gsb(gateway: Gateway) -> Iterator[LoopThread]:
    loop = LoopThread(Limits(pool_size=1, timeout=3), gateway.settings)
    yield loop
    loop.close()


def notes(sb: LoopThread, code: str) -> list[str]:
    return [c.arguments["text"] for c in sb.run(code).calls]


def probe(sb: LoopThread, expression: str) -> Any:
    import ast

    (text,) = notes(sb, f"note(repr({expression}))")
    return ast.literal_eval(text)


def test_asking_for_another_kernel_name_still_gets_the_sandbox(gateway: Gateway) -> None:
    response = gateway.api("POST", "/api/kernels", json={"name": "python3", "env": {}})
    assert response.status_code == 201 and response.json()["name"] == "toolcode"
    assert gateway.api("DELETE", f"/api/kernels/{response.json()['id']}").status_code == 204
    other = dataclasses.replace(gateway.settings, kernel_name="python3")
    loop = LoopThread(Limits(pool_size=0, timeout=3), other)
    try:
        seen = probe(
            loop,
            "([n for _, n in __import__('socket').if_nameindex()], "
            "__import__('os').path.exists('/work/main/README.md'), __import__('os').getuid())",
        )
    finally:
        loop.close()
    assert seen[0] == ["lo"] and seen[1] is False and seen[2] >= jail.UID_BASE
    assert Path("/work/main/README.md").exists()  # hidden in there, not absent


def test_the_gateway_s_environment_and_token_are_out_of_reach(
    gsb: LoopThread, gateway: Gateway
) -> None:
    token_file = gateway.log  # the gateway's own files (its runtime dir, spec, log)
    seen = probe(
        gsb,
        "(dict(__import__('os').environ), "
        "[open(f'/proc/{p}/environ', 'rb').read() + open(f'/proc/{p}/cmdline', 'rb').read() "
        " for p in __import__('os').listdir('/proc') if p.isdigit()], "
        f"__import__('os').path.exists({str(token_file)!r}), "
        f"__import__('os').path.exists({str(gateway.home / 'gateway')!r}))",
    )
    text = repr(seen)
    assert gateway.token not in text and HOST_SECRET not in text
    assert "KG_" not in repr(seen[0]) and "JUPYTER_RUNTIME_DIR" in repr(seen[0])
    assert seen[2] is False and seen[3] is False  # the gateway's files do not exist in there
    # the gateway has them: the kernel was shut out, they were there to find
    gateway_env = Path(f"/proc/{gateway.process.pid}/environ").read_bytes()
    assert gateway.token.encode() in gateway_env and HOST_SECRET.encode() in gateway_env


def test_the_gateway_s_api_cannot_be_reached_from_a_kernel(
    gsb: LoopThread, gateway: Gateway
) -> None:
    before = gateway.log.read_text(errors="replace").count("GET /api ")
    seen = notes(
        gsb,
        "import socket, urllib.request\n"
        f"for host in ['127.0.0.1', 'localhost', '::1']:\n"
        "    try:\n"
        f"        socket.create_connection((host, {gateway.port}), timeout=1)\n"
        "        note('connected')\n"
        "    except OSError as e:\n        note(type(e).__name__)\n"
        "try:\n"
        f"    urllib.request.urlopen('{gateway.url}/api', timeout=1)\n"
        "    note('fetched')\n"
        "except Exception as e:\n    note(type(e).__name__)\n"
        f"note(repr(__import__('os').path.exists({str(gateway.home / 'gateway')!r})))",
    )
    assert "connected" not in seen and "fetched" not in seen and seen[-1] == "False"
    # and it reached nobody: the gateway logged no new request for its API root
    assert gateway.log.read_text(errors="replace").count("GET /api ") == before


def test_a_kernel_is_deleted_with_everything_it_started(gsb: LoopThread, gateway: Gateway) -> None:
    async def go() -> tuple[dict[str, Any], str, int]:
        kernel = await gsb.pool.take()
        cell = _cell(
            "import os, subprocess, threading, time\n"
            "subprocess.Popen(['/bin/sh', '-c', 'sleep 1000'], start_new_session=True)\n"
            "threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()\n"
            "note(str(os.getuid()))",
            TOOLS,
            64,
        )
        report = await kernel.execute(cell)
        gsb.pool.release(kernel)  # what run_code does: delete it, in the background
        return report, kernel.kernel_id, int(report["calls"][0]["arguments"]["text"])  # type: ignore[attr-defined]

    report, kernel_id, uid = gsb.call(go())
    assert report["error"] is None
    gsb.settle()
    assert gateway.api("GET", f"/api/kernels/{kernel_id}").status_code == 404
    assert processes_of_uid(uid) == []


def test_output_past_the_gateway_s_rate_limits_arrives_whole(gateway: Gateway) -> None:
    # 2000 messages at once, past jupyter_server's default rate limit (1000 msg/s), which
    # would drop some (the report among them); ours is off and the proxy counts bytes itself.
    # A longer timeout: thousands of messages take seconds on a loaded machine.
    loop = LoopThread(Limits(pool_size=0, timeout=20), gateway.settings)
    try:
        code = "for i in range(2000):\n    print(i, flush=True)\nnote('done')"
        assert notes(loop, code) == ["done"]
    finally:
        loop.close()


def test_a_gateway_that_drops_output_gives_an_error_not_a_short_report() -> None:
    # A gateway with jupyter_server's IOPub rate limit on (set low, so it bites at once): it
    # drops output, the report perhaps among it. The proxy never reads that as a finished run.
    limited = start_gateway(
        args=(
            "--ZMQChannelsWebsocketConnection.limit_rate=True",
            "--ZMQChannelsWebsocketConnection.iopub_msg_rate_limit=50",
            "--ZMQChannelsWebsocketConnection.rate_limit_window=1",
        )
    )
    loop = LoopThread(Limits(pool_size=0, timeout=20), limited.settings)
    try:
        with pytest.raises(SandboxLimitError) as caught:
            loop.run("for i in range(2000):\n    print(i, flush=True)\nnote('done')")
        assert caught.value.limit == "output" and "rate limit" in caught.value.message
    finally:
        loop.close()
        stop_gateway(limited)


@pytest.mark.parametrize(
    "flood",
    ["for i in range(100):\n    print('x' * 100_000, flush=True)", "print('y' * 5_000_000)"],
    ids=["many", "one-huge"],
)
def test_output_past_the_proxy_s_cap_is_a_clear_error(gsb: LoopThread, flood: str) -> None:
    with pytest.raises(SandboxLimitError) as caught:
        gsb.run(flood + "\nnote('never')")
    assert caught.value.limit == "output" and "printed more than 1024 KiB" in caught.value.message
    assert notes(gsb, "note('next')") == ["next"]


def test_a_gateway_without_the_token_refuses_everything(gateway: Gateway) -> None:
    for method, path in (("GET", "/api"), ("POST", "/api/kernels"), ("GET", "/api/kernelspecs")):
        bare = httpx.request(method, f"{gateway.url}{path}", json={"env": {}}, timeout=10)
        assert bare.status_code == 401, (method, path)
        wrong = httpx.request(
            method, f"{gateway.url}{path}", headers={"Authorization": "token x"}, timeout=10
        )
        assert wrong.status_code == 401, (method, path)
