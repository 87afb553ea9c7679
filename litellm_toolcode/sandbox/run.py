"""Run the model's code in a fresh sandbox kernel and read back the calls it made.

The kernel's report is untrusted: it arrives size-capped as signed JSON, is checked for shape
here, and every call is validated again by the caller with ``Toolset.validate`` (unknown tools
and bad arguments are refused there, whatever the kernel claims).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..answer import Executor
from ..errors import ModelOutputError, ToolcodeError
from ..results import LiteralCall
from ..schema import Toolset
from ..spelling import Spellings
from .gateway import GatewayBackend, GatewaySettings
from .messages import BadMessage, GatewayLost, KernelDied, OutputTooLarge
from .pool import KernelPool, SandboxUnavailable, pool_for_loop

__all__ = [
    "CodeExecutionError",
    "Execution",
    "SandboxLimitError",
    "SandboxUnavailableError",
    "executor",
    "run_code",
    "warm",
]

log = logging.getLogger("litellm_toolcode.sandbox")


class CodeExecutionError(ModelOutputError):
    """The model's code raised an exception in the sandbox (names the line and the error)."""


class SandboxLimitError(ModelOutputError):
    """The model's code hit a sandbox limit: time, memory, CPU, output size, calls."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class SandboxUnavailableError(ToolcodeError):
    """The sandbox cannot run code on this host right now (not the model's fault)."""

    status_code = 500
    error_type = "server_error"


@dataclass(frozen=True)
class Execution:
    """What one run of the model's code produced."""

    calls: tuple[LiteralCall, ...]
    """Every call recorded, in order (cut at the first use of an unknown result), with
    ``bare``; ``results.resolve`` decides which go out."""
    result_used: str | None
    """The function whose result the code needed (execution stopped there), or None."""
    seconds: float
    """Wall time of the execution itself (kernel taken from the pool to report read)."""
    waited: float
    """Seconds spent waiting for a kernel (0 when a spare was ready)."""


def _spellings(scope: Spellings, kind: str) -> dict[str, tuple[str | None, str | None]]:
    """The scope's other spellings for the kernel: (stub name, None) or (None, the error)."""
    return {
        written: (meanings[0], None)
        if len(meanings) == 1
        else (None, scope.ambiguity(written, meanings, kind))
        for written, meanings in scope.aliases().items()
    }


def _cell(
    code: str, toolset: Toolset, max_calls: int, known: Mapping[str, str] | None = None
) -> str:
    tools: dict[str, tuple[str, str | None, dict[str, Any], dict[str, str]]] = {}
    for spec in toolset.tools:
        var_kw = next(
            (
                p.name
                for p in toolset.signatures[spec.py_name].parameters.values()
                if p.kind is inspect.Parameter.VAR_KEYWORD
            ),
            None,
        )
        arguments = toolset.names.arguments.get(spec.py_name)
        spellings = _spellings(arguments, "argument") if arguments is not None else {}
        originals = {
            param: orig
            for orig, param in toolset.argument_names(spec.py_name).items()
            if param != orig
        }
        tools[spec.py_name] = (spec.model_name, var_kw, spellings, originals)
    aliases = _spellings(toolset.names.tools, "tool")
    # Known results are client data: they go in as one JSON text (a str literal, like the
    # code), parsed by json.loads in the kernel, never rendered as Python.
    results = json.dumps(dict(known or {}), ensure_ascii=False)
    return (
        f"__toolcode_run({toolset.source!r}, {code!r}, {tools!r}, {max_calls!r}, {results!r}, "
        f"{aliases!r})"
    )


def _calls(report: dict[str, Any], max_calls: int) -> tuple[tuple[LiteralCall, ...], str | None]:
    raw = report.get("calls")
    if not isinstance(raw, list) or len(raw) > max_calls:
        raise SandboxLimitError("the sandbox report is malformed", limit="report")
    used = report.get("used")
    result_used: str | None = None
    if used is not None:
        if not isinstance(used, dict) or not isinstance(used.get("calls_before"), int):
            raise SandboxLimitError("the sandbox report is malformed", limit="report")
        raw = raw[: max(0, used["calls_before"])]
        result_used = str(used.get("function"))
    calls: list[LiteralCall] = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("function"), str)
            or not isinstance(item.get("arguments"), dict)
            or not isinstance(item.get("bare", True), bool)
            or not isinstance(item.get("needed", False), bool)
        ):
            raise SandboxLimitError("the sandbox report is malformed", limit="report")
        calls.append(
            LiteralCall(
                item["function"],
                item["arguments"],
                bare=item.get("bare", True),
                result_needed=item.get("needed", False),
            )
        )
    return tuple(calls), result_used


def _pool(gateway: GatewaySettings | None) -> KernelPool:
    if gateway is None:
        return pool_for_loop()
    return pool_for_loop(gateway.key, lambda: GatewayBackend(gateway))


async def run_code(
    code: str,
    toolset: Toolset,
    pool: KernelPool | None = None,
    known: Mapping[str, str] | None = None,
    gateway: GatewaySettings | None = None,
) -> Execution:
    """Run ``code`` with ``toolset``'s recording stubs in a fresh kernel (on ``gateway``'s
    Kernel Gateway when given, else on this host); a call in ``known`` (call key -> its result
    as JSON text, ``results.Answered.kernel_results``) returns that result instead of a
    placeholder.

    Raises ``CodeExecutionError`` (the code raised), ``SandboxLimitError`` (a limit was hit) or
    ``SandboxUnavailableError`` (no kernel could be had). The returned calls are not validated
    yet: pass each through ``toolset.validate``.
    """
    pool = pool or _pool(gateway)
    limits = pool.limits
    asked = time.monotonic()
    try:
        kernel = await pool.take()
    except SandboxUnavailable as exc:
        raise SandboxUnavailableError(f"code execution is unavailable: {exc}") from None
    waited = time.monotonic() - asked
    started = time.monotonic()
    pool.stats.executions += 1
    try:
        report = await kernel.execute(_cell(code, toolset, limits.max_calls, known))
    except TimeoutError:
        pool.stats.timeouts += 1
        log.warning("sandbox: kernel %d timed out after %g s", kernel.number, limits.timeout)
        raise SandboxLimitError(
            f"the code ran longer than {limits.timeout:g} s and was stopped; "
            "write the tool calls without long-running computation",
            limit="time",
        ) from None
    except OutputTooLarge as exc:
        pool.stats.limit_hits += 1
        log.warning("sandbox: kernel %d: %s", kernel.number, exc)
        raise SandboxLimitError(f"{exc}; print less", limit="output") from None
    except KernelDied as exc:
        pool.stats.limit_hits += 1
        log.warning("sandbox: kernel %d died: %s", kernel.number, exc)
        raise SandboxLimitError(
            "the code crashed the sandbox (it may have exceeded the memory or CPU limit)",
            limit="crash",
        ) from None
    except GatewayLost as exc:
        pool.stats.limit_hits += 1
        log.warning("sandbox: gateway kernel %d: %s", kernel.number, exc)
        raise SandboxUnavailableError(
            f"code execution is unavailable: {exc} while the code ran"
        ) from None
    except BadMessage as exc:
        pool.stats.limit_hits += 1
        log.warning("sandbox: kernel %d sent a bad message: %s", kernel.number, exc)
        raise SandboxLimitError(
            "the code broke the sandbox's message channel", limit="protocol"
        ) from None
    finally:
        pool.release(kernel)
    seconds = time.monotonic() - started
    error = report.get("error")
    used = report.get("used")
    if error is not None and used is None:
        if isinstance(error, dict):
            line = error.get("line")
            message = str(error.get("message"))[:1000]
            where = f"line {line}: " if isinstance(line, int) else ""
        else:
            message, where = str(error)[:1000], ""
        if "MemoryError" in message:
            pool.stats.limit_hits += 1
        raise CodeExecutionError(f"the code raised an error: {where}{message}")
    calls, result_used = _calls(report, limits.max_calls)
    log.info(
        "sandbox: kernel %d ran the code in %.0f ms (waited %.0f ms): %d calls%s",
        kernel.number,
        seconds * 1000,
        waited * 1000,
        len(calls),
        f", stopped at the result of {result_used}()" if result_used else "",
    )
    return Execution(calls=calls, result_used=result_used, seconds=seconds, waited=waited)


def executor(
    record: Callable[..., None] | None = None, gateway: GatewaySettings | None = None
) -> Executor:
    """An ``answer.Executor`` running code in this loop's pool (``gateway``'s when given);
    ``record(**facts)`` gets the per-request facts (for spend-log metadata)."""

    async def execute(
        code: str, toolset: Toolset, known: Mapping[str, str]
    ) -> tuple[LiteralCall, ...]:
        try:
            execution = await run_code(code, toolset, known=known, gateway=gateway)
        except SandboxLimitError as exc:
            if record is not None:
                record(toolcode_sandbox_limit=exc.limit)
            raise
        if record is not None:
            record(
                toolcode_sandbox_ms=round(execution.seconds * 1000, 1),
                toolcode_sandbox_wait_ms=round(execution.waited * 1000, 1),
                toolcode_sandbox_calls=len(execution.calls),
                toolcode_sandbox_result_used=execution.result_used,
            )
        return execution.calls

    return execute


def warm(gateway: GatewaySettings | None = None) -> None:
    """Make sure this loop's pool exists and is filling (never raises: a warm-up hint)."""
    try:
        _pool(gateway).warm()
    except Exception as exc:  # warming must never fail a request
        log.warning("sandbox: could not warm the pool: %s", exc)
