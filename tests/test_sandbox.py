"""The sandbox through its API: what model code can do in it (loops, results, errors) and what
it cannot (the attack suite). Every attack asserts on effects on the host: the secret was not
read, the host file was not written, no process was left, the next kernel was clean, the pool
still serves. A real pool on a background event loop runs the kernels, as in the proxy.

Every test runs on both backends: ``local`` (kernels on this host) and ``gateway`` (kernels on
a real Kernel Gateway started as ``make gateway`` starts it, on this same host, so the host-side
effects are checked the same way).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from litellm_toolcode.answer import interpret
from litellm_toolcode.errors import ToolArgumentError, UnknownToolError
from litellm_toolcode.sandbox import (
    CodeExecutionError,
    Limits,
    SandboxLimitError,
)
from litellm_toolcode.sandbox.kernel import Kernel
from litellm_toolcode.sandbox.run import _cell
from litellm_toolcode.schema_code import build_toolset
from tests.gateway_helpers import HOST_SECRET, Gateway
from tests.sandbox_helpers import (
    TOOL_SPECS,
    TOOLS,
    LoopThread,
    processes_mentioning,
    processes_of_uid,
    tool,
)

SECRET = HOST_SECRET  # in this process's environment and in the test gateway's


@pytest.fixture(scope="module")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture(scope="module", params=["local", "gateway"])
def sb(request: pytest.FixtureRequest, sandbox_dir: Path) -> Iterator[LoopThread]:
    os.environ["TOOLCODE_TEST_SECRET"] = SECRET  # the kernel must never see this
    limits = Limits(pool_size=2, timeout=2.5, directory=str(sandbox_dir))
    gateway: Gateway | None = None
    before: set[Any] = set()
    if request.param == "gateway":
        gateway = request.getfixturevalue("gateway")
        assert gateway is not None
        # the session's gateway, shared: what others left there (a stopped proxy's spares,
        # until culled) is not this module's
        sandbox_dir = gateway.sandbox_dir
        before = set(processes_mentioning(str(sandbox_dir))) | set(os.listdir(sandbox_dir))
    loop = LoopThread(limits, gateway.settings if gateway is not None else None)
    yield loop
    loop.close()
    del os.environ["TOOLCODE_TEST_SECRET"]
    # nothing left behind: no kernel or launcher process, no work dir
    assert set(processes_mentioning(str(sandbox_dir))) <= before
    assert set(os.listdir(sandbox_dir)) <= before


def notes(sb: LoopThread, code: str) -> list[str]:
    """Run ``code``; the texts it passed to note(), in order."""
    return [c.arguments["text"] for c in sb.run(code).calls]


def probe(sb: LoopThread, expression: str) -> Any:
    """Evaluate ``expression`` in a fresh kernel; its value, via a recorded note(repr(...))."""
    import ast

    (text,) = notes(sb, f"note(repr({expression}))")
    return ast.literal_eval(text)


def run_taking_kernel(
    sb: LoopThread, code: str, timeout: float | None = None
) -> tuple[dict[str, Any] | BaseException, int]:
    """Run ``code`` on a kernel taken by hand; (report or exception, the kernel's uid), after
    the kernel is closed."""

    async def go() -> tuple[dict[str, Any] | BaseException, int]:
        kernel = await sb.pool.take()
        outcome: dict[str, Any] | BaseException
        seconds = timeout or sb.pool.limits.timeout
        if isinstance(kernel, Kernel):
            uid = kernel.uid
        else:  # a gateway kernel: ask it (a second cell, for this test's eyes only)
            uid_cell = _cell("import os\nnote(str(os.getuid()))", TOOLS, 64)
            uid = int((await kernel._execute(uid_cell))["calls"][0]["arguments"]["text"])  # type: ignore[attr-defined]
        try:
            cell = _cell(code, TOOLS, 64)
            if isinstance(kernel, Kernel):
                outcome = await kernel._execute(cell, timeout=seconds)
            else:
                outcome = await asyncio.wait_for(kernel._execute(cell), seconds)  # type: ignore[attr-defined]
        except BaseException as exc:
            outcome = exc
        await kernel.close()
        sb.pool._kernels.discard(kernel)
        return outcome, uid

    return sb.call(go())


def still_serving(sb: LoopThread) -> None:
    execution = sb.run("for c in ['Oslo', 'Bern']:\n    get_weather(location=c)")
    assert [c.arguments for c in execution.calls] == [{"location": "Oslo"}, {"location": "Bern"}]


# --- what the sandbox is for ------------------------------------------------------------------


def test_loop_over_cities_records_each_call(sb: LoopThread) -> None:
    execution = sb.run(
        "cities = ['Paris', 'Rome', 'Oslo']\n"
        "for city in cities:\n"
        "    get_weather(location=city, unit='celsius' if city != 'Oslo' else 'fahrenheit')"
    )
    assert [c.function for c in execution.calls] == ["get_weather"] * 3
    assert [c.arguments["unit"] for c in execution.calls] == ["celsius", "celsius", "fahrenheit"]
    assert execution.result_used is None


def test_comprehension_fstring_and_arithmetic(sb: LoopThread) -> None:
    assert notes(sb, "[note(f'{i}*{i}={i * i}') for i in range(1, 4)]") == [
        "1*1=1",
        "2*2=4",
        "3*3=9",
    ]


def test_using_a_result_stops_and_returns_the_calls_before(sb: LoopThread) -> None:
    execution = sb.run(
        "w = get_weather(location='Paris')\n"
        "if w['temp'] > 20:\n"
        "    get_weather(location='Nice')\n"
        "get_weather(location='Rome')"
    )
    assert [c.arguments["location"] for c in execution.calls] == ["Paris"]
    assert execution.result_used == "get_weather"


@pytest.mark.parametrize(
    "use",
    ["print(w)", "str(w)", "w.temp", "len(w)", "bool(w)", "w + 1", "note(w)", "note(text=[w])"],
)
def test_every_use_of_a_result_is_detected(sb: LoopThread, use: str) -> None:
    execution = sb.run(f"w = get_weather(location='Paris')\n{use}\nnote('after')")
    assert [c.function for c in execution.calls] == ["get_weather"]
    assert execution.result_used == "get_weather"


def test_an_attribute_of_a_called_tool_is_a_use_of_its_result(sb: LoopThread) -> None:
    # Seen from the real model (LangGraph agent): `f(...)` then `g(x=f.price)`, meaning f's result.
    execution = sb.run(
        "get_weather(location='Paris')\n"
        "note(text=get_weather.temperature)\n"
        "get_weather(location='Rome')"
    )
    assert [c.arguments["location"] for c in execution.calls] == ["Paris"]
    assert execution.result_used == "get_weather"
    assert sb.run("get_weather.__name__\nget_weather(location='Oslo')").result_used is None


def test_a_swallowed_result_use_still_cuts_the_calls(sb: LoopThread) -> None:
    execution = sb.run(
        "w = get_weather(location='Paris')\n"
        "try:\n    w['temp']\nexcept BaseException:\n    pass\n"
        "get_weather(location='Rome')"
    )
    assert [c.arguments["location"] for c in execution.calls] == ["Paris"]


def test_an_error_in_the_code_names_the_line(sb: LoopThread) -> None:
    with pytest.raises(CodeExecutionError) as caught:
        sb.run("note('a')\nx = undefined_name + 1")
    assert "line 2" in caught.value.message and "NameError" in caught.value.message


def test_bad_arguments_are_refused_in_the_kernel(sb: LoopThread) -> None:
    with pytest.raises(CodeExecutionError) as caught:
        sb.run("for u in ['celsius', 'kelvin']:\n    get_weather(location='Oslo', unit=u)")
    assert "unit" in caught.value.message


def test_validated_on_the_host_through_interpret(sb: LoopThread) -> None:
    reply = sb.interpret("```python\nfor c in ['A', 'B']:\n    get_weather(location=c)\n```")
    assert [json.loads(c.arguments) for c in reply.tool_calls] == [
        {"location": "A"},
        {"location": "B"},
    ]


def test_a_bare_tool_name_is_a_call_as_in_the_literal_path(sb: LoopThread) -> None:
    # `ls` on a line of its own, as in a shell: the tool without arguments (check.py alike)
    toolset = build_toolset([*TOOL_SPECS, tool("ping", {}, [])])
    text = "```python\nfor c in ['A', 'B']:\n    get_weather(location=c)\nping\n```"
    reply = sb.interpret(text, toolset)
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("get_weather", {"location": "A"}),
        ("get_weather", {"location": "B"}),
        ("ping", {}),
    ]
    literal = interpret("```python\nget_weather(location='A')\nping\n```", toolset)
    assert [c.name for c in literal.tool_calls] == ["get_weather", "ping"]


def test_too_many_calls_is_an_error(sb: LoopThread) -> None:
    with pytest.raises(CodeExecutionError, match="too many tool calls"):
        sb.run("for i in range(1000):\n    note(str(i))")


# --- the attack suite -------------------------------------------------------------------------
# Secrets on the host: files the proxy can read, its environment, its processes.


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A world-writable host dir on a world-traversable path: only the sandbox hides it."""
    place = Path(tempfile.mkdtemp(prefix="toolcode-test-host-"))
    place.chmod(0o777)
    yield place
    shutil.rmtree(place)


@pytest.fixture
def host_secrets(open_dir: Path) -> dict[str, Path]:
    place = open_dir
    files = {
        "config": place / "config.yaml",
        "env": place / ".env",
        "key": place / "master_key.txt",
    }
    files["config"].write_text(f"general_settings:\n  master_key: {SECRET}\n")
    files["env"].write_text(f"OPENAI_API_KEY={SECRET}\n")
    files["key"].write_text(SECRET)
    for path in files.values():
        path.chmod(0o644)  # world-readable, as such files usually are
    return files


@pytest.mark.parametrize("which", ["config", "env", "key"])
def test_attack_read_proxy_files(sb: LoopThread, host_secrets: dict[str, Path], which: str) -> None:
    path = host_secrets[which]
    code = (
        "import os\n"
        f"for p in [{str(path)!r}, {path.name!r}, '../' + {path.name!r}]:\n"
        "    try:\n        note(open(p).read())\n"
        "    except OSError as e:\n        note(type(e).__name__)"
    )
    seen = notes(sb, code)
    assert seen == ["FileNotFoundError"] * 3
    assert path.read_text().count(SECRET) == 1  # still there on the host: it was just not seen


def test_attack_read_the_checkout_and_home(sb: LoopThread) -> None:
    seen = probe(
        sb,
        "[(p, __import__('os').path.exists(p)) for p in ('/work/main/config.yaml', "
        "'/work/main/README.md', '/root/.bash_history', '/etc/shadow', '/etc/hostname')]",
    )
    assert all(not exists for path, exists in seen if path != "/etc/hostname")
    assert Path("/work/main/README.md").exists()  # the proof that it was hidden, not absent


def test_attack_environment_has_no_secrets(sb: LoopThread) -> None:
    environ = probe(sb, "dict(__import__('os').environ)")
    assert SECRET not in repr(environ)
    leaked = [k for k in environ if "KEY" in k or "PROXY" in k.upper() or "LITELLM" in k]
    assert leaked == []
    assert "/root" not in environ.get("HOME", "")


def test_attack_proc_shows_no_host_process(sb: LoopThread) -> None:
    pids = probe(sb, "sorted(int(p) for p in __import__('os').listdir('/proc') if p.isdigit())")
    assert os.getpid() not in pids and 1 in pids and len(pids) <= 3
    environ = probe(sb, "open('/proc/1/environ', 'rb').read()")
    assert SECRET.encode() not in environ


def test_attack_tcp_connect_to_the_host(sb: LoopThread) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    seen = notes(
        sb,
        "import socket\n"
        f"for host in ['127.0.0.1', 'localhost', '10.0.2.2', '1.1.1.1']:\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=1)\n"
        "        note('connected')\n"
        "    except OSError as e:\n        note(type(e).__name__)",
    )
    assert "connected" not in seen
    with pytest.raises(TimeoutError):
        server.accept()  # nobody knocked
    server.close()


def test_attack_http_request_out(sb: LoopThread) -> None:
    hits: list[str] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    server.settimeout(3)

    def serve() -> None:
        try:
            conn, _ = server.accept()
            hits.append(conn.recv(100).decode())
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    seen = notes(
        sb,
        "import urllib.request\n"
        f"for url in ['http://127.0.0.1:{port}/steal', 'http://example.com/']:\n"
        "    try:\n        urllib.request.urlopen(url, timeout=1)\n        note('fetched')\n"
        "    except Exception as e:\n        note(type(e).__name__)",
    )
    thread.join()
    server.close()
    assert "fetched" not in seen and hits == []


def test_attack_udp_and_abstract_unix_socket(sb: LoopThread) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.3)
    name = f"\0toolcode-test-{os.getpid()}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(name)
    unix.listen()
    unix.settimeout(0.3)
    seen = notes(
        sb,
        "import socket\n"
        "try:\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"    s.sendto(b'leak', ('127.0.0.1', {udp.getsockname()[1]}))\n"
        "    note('sent')\n"
        "except OSError as e:\n    note(type(e).__name__)\n"
        "try:\n"
        "    u = socket.socket(socket.AF_UNIX)\n"
        f"    u.connect({name!r})\n"
        "    note('connected')\n"
        "except OSError as e:\n    note(type(e).__name__)",
    )
    assert "connected" not in seen
    with pytest.raises(TimeoutError):
        udp.recvfrom(100)
    with pytest.raises(TimeoutError):
        unix.accept()
    udp.close()
    unix.close()


def test_attack_network_interfaces_are_down(sb: LoopThread) -> None:
    assert probe(sb, "[n for _, n in __import__('socket').if_nameindex()]") == ["lo"]


# Resources: processes, memory, CPU, time, output, disk.


def test_attack_fork_bomb(sb: LoopThread) -> None:
    outcome, uid = run_taking_kernel(
        sb,
        "import os, time\n"
        "while True:\n"
        "    try:\n        os.fork()\n"
        "    except OSError:\n        time.sleep(0.05)",
    )
    assert isinstance(outcome, TimeoutError)
    assert processes_of_uid(uid) == []  # the whole bomb died with its kernel
    still_serving(sb)


def test_attack_fork_bomb_hits_the_process_limit(sb: LoopThread) -> None:
    outcome = sb.run(
        "import os\nkids = 0\n"
        "try:\n"
        "    while kids < 500:\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n            import time; time.sleep(30)\n"
        "        kids += 1\n"
        "except OSError as e:\n    note(f'{kids} {type(e).__name__}')"
    )
    kids, error = outcome.calls[0].arguments["text"].split()
    assert int(kids) < 40 and error == "BlockingIOError"


def test_attack_memory_bomb(sb: LoopThread) -> None:
    with pytest.raises(CodeExecutionError, match="MemoryError"):
        sb.run("x = bytearray(8 * 1024 ** 3)")
    with pytest.raises(CodeExecutionError, match="MemoryError"):
        sb.run("chunks = []\nwhile True:\n    chunks.append(b'x' * 10 ** 7)")
    still_serving(sb)


def test_attack_infinite_loop(sb: LoopThread) -> None:
    with pytest.raises(SandboxLimitError) as caught:
        sb.run("while True:\n    pass")
    assert caught.value.limit == "time"
    still_serving(sb)


def test_attack_loop_ignoring_interrupts(sb: LoopThread) -> None:
    outcome, uid = run_taking_kernel(
        sb,
        "import signal\n"
        "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGXCPU):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "while True:\n    pass",
    )
    assert isinstance(outcome, TimeoutError)
    assert processes_of_uid(uid) == []


def test_attack_uninterruptible_c_loop(sb: LoopThread) -> None:
    with pytest.raises(SandboxLimitError):
        sb.run("import re\nre.match(r'(a+)+$', 'a' * 64 + 'b')")
    still_serving(sb)


def test_attack_sleep_forever(sb: LoopThread) -> None:
    with pytest.raises(SandboxLimitError):
        sb.run("import time\ntime.sleep(10 ** 6)")


def test_attack_cpu_spin_in_a_thread_dies_with_the_kernel(sb: LoopThread) -> None:
    outcome, uid = run_taking_kernel(
        sb,
        "import threading\n"
        "def spin():\n    while True:\n        pass\n"
        "for _ in range(4):\n    threading.Thread(target=spin, daemon=True).start()\n"
        "get_weather(location='Oslo')",
    )
    assert isinstance(outcome, dict) and outcome["calls"][0]["arguments"] == {"location": "Oslo"}
    assert processes_of_uid(uid) == []


def test_attack_background_process_dies_with_the_kernel(sb: LoopThread) -> None:
    outcome, uid = run_taking_kernel(
        sb,
        "import subprocess\n"
        "subprocess.Popen(['/bin/sh', '-c', 'sleep 1000'], start_new_session=True)\n"
        "import os\nif os.fork() == 0:\n    os.setsid()\n    import time; time.sleep(1000)\n"
        "note('spawned')",
    )
    assert isinstance(outcome, dict) and outcome["calls"][0]["arguments"] == {"text": "spawned"}
    assert processes_of_uid(uid) == []


def test_attack_huge_output(sb: LoopThread) -> None:
    for flood in ("print('x' * 50_000_000)", "while True:\n    print('y' * 10_000)"):
        with pytest.raises((SandboxLimitError, CodeExecutionError)) as caught:
            sb.run(flood)
        # cut by the output cap, or the kernel runs out of memory buffering it: contained
        if isinstance(caught.value, SandboxLimitError):
            assert caught.value.limit in ("output", "time", "crash")
        else:
            assert "MemoryError" in str(caught.value)
    still_serving(sb)


def test_attack_write_outside_the_work_dir(sb: LoopThread, open_dir: Path) -> None:
    targets = [
        str(open_dir / "pwned"),
        "/tmp/pwned-toolcode",
        "/work/main/pwned",
        "/etc/pwned",
        "/usr/pwned",
        f"{os.path.dirname(os.__file__)}/pwned.py",
    ]
    seen = notes(
        sb,
        f"for p in {targets!r}:\n"
        "    try:\n        open(p, 'w').write('x')\n        note('wrote ' + p)\n"
        "    except OSError as e:\n        note(type(e).__name__)",
    )
    assert not any(s.startswith("wrote") for s in seen)
    assert not any(os.path.exists(p) for p in targets)


def test_attack_write_into_the_socket_dir(sb: LoopThread) -> None:
    outcome, _ = run_taking_kernel(
        sb,
        "import os, sys\n"
        "d = os.path.dirname(sys.argv[sys.argv.index('-f') + 1])\n"
        "try:\n    open(d + '/dropped', 'w').write('x' * 1000)\n    note('wrote')\n"
        "except OSError as e:\n    note(type(e).__name__)",
    )
    assert isinstance(outcome, dict)
    assert outcome["calls"][0]["arguments"]["text"] == "PermissionError"


def test_attack_fill_the_disk(sb: LoopThread) -> None:
    with pytest.raises(CodeExecutionError) as caught:
        sb.run("with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 2 ** 20)")
    assert "File too large" in caught.value.message or "No space" in caught.value.message
    with pytest.raises(CodeExecutionError):
        sb.run("i = 0\nwhile True:\n    open(f'f{i}', 'w').write('x' * 4096)\n    i += 1")
    still_serving(sb)


def test_attack_leave_files_and_patches_for_the_next_request(sb: LoopThread) -> None:
    notes(
        sb,
        "import builtins, json, os, sys\n"
        "open('/home/marker', 'w').write('x')\n"
        "builtins.TOOLCODE_MARK = 1\n"
        "json.dumps = lambda *a, **k: '{}'\n"
        "sys.modules['pydantic'].BaseModel.model_validate = classmethod(lambda c, d: None)\n"
        "note('planted')",
    )
    seen = probe(
        sb,
        "(__import__('os').listdir('/home'), hasattr(__import__('builtins'), 'TOOLCODE_MARK'), "
        "__import__('json').dumps([1]))",
    )
    assert "marker" not in seen[0] and seen[1] is False and seen[2] == "[1]"
    # the validation patch did not survive either: bad arguments are refused again
    with pytest.raises(CodeExecutionError):
        sb.run("for u in ['kelvin']:\n    get_weather(location='x', unit=u)")


def test_attack_kill_the_parent(sb: LoopThread) -> None:
    outcome, _ = run_taking_kernel(
        sb,
        "import os, signal\n"
        "for pid in (os.getppid(), 1, -1):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError as e:\n        pass\n"
        f"os.kill({os.getpid()}, signal.SIGKILL)",
    )
    assert isinstance(outcome, dict)
    assert "ProcessLookupError" in outcome["error"]["message"]  # the host pid is not visible
    still_serving(sb)  # this process (the proxy's stand-in) is alive and the pool serves


def test_attack_ctypes_kill_and_exit(sb: LoopThread) -> None:
    outcome, _ = run_taking_kernel(
        sb,
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None)\n"
        f"libc.kill({os.getpid()}, 9)\n"
        "libc.kill(0, 9)\n",
    )
    assert isinstance(outcome, dict) and outcome["error"] is None  # it hit nobody
    with pytest.raises(SandboxLimitError) as caught:
        sb.run("import os\nos._exit(0)")
    assert caught.value.limit == "crash"
    still_serving(sb)


def test_attack_privilege_escalation(sb: LoopThread) -> None:
    seen = notes(
        sb,
        "import os, ctypes, subprocess\n"
        "for attempt in (lambda: os.setuid(0), lambda: os.chroot('/usr'),\n"
        "                lambda: os.mknod('/home/mem', 0o600 | 0o020000, os.makedev(1, 1)),\n"
        "                lambda: open('/dev/mem', 'rb')):\n"
        "    try:\n        attempt()\n        note('ok')\n"
        "    except OSError as e:\n        note(type(e).__name__)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "note(str(libc.mount(b'none', b'/home', b'tmpfs', 0, None)))\n"
        "note(str(os.getuid() != 0 and os.geteuid() != 0))\n"
        "note(open('/proc/self/status').read().split('CapEff:')[1].split()[0])",
    )
    assert seen[:4] == [
        "PermissionError",
        "PermissionError",
        "PermissionError",
        "FileNotFoundError",
    ]
    assert seen[4] == "-1" and seen[5] == "True" and int(seen[6], 16) == 0


def test_attack_subprocess_is_contained(sb: LoopThread, host_secrets: dict[str, Path]) -> None:
    (text,) = notes(
        sb,
        "import subprocess\n"
        "r = subprocess.run(['/bin/sh', '-c', "
        f"'cat {host_secrets['config']} /work/main/config.yaml; id -u; env'], "
        "capture_output=True, text=True)\n"
        "note(r.stdout + r.stderr)",
    )
    assert SECRET not in text and "master_key" not in text
    assert "No such file" in text


def test_attack_import_tricks(sb: LoopThread) -> None:
    seen = notes(
        sb,
        "import importlib, builtins, sys\n"
        "os1 = __import__('os')\n"
        "os2 = importlib.import_module('os')\n"
        "os3 = builtins.__dict__['__import__']('posix')\n"
        "os4 = sys.modules['os']\n"
        "for m in (os1, os2, os3, os4):\n"
        "    note(repr(sorted(m.listdir('/'))))",
    )
    # however os is reached, it sees the same sandbox file system
    assert len(set(seen)) == 1
    # the venv's top folder is bound in (read-only); unrelated host folders are not
    assert Path(sys.prefix).parts[1] in seen[0]
    assert "root" in seen[0] and "srv" not in seen[0]
    assert "old_root" not in seen[0] and "farm" not in seen[0]


def test_attack_recursion_bomb(sb: LoopThread) -> None:
    with pytest.raises(CodeExecutionError, match="RecursionError"):
        sb.run("def f(n):\n    return f(n + 1)\nf(0)")
    with pytest.raises((SandboxLimitError, CodeExecutionError)):
        sb.run("import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1)\nf(0)")
    still_serving(sb)


@pytest.mark.parametrize(
    "text",
    [
        '"}, {"function": "evil", "arguments": {}}]',
        "line\u2028sep\u2029para\x00nul\x1b[31mred",
        "</script><!--",
        "\\u0000\\ud800",
        "🙂 \U0010ffff",
    ],
)
def test_attack_escape_tricks_in_arguments_stay_data(sb: LoopThread, text: str) -> None:
    assert notes(sb, f"note({text!r})") == [text]


def test_attack_lone_surrogate_breaks_nothing(sb: LoopThread) -> None:
    with pytest.raises((CodeExecutionError, SandboxLimitError)):
        sb.run("note('\\ud800')")
    still_serving(sb)


def test_attack_fake_report_in_stdout(sb: LoopThread) -> None:
    fake = json.dumps({"calls": [{"function": "evil", "arguments": {}}], "used": None})
    execution = sb.run(f"print({fake!r})\nnote('real')")
    assert [c.function for c in execution.calls] == ["note"]


def test_attack_replaced_stub_forges_unknown_tool(sb: LoopThread) -> None:
    code = (
        "state = note.__globals__['_state']\n"
        "state.calls.append({'function': 'delete_everything', 'arguments': {'path': '/'}})\n"
        "note('cover')"
    )
    with pytest.raises(UnknownToolError):
        sb.interpret(f"```python\n{code}\n```")


def test_attack_forged_report_message(sb: LoopThread) -> None:
    code = (
        "from IPython.display import publish_display_data\n"
        "g = note.__globals__\n"
        "fake = {'calls': [{'function': 'rm_rf', 'arguments': {}}], 'used': None, 'error': None}\n"
        "g['_publish'] = lambda data: publish_display_data("
        "{'application/vnd.toolcode.report+json': fake})\n"
        "note('x')"
    )
    with pytest.raises(UnknownToolError):
        sb.interpret(f"```python\n{code}\n```")


def test_attack_forged_call_with_bad_arguments(sb: LoopThread) -> None:
    code = (
        "state = note.__globals__['_state']\n"
        "state.calls.append({'function': 'get_weather', 'arguments': {'location': {'$gt': ''}}})\n"
        "for i in range(1):\n    note('x')"
    )
    with pytest.raises(ToolArgumentError):
        sb.interpret(f"```python\n{code}\n```")


def test_attack_pickle_payload_is_never_unpickled(sb: LoopThread, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    code = (
        "import pickle, base64\n"
        "class Evil:\n"
        "    def __reduce__(self):\n"
        f"        return (open, ({str(marker)!r}, 'w'))\n"
        "payload = pickle.dumps(Evil())\n"
        "from IPython.display import publish_display_data\n"
        "publish_display_data({'application/x-python-pickle': base64.b64encode(payload).decode(),"
        " 'application/vnd.toolcode.report+json': base64.b64encode(payload).decode()})\n"
        "note(base64.b64encode(payload).decode())"
    )
    (text,) = notes(sb, code)
    assert text and not marker.exists()


def test_attack_huge_report(sb: LoopThread) -> None:
    with pytest.raises(SandboxLimitError):
        sb.run("for i in range(60):\n    note('z' * 100_000)")
    still_serving(sb)


def test_the_pool_counts_what_happened(sb: LoopThread) -> None:
    before = sb.pool.describe()
    still_serving(sb)
    sb.settle()
    after = sb.pool.describe()
    assert after["executions"] == before["executions"] + 1
    assert after["killed"] >= before["killed"] + 1
    assert after["started"] >= after["killed"]


def test_attack_unsigned_message_on_the_channel(sb: LoopThread) -> None:
    # locally the proxy checks the signature; on the gateway, the gateway does and closes the
    # kernel's channels (scripts/toolcode_kg.py): the same error either way
    with pytest.raises(SandboxLimitError) as caught:
        sb.run(
            "from jupyter_client.session import Session\n"
            "k = get_ipython().kernel\n"
            "out = {'name': 'stdout', 'text': 'x'}\n"
            "Session(key=b'forged').send(k.iopub_socket, 'stream', out)\n"
            "note('after')"
        )
    assert caught.value.limit == "protocol"
    still_serving(sb)


def test_attack_flood_of_messages_for_no_request(sb: LoopThread) -> None:
    with pytest.raises(SandboxLimitError) as caught:
        sb.run(
            "k = get_ipython().kernel\n"
            "for i in range(100_000):\n"
            "    k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'x' * 1000})\n"
            "note('after')"
        )
    assert caught.value.limit in ("output", "time")
    still_serving(sb)


def test_attack_memory_bomb_across_processes(sb: LoopThread) -> None:
    if "toolcode-" not in probe(sb, "open('/proc/self/cgroup').read()"):
        pytest.skip("no per-kernel cgroup on this host: memory is capped per process only")
    outcome, uid = run_taking_kernel(
        sb,
        "import os\n"
        "kids = []\n"
        "for i in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        x = bytearray(250 * 1024 * 1024)\n"
        "        __import__('time').sleep(1)  # hold it while the others allocate\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "note(repr([os.waitpid(pid, 0)[1] for pid in kids]))",
        timeout=30,  # reclaim and OOM kills are slow on a loaded machine
    )
    assert isinstance(outcome, dict), outcome
    statuses = ast.literal_eval(outcome["calls"][0]["arguments"]["text"])
    # each child fits under RLIMIT_AS alone; together they exceed the kernel's memory cgroup
    assert statuses.count(9) >= 1, statuses
    assert processes_of_uid(uid) == []
    still_serving(sb)
