"""``execution: gateway`` through the real proxy, on a host that cannot create namespaces.

The proxy runs under ``setpriv --bounding-set -sys_admin``: its launcher's ``unshare`` is
refused, as in LiteLLM's stock Docker image, so its local sandbox cannot start a kernel (alias
``local`` proves it). Alias ``runner`` has ``execution: gateway`` and runs code on a real Kernel
Gateway started as ``make gateway`` starts it. The functional and attack cases of
tests/test_sandbox_proxy.py run here unchanged against it (imported below), then the failure
modes: gateway down at start and mid-request, a wrong token, the gateway at its kernel limit, a
kernel killed mid-execution; each a clear error, literal calls unaffected.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import (
    MASTER_KEY,
    UPSTREAM_KEY,
    Case,
    Proxy,
    free_port,
    model_entry,
    start_proxy,
    stop_proxy,
)
from tests.fake_upstream import FakeUpstream
from tests.gateway_helpers import (
    HOST_SECRET,
    Gateway,
    kernel_pids,
    server_pid,
    start_gateway,
    stop_gateway,
)
from tests.test_proxy import WEATHER, code
from tests.test_sandbox_proxy import expect_error as sandbox_expect_error

# The local sandbox's through-the-proxy cases, run here against the gateway (alias `runner`).
from tests.test_sandbox_proxy import (  # noqa: F401
    test_an_attribute_of_the_tool_itself_stands_for_its_result,
    test_code_reading_proxy_secrets_finds_nothing,
    test_code_using_a_result_gets_the_calls_before,
    test_crashing_kernel_gives_an_error_and_the_next_request_runs,
    test_forged_call_to_an_unknown_tool_is_refused,
    test_hanging_kernel_errors_while_the_proxy_serves_others,
    test_literal_only_alias_refuses_the_same_code,
    test_loop_over_cities_gives_one_tool_call_each,
)

NO_NAMESPACES = ("setpriv", "--bounding-set", "-sys_admin", "--")
DEAD_PORT = free_port()  # nothing listens there
BAD_TOKEN = "not-the-gateway-token"


def config(upstream_url: str) -> str:
    def entry(alias: str, toolcode: str) -> str:
        settings = f"{{enabled: true, max_repair_rounds: 0, {toolcode}}}"
        return model_entry(upstream_url, alias, settings)

    return (
        "model_list:\n"
        + entry("coder", "execution: literal_only")
        + entry("runner", "execution: gateway")
        + entry("local", "execution: auto")
        + entry("gw-down", f"execution: gateway, gateway_url: 'http://127.0.0.1:{DEAD_PORT}'")
        + entry("gw-badtoken", "execution: gateway, gateway_token_env: TEST_BAD_TOKEN")
        + entry(
            "gw-small",
            "execution: gateway, gateway_url: os.environ/TEST_SMALL_URL, "
            "gateway_token_env: TEST_SMALL_TOKEN",
        )
        + "litellm_settings:\n"
        '  callbacks: ["litellm_toolcode.proxy_handler_instance"]\n'
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )


@pytest.fixture(scope="module")
def small_gateway() -> Iterator[list[Gateway]]:
    """A gateway with room for two kernels; a list, so a test can replace it after a kill."""
    holder = [start_gateway(max_kernels=2)]
    yield holder
    stop_gateway(holder[0])


@pytest.fixture(scope="module")
def proxy(
    upstream: FakeUpstream,
    gateway: Gateway,
    small_gateway: list[Gateway],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Proxy]:
    small = small_gateway[0]
    env = {
        "TOOLCODE_GATEWAY_URL": gateway.url,
        "TOOLCODE_GATEWAY_TOKEN": gateway.token,
        "TEST_BAD_TOKEN": BAD_TOKEN,
        "TEST_SMALL_URL": small.url,
        "TEST_SMALL_TOKEN": small.token,
        "TOOLCODE_SANDBOX_START_TIMEOUT": "6",  # the bound on waiting for a full gateway
    }
    running = start_proxy(
        config(upstream.url), tmp_path_factory.mktemp("noproxyns"), env=env, prefix=NO_NAMESPACES
    )
    yield running
    stop_proxy(running)
    log = running.log.read_text(errors="replace")
    for secret in (gateway.token, small.token, BAD_TOKEN, MASTER_KEY):
        assert secret not in log, "a token reached the proxy's log"
    assert gateway.token not in gateway.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)


def expect_error(case: Case, model: str, text: str, *fragments: str) -> str:
    case.script(text)
    return sandbox_expect_error(case, *fragments, model=model)


LOOP = code("for c in ['A', 'B']:", "    get_weather(location=c)")
LITERAL = code("get_weather(location='Bern')")


def literal_still_works(case: Case, model: str) -> None:
    follow = Case(case.upstream, case.client, case.stream)
    follow.script(LITERAL)
    assert follow.ask(model=model, messages=[follow.user("lit")], tools=[WEATHER]).calls() == [
        ("get_weather", {"location": "Bern"})
    ]


def loop_works(case: Case, model: str) -> None:
    follow = Case(case.upstream, case.client, case.stream)
    follow.script(LOOP)
    assert follow.ask(model=model, messages=[follow.user("loop")], tools=[WEATHER]).calls() == [
        ("get_weather", {"location": "A"}),
        ("get_weather", {"location": "B"}),
    ]


def eventually_loop_works(case: Case, model: str, seconds: float = 90) -> None:
    """After a failure the pool retries behind, backing off (up to 30 s between starts)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            loop_works(case, model)
            return
        except openai.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


# --- the host cannot sandbox; the gateway can --------------------------------------------------


def test_this_host_refuses_the_local_sandbox(case: Case) -> None:
    expect_error(case, "local", LOOP, "code execution is unavailable", "not permitted")
    literal_still_works(case, "local")


def test_a_comprehension_runs_on_the_gateway(case: Case) -> None:
    case.script(code("[get_weather(location=f'{c}ville') for c in 'XY']"))
    result = case.ask(model="runner", messages=[case.user("two")], tools=[WEATHER])
    assert result.finish_reason == "tool_calls"
    assert result.calls() == [
        ("get_weather", {"location": "Xville"}),
        ("get_weather", {"location": "Yville"}),
    ]


def test_code_hunting_for_the_gateway_s_token_finds_nothing(case: Case, gateway: Gateway) -> None:
    case.script(
        code(
            "import os",
            "found = repr(dict(os.environ))",
            "for p in os.listdir('/proc'):",
            "    try:",
            "        found += open(f'/proc/{p}/environ').read()",
            "        found += open(f'/proc/{p}/cmdline').read()",
            "    except OSError:",
            "        pass",
            "get_weather(location=found)",
        )
    )
    calls = case.ask(model="runner", messages=[case.user("hunt")], tools=[WEATHER]).calls()
    everything = json.dumps(calls)
    assert len(calls) == 1 and "PATH" in everything  # it ran and reported
    for secret in (gateway.token, HOST_SECRET, MASTER_KEY, UPSTREAM_KEY):
        assert secret not in everything


# --- failure modes ------------------------------------------------------------------------------


def test_gateway_down_at_start(case: Case) -> None:
    expect_error(
        case,
        "gw-down",
        LOOP,
        "code execution is unavailable",
        f"cannot reach the kernel gateway at http://127.0.0.1:{DEAD_PORT}",
    )
    literal_still_works(case, "gw-down")


def test_wrong_token(case: Case, gateway: Gateway) -> None:
    message = expect_error(
        case, "gw-badtoken", LOOP, "code execution is unavailable", "refused the token"
    )
    assert BAD_TOKEN not in message and gateway.token not in message
    literal_still_works(case, "gw-badtoken")


def test_gateway_at_its_kernel_limit_waits_then_errors(
    upstream: FakeUpstream, client: openai.OpenAI, small_gateway: list[Gateway]
) -> None:
    # Before the alias's pool exists (no request used gw-small yet): others hold every kernel
    # the gateway allows. The first request waits, bounded, then gets an error; once starts
    # keep failing, later ones get it at once (the pool retries behind, backing off).
    small = small_gateway[0]
    held = []
    while (response := small.api("POST", "/api/kernels", json={"env": {}})).status_code == 201:
        held.append(response.json()["id"])
        assert len(held) <= 2
    assert response.status_code == 403 and "Resource Limit" in response.text
    cases = [Case(upstream, client, stream=False), Case(upstream, client, stream=True)]
    try:
        for number, case in enumerate(cases):
            started = time.monotonic()
            expect_error(case, "gw-small", LOOP, "code execution is unavailable", "kernel limit")
            waited = time.monotonic() - started
            assert waited < 30, waited
            if number == 0:  # it waited for a kernel (start timeout 6 s + 5 s), then answered
                assert waited > 5, waited
            literal_still_works(case, "gw-small")
    finally:
        for kernel_id in held:
            small.api("DELETE", f"/api/kernels/{kernel_id}")
    for case in cases:  # room again: the pool's retries get kernels, no restart needed
        eventually_loop_works(case, "gw-small")


def running_kernel(gateway: Gateway, marker: str) -> int:
    """The pid of the gateway kernel that wrote ``/home/<marker>`` (the host sees into a
    kernel's own file system through /proc/<pid>/root)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for pid in kernel_pids(gateway):
            if os.path.exists(f"/proc/{pid}/root/home/{marker}"):
                return pid
        time.sleep(0.05)
    raise AssertionError("the kernel never ran the code")


def _slow_request(
    case: Case, model: str, marker: str
) -> tuple[threading.Thread, list[BaseException | object]]:
    """A request whose code marks its kernel with ``marker`` and then sleeps, sent from a
    thread: the kernel can be found and killed while it runs. The thread's outcome (the
    result or the exception) lands in the list."""
    case.script(
        code(
            f"open('/home/{marker}', 'w').write('x')",
            "import time",
            "time.sleep(2.5)",
            "get_weather(location='never')",
        )
    )
    outcome: list[BaseException | object] = []

    def ask() -> None:
        try:
            outcome.append(case.ask(model=model, messages=[case.user(marker)], tools=[WEATHER]))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=ask)
    thread.start()
    return thread, outcome


def test_kernel_killed_mid_execution(case: Case, gateway: Gateway) -> None:
    marker = f"killme-{case.key}"
    thread, outcome = _slow_request(case, "runner", marker)
    os.kill(running_kernel(gateway, marker), signal.SIGKILL)
    thread.join(60)
    (error,) = outcome
    assert isinstance(error, openai.APIError), error
    assert "crashed the sandbox" in str(error.message)
    loop_works(case, "runner")


def test_gateway_down_mid_request(case: Case, small_gateway: list[Gateway]) -> None:
    small = small_gateway[0]
    eventually_loop_works(case, "gw-small")
    marker = f"down-{case.key}"
    thread, outcome = _slow_request(case, "gw-small", marker)
    running_kernel(small, marker)  # its code runs on the gateway now
    os.kill(server_pid(small), signal.SIGKILL)
    thread.join(60)
    (error,) = outcome
    assert isinstance(error, openai.APIError), error
    message = str(error.message)
    assert "code execution is unavailable" in message and "closed" in message, message
    literal_still_works(case, "gw-small")
    # the gateway comes back where it was: the alias recovers without a proxy restart
    small.process.wait(30)
    stop_gateway(small)
    small_gateway[0] = start_gateway(max_kernels=2, port=small.port, token=small.token)
    eventually_loop_works(case, "gw-small")


def test_no_token_in_any_kernel_work_dir(gateway: Gateway) -> None:
    # a gateway kernel's own connection file holds its ZeroMQ key, never the gateway's token
    for path in Path(gateway.sandbox_dir).glob("*/ipc/connection.json"):
        assert gateway.token not in path.read_text()
