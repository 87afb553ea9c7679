"""Bounds on the work a client can make the plugin do, so that no request slows the others.

A client controls the tool schemas and, through the prompt, the model's answer. Three kinds of
work grow with them, and each is bounded here:

- **Regular expressions from a schema.** Patterns Pydantic can take run on pydantic-core's
  Rust engine (linear time). The rest (look-around, back-references) and every
  ``patternProperties`` key are matched by the ``regex`` package with a time limit per match
  (``PATTERN_MATCH_SECONDS``); it also releases the GIL while it matches. Python's ``re``, which
  ``jsonschema`` uses, is never given a client's pattern.
- **The residual JSON Schema check** (what Pydantic cannot express, checked by ``jsonschema``
  after Pydantic): every keyword it applies first checks a per-answer time budget
  (``CHECK_BUDGET_SECONDS``), so nested ``anyOf``/``oneOf`` over ``$ref`` chains cannot run
  away, and ``uniqueItems`` is decided in linear time instead of jsonschema's pairwise
  comparison.
- **Sizes.** Answers longer than ``SYNC_ANSWER_CHARS`` and every request rewrite (schema
  conversion, history) run on a worker thread (``off_loop``), never on the proxy's event loop;
  the tools of one request are capped as a whole (``max_tools_chars``), their code by
  ``schema.render._MAX_RENDERED_TYPES``, an answer at ``MAX_CALLS_PER_ANSWER`` calls.

Running out of a budget is an error naming what ran out, never a guess about the value.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import jsonschema  # type: ignore[import-untyped]
import regex

__all__ = [
    "CHECK_BUDGET_SECONDS",
    "MAX_CALLS_PER_ANSWER",
    "MAX_KNOWN_RESULTS",
    "MAX_KNOWN_RESULTS_CHARS",
    "OFF_LOOP_BUDGET_SECONDS",
    "PATTERN_MATCH_SECONDS",
    "SYNC_ANSWER_CHARS",
    "CheckTimeout",
    "Run",
    "bounded_validator_class",
    "check_budget",
    "compile_pattern",
    "off_loop",
    "runner",
]

PATTERN_MATCH_SECONDS = 0.05
"""Longest time one client pattern may take to match one value."""
CHECK_BUDGET_SECONDS = 0.25
"""Longest time the residual JSON Schema checks of one answer may take on the event loop,
matches included."""
OFF_LOOP_BUDGET_SECONDS = 2.0
"""The same for an answer read on a worker thread (a large one: it holds no other request)."""
SYNC_ANSWER_CHARS = 16_384
"""Answers up to this size are read on the event loop (well under 0.1 s); longer ones on a
worker thread. Reading on the loop keeps the outcome in LiteLLM's spend log (its logging task
runs at the hook's first await)."""
MAX_CALLS_PER_ANSWER = 1024
"""More calls in one answer is an error (each is validated; the sandbox's own cap is 64)."""
MAX_KNOWN_RESULTS = 256
"""Answered calls of a history whose results code may use (results.py): the newest are kept."""
MAX_KNOWN_RESULTS_CHARS = 262_144
"""Their results' text together (each also within ``max_tool_result_chars``): they travel in
the request's metadata and, as JSON, into a sandbox kernel."""

_T = TypeVar("_T")
# Conversions and large answers run here, not on LiteLLM's default executor, so a burst of
# hostile requests queues behind itself rather than behind LiteLLM's own blocking work.
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="toolcode-cpu")


async def off_loop(fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(*args)`` on the plugin's worker threads (context variables carried along)."""
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, call)


Run = Callable[..., Awaitable[Any]]


def runner(size: int) -> Run:
    """How to run the CPU-bound reading of an answer of ``size`` characters: on the event loop
    with the short check budget, or on a worker thread with the longer one."""
    return _here if size <= SYNC_ANSWER_CHARS else _away


async def _here(fn: Callable[..., _T], *args: Any) -> _T:
    with check_budget(CHECK_BUDGET_SECONDS):
        return fn(*args)


async def _away(fn: Callable[..., _T], *args: Any) -> _T:
    return await off_loop(_budgeted, fn, args)


def _budgeted(fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
    with check_budget(OFF_LOOP_BUDGET_SECONDS):
        return fn(*args)


# ---------------------------------------------------------------------------------------------
# Time budget of the residual checks


class CheckTimeout(Exception):
    """A budget ran out while checking a value. ``pattern`` is set when a match was running."""

    def __init__(self, pattern: str | None = None, subject: str | None = None) -> None:
        super().__init__(pattern)
        self.pattern = pattern
        self.subject = subject  # the string being matched (a value or a property name)


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "toolcode_check_deadline", default=None
)


@contextlib.contextmanager
def check_budget(seconds: float | None = None) -> Iterator[None]:
    """Checks inside share one deadline, ``seconds`` from now. Without ``seconds`` an enclosing
    budget is kept, or ``CHECK_BUDGET_SECONDS`` starts (the reader of an answer sets the
    budget for all its calls: longer off the event loop, ``OFF_LOOP_BUDGET_SECONDS``)."""
    if seconds is None and _DEADLINE.get() is not None:
        yield
        return
    token = _DEADLINE.set(time.monotonic() + (seconds or CHECK_BUDGET_SECONDS))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _remaining() -> float:
    deadline = _DEADLINE.get()
    if deadline is None:  # outside a budget (direct use in tests): one budget per call
        return CHECK_BUDGET_SECONDS
    return deadline - time.monotonic()


def _tick() -> None:
    if _remaining() <= 0:
        raise CheckTimeout()


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """A client's pattern for the ``regex`` engine (raises ``regex.error`` if it is invalid)."""
    return regex.compile(pattern)


def _search(pattern: str, subject: str) -> bool:
    limit = min(PATTERN_MATCH_SECONDS, _remaining())
    if limit <= 0:
        raise CheckTimeout(pattern, subject)
    try:
        return compile_pattern(pattern).search(subject, timeout=limit) is not None
    except TimeoutError:
        raise CheckTimeout(pattern, subject) from None


# ---------------------------------------------------------------------------------------------
# jsonschema keywords without Python's re and without pairwise uniqueItems

_ValidationError = jsonschema.exceptions.ValidationError


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield _ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    # jsonschema's own, with the patternProperties lookup through _search
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(each) for each in sorted(extras))
        if patterns:
            listed = ", ".join(repr(each) for each in sorted(patterns))
            verb = "does" if len(extras) == 1 else "do"
            yield _ValidationError(f"{names} {verb} not match any of the regexes: {listed}")
        else:
            yield _ValidationError(f"Additional properties are not allowed ({names} unexpected)")


def _identity(value: Any) -> Any:
    """A hashable stand-in equal exactly when JSON Schema calls two values equal
    (1 == 1.0, but true is not 1; objects ignore key order)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list | tuple):
        return ("array", tuple(_identity(v) for v in value))
    if isinstance(value, Mapping):
        return ("object", frozenset((k, _identity(v)) for k, v in value.items()))
    return ("other", repr(value))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for index, item in enumerate(instance):
        key = _identity(item)
        if key in seen:
            yield _ValidationError(f"has non-unique elements (item {index} repeats an earlier one)")
            return
        seen.add(key)


_REPLACED = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
}


def _guarded(keyword: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _tick()  # every keyword applied, at any depth, checks the answer's budget first
        return keyword(validator, value, instance, schema)

    return guarded


@functools.lru_cache(maxsize=16)
def bounded_validator_class(cls: Any) -> Any:
    """``cls`` (a jsonschema draft's validator class) with the keywords above, every keyword
    checking the time budget. ``unevaluatedProperties`` next to ``patternProperties`` would
    still reach ``re``: the schema conversion refuses that pair."""
    keywords = {**cls.VALIDATORS, **_REPLACED}
    return jsonschema.validators.extend(cls, {name: _guarded(fn) for name, fn in keywords.items()})
