"""The fake upstream as its own process, answering every request by rule (for benchmarks).

Requests that carry native ``tools`` get a native tool call to the first tool; code-mode
requests (our plugin) get the same call written as Python; requests whose last message says
"[prose]" get prose. "[three]" asks for three calls instead of one, "[paced]" streams at a
model's pace (4 characters, or a piece of a native call, every 20 ms). "[split]" streams a
native call as native servers do, its name and then its arguments token by token, in as many
upstream deltas as the same call written as Python (``code_deltas``); without it a native call
is one delta.
Run: python -m bench.upstream_server PORT
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.fake_upstream import FakeUpstream, Responder, Scripted

PROSE = "The weather in Paris is mild today, around 18 degrees with a light breeze."
CITIES = ("Paris", "Oslo", "Rome")
PACE_SECONDS = 0.02  # "[paced]": 4 characters every 20 ms, a model's pace
CODE_CHUNK = 8  # characters per content delta of an unpaced answer


def _code(cities: tuple[str, ...]) -> str:
    calls = "".join(f"get_weather(location='{city}')\n" for city in cities)
    return f"```python\n# tool: get_weather\n{calls}```"


def code_deltas(three: bool = False) -> int:
    """How many content deltas the unpaced code answer takes (one call, or three)."""
    return -(-len(_code(CITIES if three else CITIES[:1])) // CODE_CHUNK)


def respond(body: dict[str, Any]) -> Scripted:
    last = str((body.get("messages") or [{}])[-1].get("content"))
    pace = {"chunk_size": 4, "chunk_delay": PACE_SECONDS} if "[paced]" in last else {}
    if "[prose]" in last:
        return Scripted(content=PROSE, **{"chunk_size": CODE_CHUNK, **pace})
    cities = CITIES if "[three]" in last else CITIES[:1]
    tools = body.get("tools")
    if tools:
        name = tools[0]["function"]["name"]
        calls = [
            {
                "id": f"call_native_{n}",
                "type": "function",
                "function": {"name": name, "arguments": f'{{"location": "{city}"}}'},
            }
            for n, city in enumerate(cities)
        ]
        if "[split]" in last and not pace:
            # each call's name is one delta, its arguments the rest of its share of the code
            # answer's deltas (for one call: as many deltas as the code answer, exactly)
            share = code_deltas(len(cities) > 1) // len(calls)
            return Scripted(tool_calls=calls, argument_deltas=max(1, share - 1))
        return Scripted(tool_calls=calls, **pace)
    return Scripted(content=_code(cities), **{"chunk_size": CODE_CHUNK, **pace})


def serve_forever(port: int, responder: Responder) -> None:
    """Run the fake upstream in this process until interrupted; print "ready" once it listens."""
    server = FakeUpstream(port=port, default=responder).start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def spawn() -> tuple[subprocess.Popen[bytes], str]:
    """This server as its own process on a free port, once it says it listens:
    (the process, its OpenAI base URL). The caller terminates it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream_server", str(port)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        process.kill()
        raise RuntimeError(f"the fake upstream did not start (exit code {process.wait()})")
    return process, f"http://127.0.0.1:{port}/v1"


def main() -> None:
    serve_forever(int(sys.argv[1]), respond)


if __name__ == "__main__":
    main()
