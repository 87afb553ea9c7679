"""The servers the accuracy benchmarks run against, and how a run of them stops.

One llama.cpp server per mode, the LiteLLM proxy with our plugin in front of the code modes,
the model file they load, and a SIGTERM that stops a run at once rather than after every case.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import serve  # noqa: E402

MODES = ("code", "json", "native")
# Run only when named in --modes: code mode with a grammar (alias settings -> grammar backend)
GRAMMAR_MODES = {"code+gbnf": "gbnf"}
PROXY_KEY = "sk-toolcode-bench"


class Servers:
    """One llama.cpp server per mode (same binary, model and settings; ``native`` with the
    ``chatml-function-calling`` handler), on free ports, so modes run side by side and each
    keeps its own prompt cache. The ``code`` mode gets the LiteLLM proxy in front of its own."""

    def __init__(self, model: Path, logs: Path, n_ctx: int = 4096) -> None:
        self.model = model
        self.logs = logs
        self.n_ctx = n_ctx  # multi-turn cases need more than the single-turn 4096
        self.running: list[subprocess.Popen[bytes]] = []
        self.upstreams: dict[str, tuple[subprocess.Popen[bytes], str, int]] = {}

    def llama(self, name: str, chat_format: str, port: int | None = None) -> str:
        port = port or free_port()
        log = self.logs / f"llama-{name}.log"
        process = serve.start_llama_server(self.model, port, log, chat_format, self.n_ctx)
        self.running.append(process)
        self.upstreams[name] = (process, chat_format, port)
        return f"http://{serve.HOST}:{port}/v1"

    def restart(self, name: str) -> None:
        """Stop a mode's llama.cpp server and start it again on the same port: llama-cpp-python
        goes on generating after the client gave up, so a runaway answer would stall every
        later case (``chatml-function-calling`` ignores ``max_tokens``)."""
        process, chat_format, port = self.upstreams.pop(name)
        serve.stop(process, timeout=5)
        self.running.remove(process)
        self.llama(name, chat_format, port)

    def proxy(self, upstream: str, grammar: str = "none") -> str:
        port = free_port()
        config = ROOT / "config.yaml"
        if grammar != "none":  # the shipped config with the grammar on for its code-mode alias
            import yaml

            loaded = yaml.safe_load(config.read_text())
            for entry in loaded["model_list"]:
                toolcode = (entry.get("model_info") or {}).get("toolcode")
                if isinstance(toolcode, dict):
                    toolcode["grammar"] = grammar
            config = self.logs / f"config-{grammar}.yaml"
            config.write_text(yaml.safe_dump(loaded))
        env = {
            **os.environ,
            "TOOLCODE_UPSTREAM_BASE": upstream,
            "TOOLCODE_UPSTREAM_MODEL": f"openai/{serve.MODEL_ALIAS}",
            "TOOLCODE_UPSTREAM_KEY": "none",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_MASTER_KEY": PROXY_KEY,
        }
        cmd = [str(serve.VENV_BIN / "litellm"), "--config", str(config)]
        cmd += ["--host", serve.HOST, "--port", str(port)]
        process = serve.spawn(cmd, self.logs / f"proxy-{grammar}.log", env)
        self.running.append(process)
        url = f"http://{serve.HOST}:{port}"
        serve.wait_http(f"{url}/health/liveliness", process, "the LiteLLM proxy", 120)
        return f"{url}/v1"

    def base(self, mode: str) -> str:
        if mode == "code":
            return self.proxy(self.llama(mode, "chatml"))
        if mode in GRAMMAR_MODES:
            return self.proxy(self.llama(mode, "chatml"), GRAMMAR_MODES[mode])
        if mode == "json":
            return self.llama(mode, "chatml")
        return self.llama(mode, "chatml-function-calling")

    def close(self) -> None:
        for process in reversed(self.running):
            serve.stop(process)


def stop_on_sigterm(servers: Servers | None) -> threading.Event:
    """A SIGTERM (kill, a time limit) ends the run as Ctrl-C would, not after every case.

    Exiting from the handler did not: the main thread then waited for the modes' threads,
    which went on through all their cases. Now the servers go at once, so the case in flight
    fails fast, and each mode's loop sees the event, keeps no row of that case and ends.
    """
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()
        if servers is not None:
            servers.close()

    signal.signal(signal.SIGTERM, handler)
    return stop


def exit_status(stop: threading.Event | None) -> int:
    """A run stopped by SIGTERM still writes the table of what finished, then exits as a
    terminated process does (128 + 15), so ``bench && git commit`` does not take it as whole."""
    return 128 + signal.SIGTERM if stop is not None and stop.is_set() else 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((serve.HOST, 0))
        return int(sock.getsockname()[1])


EMBEDDED_MODEL = "Qwen2.5-Coder-1.5B-Instruct Q4_K_M"
GGUF_HELP = "another chatml GGUF model file for every mode (default: the embedded model)"


def model_file(gguf: str) -> Path:
    """The GGUF every mode's llama.cpp server loads: ``--gguf`` (a chatml model, e.g. a larger
    Qwen2.5-Coder, to see what model size does), else the embedded one, fetched if needed."""
    if not gguf:
        return serve.prepare()
    path = Path(gguf).expanduser()
    if not path.is_file():
        raise SystemExit(f"--gguf {gguf}: no such file")
    serve.ensure_llama_cpp()
    return path


def model_label(gguf: str) -> str:
    return f"`{Path(gguf).name}`" if gguf else EMBEDDED_MODEL
