"""Logging, LiteLLM's way: standard Python loggers with names and levels.

Loggers (all children of ``litellm_toolcode``)::

    litellm_toolcode.request   pre-call: which alias was rewritten, tool count, tool_choice mode
    litellm_toolcode.answer    post-call: outcome, tool names and argument *names*, error kinds
    litellm_toolcode.repair    repair rounds sent back to the alias
    litellm_toolcode.payload   DEBUG only, opt-in: the generated prompt and the model's raw answer
    litellm_toolcode.sandbox   the code-execution sandbox (kernels)

What is never logged unless the operator opts in: argument values, tool results, the prompt, the
model's code, and error messages that quote the model's values. Opting in is per alias
(``model_info.toolcode.log_payloads: true``) or for the whole process
(``TOOLCODE_LOG_PAYLOADS=1``); the payloads then go to ``litellm_toolcode.payload`` at DEBUG, so
the level must allow DEBUG too (``TOOLCODE_LOG_LEVEL=DEBUG``). Keys and bearer tokens are
scrubbed from every record of ours, payloads included.

Level: ``TOOLCODE_LOG_LEVEL`` (DEBUG, INFO, WARNING, ...), else ``LITELLM_LOG``, else INFO.
When the ``litellm_toolcode`` logger has no handler of the host's, one stream handler (stderr)
is added, in LiteLLM's line format.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "LOGGER_NAME",
    "SecretFilter",
    "configure",
    "get",
    "payloads_enabled",
    "redact_value",
    "scrub",
    "shape_of_calls",
]

LOGGER_NAME = "litellm_toolcode"
STAGES = ("request", "answer", "repair", "payload", "sandbox")
_FORMAT = "%(asctime)s - %(name)s:%(levelname)s: %(message)s"
_TRUE = {"1", "true", "yes", "on"}

# What a secret looks like in text: OpenAI/LiteLLM-style keys, bearer tokens, and the value of
# anything named like a key, token, secret or password.
_SECRET_PATTERNS = (
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(
        r"(?i)(\b[\w-]*(?:api[_-]?key|token|secret|password|authorization)[\w-]*\b"
        r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]{4,})"
    ),
)


def scrub(text: str) -> str:
    """``text`` with anything that looks like a key or token replaced by ``<redacted>``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: f"{m.group(1)}<redacted>", text)
        else:
            text = pattern.sub("<redacted>", text)
    return text


class SecretFilter(logging.Filter):
    """Scrubs keys and tokens from every record of our loggers, whatever the level."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def get(stage: str | None = None) -> logging.Logger:
    """``litellm_toolcode`` or one of its stage children (``request``, ``answer``, ...)."""
    if stage is not None and stage not in STAGES:
        raise ValueError(f"unknown log stage {stage!r}; known: {', '.join(STAGES)}")
    return logging.getLogger(LOGGER_NAME if stage is None else f"{LOGGER_NAME}.{stage}")


def _level() -> int:
    for variable in ("TOOLCODE_LOG_LEVEL", "LITELLM_LOG"):
        name = os.environ.get(variable, "").strip().upper()
        level = logging.getLevelName(name) if name else None
        if isinstance(level, int):
            return level
    return logging.INFO


def configure() -> logging.Logger:
    """Set up our loggers once (idempotent): level, secret filter, a handler if none."""
    root = get()
    if any(isinstance(f, SecretFilter) for f in root.filters):
        return root
    root.setLevel(_level())
    # Filters on a logger do not apply to its children's records: put one on each.
    for logger in (root, *(get(stage) for stage in STAGES)):
        logger.addFilter(SecretFilter())
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(SecretFilter())  # also covers children we do not know of
        root.addHandler(handler)
        root.propagate = False  # one line per record, not one more through the root logger
    return root


def payloads_enabled(log_payloads: bool) -> bool:
    """Whether prompts, raw answers and argument values may be logged (at DEBUG)."""
    if not (log_payloads or os.environ.get("TOOLCODE_LOG_PAYLOADS", "").lower() in _TRUE):
        return False
    return get("payload").isEnabledFor(logging.DEBUG)


def redact_value(value: Any) -> str:
    """The type of a value, never the value: ``<str>``, ``<int>``, ``<list[2]>``..."""
    if isinstance(value, bool) or value is None:
        return f"<{type(value).__name__}>"
    if isinstance(value, Mapping):
        return f"<dict[{len(value)}]>"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"<list[{len(value)}]>"
    return f"<{type(value).__name__}>"


def shape_of_calls(calls: Sequence[tuple[str, str]]) -> str:
    """``name(arg=<type>, ...)`` for each (name, JSON arguments) call: values left out."""
    shapes = []
    for name, arguments in calls:
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            inner = ", ".join(f"{k}={redact_value(v)}" for k, v in parsed.items())
        else:
            inner = "<unreadable>"
        shapes.append(f"{name}({inner})")
    return "; ".join(shapes)


# --- what the hook logs, one function per event (the hook stays a list of one-liners) ---------


def _payload(log_payloads: bool, what: str, alias: Any, body: Any) -> None:
    if payloads_enabled(log_payloads):
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str)
        get("payload").debug("alias %s: %s:\n%s", alias, what, text)


def rewritten(data: Mapping[str, Any], log_payloads: bool) -> None:
    """After the pre-call rewrite: counts at INFO, the generated prompt at DEBUG (opt-in)."""
    alias = data.get("model")
    facts: Mapping[str, Any] = {}
    for bucket in ("metadata", "litellm_metadata"):  # chat; /v1/responses and /v1/messages
        found = (data.get(bucket) or {}).get("spend_logs_metadata") or {}
        if "toolcode_tools" in found:
            facts = found
            break
    messages = data.get("messages") or data.get("input") or []  # /v1/responses: input
    get("request").info(
        "alias %s: code mode, %s tools, tool_choice %s, %d messages upstream",
        alias,
        facts.get("toolcode_tools", "?"),
        facts.get("toolcode_tool_choice", "?"),
        len(messages),
    )
    _payload(log_payloads, "generated prompt (messages sent upstream)", alias, messages)


def raw_answer(alias: Any, text: str | None, log_payloads: bool, round_number: int = 0) -> None:
    """The model's answer text, before it is read (DEBUG, opt-in)."""
    what = "raw answer" if round_number == 0 else f"raw answer of repair round {round_number}"
    _payload(log_payloads, what, alias, text or "")


def repair_round(
    alias: Any, round_number: int, messages: Sequence[Any], log_payloads: bool
) -> None:
    get("repair").info("alias %s: repair round %d", alias, round_number)
    _payload(log_payloads, f"repair round {round_number} prompt tail", alias, list(messages[-2:]))


def settled(alias: Any, outcome: Any, log_payloads: bool) -> None:
    """``outcome`` is a ``repair.Settled``: names and argument names at INFO, values opt-in."""
    reply = outcome.reply
    calls = [(c.name, c.arguments) for c in reply.tool_calls]
    get("answer").info(
        "alias %s: %s, %d call(s) %s, %d extra round(s), rejected: %s",
        alias,
        reply.finish_reason,
        len(calls),
        shape_of_calls(calls),
        outcome.rounds,
        ", ".join(outcome.errors) or "none",
    )
    _payload(log_payloads, "tool calls", alias, [{"name": n, "arguments": a} for n, a in calls])


def rejected(alias: Any, error: Any, log_payloads: bool) -> None:
    """A model answer that could not be used: the kind at INFO, the message (it may quote the
    model's values) at DEBUG, opt-in."""
    get("answer").info("alias %s: answer rejected: %s", alias, type(error).__name__)
    _payload(log_payloads, "rejection message", alias, getattr(error, "message", str(error)))


def refused(alias: Any, error: Any) -> None:
    """A client request refused with HTTP 400 (the message describes the client's request)."""
    get("request").warning(
        "alias %s: request refused (%s): %s",
        alias,
        type(error).__name__,
        getattr(error, "message", error),
    )
