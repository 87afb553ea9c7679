"""What every sandbox backend shares about one execution: the request it sends, how it reads
the kernel's messages back into one report, and the errors it raises.

A backend (local ZeroMQ in ``kernel.py``, a Kernel Gateway's WebSocket in ``gateway.py``) only
moves messages; the byte budget, the report and the end of an execution are decided here, so
both read the kernel's untrusted output the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "REPORT_TYPE",
    "BadMessage",
    "Collector",
    "GatewayLost",
    "KernelDied",
    "KernelStartError",
    "OutputTooLarge",
    "execute_content",
    "prelude_cell",
]

REPORT_TYPE = "application/vnd.toolcode.report+json"
_PRELUDE = (Path(__file__).resolve().parent / "prelude.py").read_text()
# what jupyter_server writes on stderr when its IOPub rate limit drops output
_RATE_LIMITED = ("IOPub data rate exceeded", "IOPub message rate exceeded")


class KernelStartError(RuntimeError):
    """A kernel could not be started (or warmed up) in time."""


class KernelDied(RuntimeError):
    """The kernel process ended while executing."""


class GatewayLost(RuntimeError):
    """The kernel gateway went away (or refused us) mid-execution: not the code's fault."""


class OutputTooLarge(RuntimeError):
    """The kernel sent more than the output cap (or the gateway dropped some of it)."""


class BadMessage(RuntimeError):
    """The kernel sent a message that is not a well-formed Jupyter JSON message."""


def prelude_cell() -> str:
    """The warm-up cell: ships the recorder as data (not as a cell to parse) and runs it."""
    return (
        f"__toolcode_prelude = {_PRELUDE!r}\n"
        "exec(compile(__toolcode_prelude, '<toolcode prelude>', 'exec'),"
        " {'get_ipython': get_ipython, '__name__': 'toolcode_prelude'})\n"
        "del __toolcode_prelude"
    )


def execute_content(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


class Collector:
    """Reads one execution's messages: done once our ``execute_reply`` and our iopub ``idle``
    have both arrived. Every iopub message counts against the byte budget, not only this
    execution's: a flood of others must not keep the proxy busy either."""

    def __init__(self, msg_id: str, output_kb: int) -> None:
        self.msg_id = msg_id
        self.output_kb = output_kb
        self._budget = output_kb * 1024
        self._report: dict[str, Any] = {}
        self._idle = False
        self._reply = False

    @property
    def done(self) -> bool:
        return self._idle and self._reply

    @property
    def replied(self) -> bool:
        return self._reply

    def _ours(self, msg: dict[str, Any]) -> bool:
        parent = msg.get("parent_header")
        return isinstance(parent, dict) and parent.get("msg_id") == self.msg_id

    def shell(self, msg: dict[str, Any]) -> None:
        if self._ours(msg):
            self._reply = True

    def iopub(self, msg: dict[str, Any], size: int | None = None) -> None:
        content = msg.get("content") or {}
        self._budget -= (len(json.dumps(content)) if size is None else size) + 256
        if self._budget < 0:
            raise OutputTooLarge(f"the code printed more than {self.output_kb} KiB")
        header = msg.get("header")
        msg_type = msg.get("msg_type") or (header or {}).get("msg_type")
        if msg_type == "stream" and any(s in str(content.get("text")) for s in _RATE_LIMITED):
            # the gateway dropped output: the report may be among it, never read half a run
            raise OutputTooLarge(
                "the kernel gateway dropped output (its IOPub rate limit); "
                "raise or disable its rate limit, or print less"
            )
        if not self._ours(msg):
            return
        if msg_type == "display_data":
            data = content.get("data") or {}
            if isinstance(data, dict) and REPORT_TYPE in data:
                self._report = {"report": data[REPORT_TYPE]}
        elif msg_type == "status":
            self._idle = content.get("execution_state") == "idle"
        elif msg_type == "error" and "report" not in self._report:
            self._report = {"error": f"{content.get('ename')}: {content.get('evalue')}"}

    def result(self) -> dict[str, Any]:
        """The kernel's report (untrusted JSON), or ``{"error": ...}``."""
        if "report" in self._report:
            value = self._report["report"]
            return value if isinstance(value, dict) else {"error": "malformed report"}
        return {"error": self._report.get("error") or "the sandbox sent no report"}
