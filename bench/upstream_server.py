"""The fake upstream as its own process, answering every request by rule (for benchmarks).

Requests that carry native ``tools`` get a native tool call to the first tool; code-mode
requests (our plugin) get the same call written as Python; requests whose last message says
"[prose]" get prose. Run: python -m bench.upstream_server PORT
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tests.fake_upstream import FakeUpstream, Responder, Scripted

PROSE = "The weather in Paris is mild today, around 18 degrees with a light breeze."


def respond(body: dict[str, Any]) -> Scripted:
    last = str((body.get("messages") or [{}])[-1].get("content"))
    if "[prose]" in last:
        return Scripted(content=PROSE, chunk_size=8)
    tools = body.get("tools")
    if tools:
        name = tools[0]["function"]["name"]
        call = {
            "id": "call_native",
            "type": "function",
            "function": {"name": name, "arguments": '{"location": "Paris"}'},
        }
        return Scripted(tool_calls=[call])
    return Scripted(
        content="```python\n# tool: get_weather\nget_weather(location='Paris')\n```", chunk_size=8
    )


def serve_forever(port: int, responder: Responder) -> None:
    """Run the fake upstream in this process until interrupted; print "ready" once it listens."""
    server = FakeUpstream(port=port, default=responder).start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def main() -> None:
    serve_forever(int(sys.argv[1]), respond)


if __name__ == "__main__":
    main()
