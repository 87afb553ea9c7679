"""A stand-in for the llama.cpp server in tests/test_serve_build.py, run as a real process.

It lists a model on ``GET /v1/models`` like llama.cpp once loaded, and at each
``POST /v1/completions`` does what the mode file says (read per request, so a test can "fix
the build" between starts): ``ok`` answers one token, ``sigill`` / ``sigsegv`` kill the process
with that signal (as code built for refused instructions dies), ``fault-log`` writes what a
crashing llama.cpp writes and exits with 1, ``exit`` exits with 3, ``error`` answers HTTP 500,
``hang`` never answers. Standard library only.

    python tests/dying_server.py PORT MODE_FILE
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    mode_file: Path

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = self.mode_file.read_text().strip()
        if mode == "sigill":
            os.kill(os.getpid(), signal.SIGILL)
        elif mode == "sigsegv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif mode == "fault-log":
            print("Illegal instruction (core dumped)", file=sys.stderr, flush=True)
            os._exit(1)
        elif mode == "exit":
            os._exit(3)
        elif mode == "error":
            self._json(500, {"error": {"message": "model exploded"}})
        elif mode == "hang":
            time.sleep(3600)
        else:
            self._json(
                200, {"choices": [{"index": 0, "text": " return", "finish_reason": "length"}]}
            )

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, file=sys.stderr, flush=True)


def main() -> None:
    port, mode_file = int(sys.argv[1]), Path(sys.argv[2])
    Handler.mode_file = mode_file
    print(f"fake llama.cpp server on port {port}", file=sys.stderr, flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
