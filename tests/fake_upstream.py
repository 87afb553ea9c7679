"""A real OpenAI-compatible HTTP server on 127.0.0.1 that plays scripted answers.

The only fake in the test suite: it stands in for the upstream LLM and, like llama.cpp's server,
serves chat completions only (any other POST is a 404). Tests script answers under a
unique key that appears in their request text; the server finds the script by searching the
request body for that key, answers with the next scripted reply (JSON or SSE, as asked) and
records every request it got, so tests can assert on what the upstream saw.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(eq=False)
class Gate:
    """Pauses a streamed answer until the test lets it go on (``Scripted.pause_after``).

    ``reached`` is set when the upstream has paused; the test sets ``release``. If the test
    never does, the upstream goes on after ``timeout`` seconds and records ``timed_out``, so a
    proxy that waits for the whole answer fails the test instead of hanging it.
    """

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    timeout: float = 10.0
    timed_out: bool = False

    def wait(self) -> None:
        self.reached.set()
        self.timed_out = not self.release.wait(self.timeout)


@dataclass(frozen=True)
class Scripted:
    """One upstream answer."""

    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # native tool calls (pass-through tests)
    finish_reason: str | None = None
    status: int = 200  # non-200: answer with an OpenAI-shaped error
    prompt_tokens: int = 11
    completion_tokens: int = 7
    chunk_size: int = 5  # characters per content delta when streaming
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    raw_body: str | None = None  # sent as the body as-is, status 200 (garbage from upstream)
    cut_stream_after: int | None = None  # streaming: drop the connection after N content deltas
    # Streaming: after this many content characters, wait until ``gate`` lets the rest go.
    pause_after: int | None = None
    gate: Gate | None = field(default=None, compare=False)
    # streaming: seconds before each content delta (a model's pace), and before each piece of a
    # native tool call, which then streams its arguments ``chunk_size`` characters at a time
    chunk_delay: float = 0.0
    # streaming without a pace: each native tool call as its name (arguments "") and then its
    # arguments cut into this many deltas, as native servers stream them token by token
    argument_deltas: int = 0


Responder = Callable[[dict[str, Any]], Scripted]


@dataclass
class _State:
    default: Responder | None = None  # answers requests that match no script (benchmarks)
    scripts: dict[str, deque[Scripted]] = field(default_factory=dict)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def server_bind(self) -> None:
        # Without TCP_NODELAY, Nagle adds ~40 ms per response (design.md section 2).
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": []})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            # Like llama.cpp's server: chat completions only (no /responses, no /messages).
            self._send_json(404, {"detail": "Not Found"})
            return
        body = json.loads(raw or "{}")
        state = self.server.state
        with state.lock:
            key = next((k for k in state.scripts if k in raw), None)
            if key is not None:
                state.requests[key].append(body)
            queue = state.scripts.get(key) if key else None
            answer = queue.popleft() if queue else None
        if answer is None and key is None and state.default is not None:
            answer = state.default(body)
        if answer is None:
            self._send_json(
                500,
                {"error": {"message": f"fake upstream: no scripted answer (key={key})"}},
            )
            return
        if answer.delay:
            time.sleep(answer.delay)
        if answer.raw_body is not None:
            raw_answer = answer.raw_body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw_answer)))
            self.end_headers()
            self.wfile.write(raw_answer)
            return
        if answer.status != 200:
            self._send_json(
                answer.status,
                {"error": {"message": answer.content or "upstream error", "type": "server_error"}},
            )
            return
        if body.get("stream"):
            self._stream(body, answer)
        else:
            self._send_json(200, _completion(body, answer))

    def _stream(self, body: dict[str, Any], answer: Scripted) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
        }

        def send(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            frame = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            self.wfile.flush()

        def delta(d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

        send(delta({"role": "assistant", "content": ""}))
        if answer.reasoning_content:
            send(delta({"reasoning_content": answer.reasoning_content}))
        text = answer.content or ""
        for number, start in enumerate(range(0, len(text), answer.chunk_size)):
            if answer.cut_stream_after is not None and number >= answer.cut_stream_after:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            piece = text[start : start + answer.chunk_size]
            if answer.chunk_delay:
                time.sleep(answer.chunk_delay)
            pause = answer.pause_after if answer.gate is not None else None
            if pause is not None and start < pause <= start + len(piece):
                send(delta({"content": piece[: pause - start]}))
                answer.gate.wait()
                piece = piece[pause - start :]
            if piece:
                send(delta({"content": piece}))
        for index, call in enumerate(answer.tool_calls or []):
            if not answer.chunk_delay and not answer.argument_deltas:
                send(delta({"tool_calls": [{"index": index, **call}]}))
                continue
            # At a model's pace: the name first, then the arguments a few characters at a time
            # (or, with argument_deltas, in that many pieces).
            arguments = call["function"]["arguments"]
            head = {**call, "function": {**call["function"], "arguments": ""}}
            time.sleep(answer.chunk_delay)
            send(delta({"tool_calls": [{"index": index, **head}]}))
            for piece in _pieces(arguments, answer):
                time.sleep(answer.chunk_delay)
                send(delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        send(delta({}, _finish(answer)))
        if (body.get("stream_options") or {}).get("include_usage"):
            send({**base, "choices": [], "usage": _usage(answer)})
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _pieces(text: str, answer: Scripted) -> list[str]:
    """A native call's arguments as streamed: ``argument_deltas`` near-equal pieces, or
    ``chunk_size`` characters at a time."""
    if answer.argument_deltas:
        count = min(answer.argument_deltas, len(text))
        cuts = [len(text) * n // count for n in range(count + 1)]
        return [text[a:b] for a, b in itertools.pairwise(cuts)]
    return [text[s : s + answer.chunk_size] for s in range(0, len(text), answer.chunk_size)]


def _finish(answer: Scripted) -> str:
    return answer.finish_reason or ("tool_calls" if answer.tool_calls else "stop")


def _usage(answer: Scripted) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _completion(body: dict[str, Any], answer: Scripted) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.reasoning_content:
        message["reasoning_content"] = answer.reasoning_content
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(answer)}],
        "usage": _usage(answer),
    }


class FakeUpstream:
    """Start with ``FakeUpstream().start()``; ``url`` is the OpenAI base URL (…/v1)."""

    def __init__(self, port: int = 0, default: Responder | None = None) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.state = _State(default=default)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, key: str, *answers: Scripted) -> None:
        with self._server.state.lock:
            self._server.state.scripts[key] = deque(answers)

    def requests(self, key: str) -> list[dict[str, Any]]:
        with self._server.state.lock:
            return list(self._server.state.requests.get(key, []))

    def unplayed(self, key: str) -> int:
        with self._server.state.lock:
            return len(self._server.state.scripts.get(key, ()))
