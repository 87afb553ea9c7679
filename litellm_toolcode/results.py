"""Calls answered earlier in the conversation, and which calls of one answer are the same call.

Agents run every ``tool_call`` they get. A model that writes ``find_flight(...)`` and then
``convert_currency(amount_eur=find_flight(...)[1])`` means one flight search, not two; and on
the turn after the client ran ``find_flight(...)`` the same code means "use that result". Both
paths that read code (``check.py`` on the host, ``sandbox/prelude.py`` in a kernel) record
every call they meet, with ``bare`` (a statement of its own: its value unused) and
``result_needed`` (the code stopped at a use of its result), and ``resolve`` decides here,
once for both, which of them go out:

- the call whose result stopped the code, when it repeats an earlier call of the same answer,
  is that earlier call: not sent twice (other repeats go out as written: ``roll_dice()``
  twice is two rolls);
- a call answered in the history (same tool, same validated arguments, its ``tool`` message
  present) whose value the code takes (assigned, passed, looked into: not bare) is not sent:
  the code got the result instead;
- a bare call is sent even when answered (a client may want a refresh), unless the same answer
  also takes the value of that same call;
- except a loop: a call the history answered ``LOOP_AFTER`` times or more, with the same result
  each time, is not sent again when nothing else in the answer is new (``RepeatedCallError``:
  a repair round shows the result). Small models re-issue the call they just got the result of
  instead of going on (PydanticAI's ``final_result``, an agent's next tool); a poll whose result
  changes is no loop, and answers from before the client's latest user message do not count:
  a new request is new work, and the calls made for it may have changed what ``ls()`` returns
  (BFCL's file system: ``ls()`` twice, then the user's ``cd`` and ``mv``, then ``ls()``).

"Same arguments" is equal canonical JSON of the arguments after validation
(``call_key``): keyword order, positional binding, ``1`` against ``1.0`` and an argument given
as None against one left out do not matter.
Results are untrusted client data: each is capped (``max_tool_result_chars``, as for the
model), all of them together at ``bounds.MAX_KNOWN_RESULTS_CHARS``, and they reach a kernel
only as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .bounds import (
    MAX_KNOWN_RESULTS,
    MAX_KNOWN_RESULTS_CHARS,
    OFF_LOOP_BUDGET_SECONDS,
    check_budget,
)
from .errors import AlreadyAnsweredError, RepeatedCallError, ToolcodeError
from .history import text_of

if TYPE_CHECKING:
    from .schema import Toolset

__all__ = [
    "Answered",
    "KnownResult",
    "LiteralCall",
    "Pending",
    "call_key",
    "first_pending",
    "known_results",
    "resolve",
]


@dataclass(frozen=True)
class LiteralCall:
    """One tool call read from the code, on the host (``check.py``) or in a kernel."""

    function: str
    """The Python function name called (a key of the signatures)."""
    arguments: dict[str, Any]
    """Parameter name -> plain Python value, for the arguments given (defaults not applied)."""
    bare: bool = True
    """The call is a statement of its own (``f(...)``, ``print(f(...))``): its value is unused.
    False when the code takes its value (assigned, an argument, looked into)."""
    result_needed: bool = False
    """The code stopped at a use of this call's result (not known yet)."""


LOOP_AFTER = 2  # answered this often with one result: calling it again is a loop
_SHOWN_CHARS = 300  # of a result, in the repair round that shows it

Validate = Callable[[str, Mapping[str, Any]], dict[str, Any]]
"""(Python function name, arguments by parameter name) -> validated JSON arguments."""


def _canonical(value: Any) -> Any:
    # JSON Schema equality: 1 == 1.0 (a float field dumps 420 as 420.0 anyway), true is not 1.
    # A None entry counts as not given: validation drops some (a field whose schema has no
    # null) and the kernel's lax dump keeps them, so keys must not depend on it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    return value


def call_key(function: str, validated: Mapping[str, Any]) -> str:
    """The identity of a call: its Python function name and canonical validated arguments.
    ``sandbox/prelude.py`` computes the same text in the kernel (``_key``)."""
    return json.dumps(
        [function, _canonical(validated)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


@dataclass(frozen=True)
class KnownResult:
    """One answered call, as the pre-call hook keeps it for the post-call hooks."""

    key: str  # call_key of the call
    text: str  # the tool message's text
    is_json: bool  # the text parses as JSON: the code gets the parsed value
    call: str = ""  # the call as the model reads it in the history (Toolset.render_call)
    times: int = 1  # answers of this call with this same text since the last user message

    @property
    def value(self) -> Any:
        return json.loads(self.text) if self.is_json else self.text

    @property
    def json_text(self) -> str:
        """The value as JSON text (what a kernel is given)."""
        return self.text if self.is_json else json.dumps(self.text, ensure_ascii=False)


@dataclass(frozen=True)
class Pending:
    """While code is read on the host: the result of a call not answered yet, passed on as a
    value. Passing it to a call stops the code at that call, whether or not the call's
    arguments fit its signature (as in the sandbox, where the recorder finds the placeholder)."""

    function: str
    line: int
    index: int  # of the call in the calls read so far
    name: str | None = None  # the variable holding it, if any


def first_pending(value: Any) -> Pending | None:
    """The first Pending in a call's plain arguments, if any."""
    if isinstance(value, Pending):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = first_pending(item)
        if found is not None:
            return found
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: the text stays text


def _is_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return False
    return True


def _arguments(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def known_results(
    messages: Sequence[Mapping[str, Any]],
    toolset: Toolset,
    *,
    max_result_chars: int,
    max_total_chars: int = MAX_KNOWN_RESULTS_CHARS,
) -> tuple[KnownResult, ...]:
    """The results of a chat history's answered calls: each assistant ``tool_calls`` entry
    paired with the ``tool`` message of its ``tool_call_id``. A later answer of the same call
    wins; results over ``max_result_chars`` (the model saw them cut) are left out, and the
    newest results are kept up to ``max_total_chars`` in all. Calls that do not validate
    against today's tools are left out."""
    py_names = {spec.name: spec.py_name for spec in toolset.tools}
    calls: dict[str, tuple[str, dict[str, Any]]] = {}  # tool_call_id -> (py name, arguments)
    answered: list[tuple[str, dict[str, Any], str]] = []
    turn_start = 0  # answers before the client's latest user message: no loop in this turn
    for message in messages:
        role = message.get("role")
        if role == "user":
            turn_start = len(answered)
        elif role == "assistant":
            for call in message.get("tool_calls") or []:
                if not isinstance(call, Mapping):
                    continue
                function = call.get("function") or {}
                py_name = py_names.get(str(function.get("name")))
                arguments = _arguments(function.get("arguments"))
                if py_name is not None and arguments is not None:
                    calls[str(call.get("id"))] = (py_name, arguments)
        elif role == "tool":
            found = calls.get(str(message.get("tool_call_id")))
            if found is not None:
                answered.append((*found, text_of(message.get("content"))))
    kept: dict[str, KnownResult] = {}
    times: dict[tuple[str, str], int] = {}  # (call key, result text) -> answers seen
    total = 0
    with check_budget(OFF_LOOP_BUDGET_SECONDS):  # one budget for all: a history is the client's
        for index in range(len(answered) - 1, -1, -1):  # newest first
            py_name, arguments, text = answered[index]
            if len(kept) >= MAX_KNOWN_RESULTS:
                break
            if len(text) > max_result_chars or total + len(text) > max_total_chars:
                continue
            names = toolset.argument_names(py_name)
            by_parameter = {names.get(k, k): v for k, v in arguments.items()}
            try:
                validated = toolset.validate(py_name, by_parameter)
            except (ToolcodeError, ValueError, RecursionError):
                continue
            key = call_key(py_name, validated)
            if index >= turn_start:
                times[key, text] = times.get((key, text), 0) + 1
            if key not in kept:
                call = toolset.render_call(toolset.spec(py_name).name, arguments)
                kept[key] = KnownResult(key=key, text=text, is_json=_is_json(text), call=call)
                total += len(text)
    return tuple(
        replace(result, times=times.get((result.key, result.text), 0))
        for result in reversed(kept.values())
    )


def _memo_key(call: LiteralCall) -> str | None:
    try:
        return json.dumps([call.function, call.arguments], sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        return None


class Answered:
    """What one request knows of its calls' results (by ``call_key``), with each call's
    validation done once: ``resolve`` and the reply that follows share it."""

    def __init__(self, validate: Validate, known: Sequence[KnownResult] = ()) -> None:
        self._validate = validate
        self._known = {result.key: result for result in known}
        self._memo: dict[str, dict[str, Any] | ToolcodeError] = {}

    @classmethod
    def of(cls, toolset: Toolset, known: Sequence[KnownResult] = ()) -> Answered:
        return cls(toolset.validate, known)

    @property
    def kernel_results(self) -> dict[str, str]:
        """call key -> the value as JSON text: what a kernel is given."""
        return {key: result.json_text for key, result in self._known.items()}

    def validated(self, call: LiteralCall) -> dict[str, Any]:
        """``call``'s validated JSON arguments (raises the validation error, every time)."""
        memo = _memo_key(call)
        found = self._memo.get(memo) if memo is not None else None
        if found is None:
            try:
                found = self._validate(call.function, call.arguments)
            except ToolcodeError as exc:
                found = exc
            if memo is not None:
                self._memo[memo] = found
        if isinstance(found, ToolcodeError):
            raise found
        return found

    def key(self, call: LiteralCall) -> str | None:
        """``call_key`` of ``call``, or None when its arguments do not validate."""
        try:
            return call_key(call.function, self.validated(call))
        except ToolcodeError:
            return None

    def lookup(self, call: LiteralCall) -> tuple[bool, Any]:
        """(True, the result) for a call answered in the history, else (False, None)."""
        if not self._known:
            return False, None
        key = self.key(call)
        result = self._known.get(key) if key is not None else None
        return (True, result.value) if result is not None else (False, None)

    @property
    def has_known(self) -> bool:
        return bool(self._known)

    def is_known(self, key: str | None) -> bool:
        return key is not None and key in self._known

    def looping(self, key: str | None) -> KnownResult | None:
        """The result of a call answered ``LOOP_AFTER`` times with that same result."""
        result = self._known.get(key) if key is not None else None
        return result if result is not None and result.times >= LOOP_AFTER else None


def resolve(events: Sequence[LiteralCall], answered: Answered) -> tuple[LiteralCall, ...]:
    """The calls of ``events`` (every call the code made, in order, up to where it stopped)
    that go out; see the module docstring for the rules. Raises ``AlreadyAnsweredError`` when
    every call was answered in the history and nothing is left to send."""
    if not answered.has_known and not any(event.result_needed for event in events):
        return tuple(events)  # nothing can be the same call as another: no validation here
    keys = [answered.key(event) for event in events]
    taken = {key for key, event in zip(keys, events, strict=True) if not event.bare}
    out: list[LiteralCall] = []
    seen: set[str] = set()
    answered_names: list[str] = []
    for key, event in zip(keys, events, strict=True):
        if key is not None and answered.is_known(key):
            if key in taken:
                answered_names.append(event.function)
                continue  # the code got the result from the history
        elif key is not None and event.result_needed and key in seen:
            continue  # the same call as an earlier one of this answer
        out.append(event)
        if key is not None:
            seen.add(key)
    loops = [answered.looping(answered.key(event)) for event in out]
    if out and all(loops):
        raise RepeatedCallError(_loop_message([r for r in loops if r is not None]))
    if not out and answered_names:
        names = ", ".join(f"{name}(...)" for name in dict.fromkeys(answered_names))
        raise AlreadyAnsweredError(
            f"every call in the code ({names}) was already answered earlier in the "
            "conversation, and the code got those results; nothing is left to call. Answer "
            "from the results, or call the tools you still need."
        )
    return tuple(out)


def _loop_message(results: Sequence[KnownResult]) -> str:
    shown = [
        f"`{r.call}` returned, {r.times} times: "
        + (r.text if len(r.text) <= _SHOWN_CHARS else r.text[:_SHOWN_CHARS] + "...")
        for r in dict.fromkeys(results)
    ]
    return (
        "the code only repeats calls this conversation already answered, with the same result "
        "each time: " + "; ".join(shown) + ". The same call gives the same result again: "
        "use that result for the next step (another function, or the final answer), or change "
        "the arguments if the result says they were wrong."
    )
