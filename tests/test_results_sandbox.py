"""The rules of answered and repeated calls in a real sandbox kernel: the table the literal path
passes (tests/test_results.py) gives the same calls when the kernel runs the code, and so does
code only the kernel can run. Known results reach the kernel as JSON data. Both backends:
local kernels and a Kernel Gateway's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from litellm_toolcode.errors import AlreadyAnsweredError, ModelOutputError, ToolArgumentError
from litellm_toolcode.results import resolve
from litellm_toolcode.sandbox import Limits
from tests.sandbox_helpers import LoopThread, processes_mentioning
from tests.test_results import FF, RULES, SANDBOX_ONLY, TOOLS, Expected, answered_for


@pytest.fixture(scope="module", params=["local", "gateway"])
def sb(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopThread]:
    """Local kernels, or a real Kernel Gateway's (tests/gateway_helpers.py): the same rules."""
    directory: Path = tmp_path_factory.mktemp("sandbox-results")
    limits = Limits(pool_size=2, timeout=5, directory=str(directory))
    gateway = request.getfixturevalue("gateway") if request.param == "gateway" else None
    before: set[Any] = set()
    if gateway is not None:
        # the session's gateway, shared: what others left there (a stopped proxy's spares,
        # until culled) is not this module's
        directory = gateway.sandbox_dir
        before = set(processes_mentioning(str(directory))) | set(os.listdir(directory))
    loop = LoopThread(limits, gateway.settings if gateway is not None else None)
    yield loop
    loop.close()
    assert set(processes_mentioning(str(directory))) <= before
    assert set(os.listdir(directory)) <= before


def through_kernel(sb: LoopThread, code: str, uses_history: bool) -> list[tuple[str, Any]]:
    """What goes out when the kernel runs ``code``: its recorded calls, resolved and validated
    on the host exactly as the hook does."""
    answered = answered_for(uses_history)
    execution = sb.run(code, TOOLS, answered.kernel_results)
    return [
        (TOOLS.spec(call.function).name, answered.validated(call))
        for call in resolve(execution.calls, answered)
    ]


@pytest.mark.parametrize(
    ("code", "uses_history", "expected"),
    [r[1:] for r in RULES + SANDBOX_ONLY],
    ids=[r[0] for r in RULES + SANDBOX_ONLY],
)
def test_the_kernel_agrees(
    sb: LoopThread, code: str, uses_history: bool, expected: Expected
) -> None:
    if not isinstance(expected, type):
        assert through_kernel(sb, code, uses_history) == expected
        return
    with pytest.raises(ModelOutputError) as caught:
        through_kernel(sb, code, uses_history)
    if expected is AlreadyAnsweredError:
        assert isinstance(caught.value, AlreadyAnsweredError)
    if expected is ToolArgumentError:  # the kernel's own validation names the field
        assert "amount_eur" in caught.value.message


def test_the_kernel_marks_bare_calls_and_the_result_it_needed(sb: LoopThread) -> None:
    code = (
        f"{FF}\nx = {FF}\nprint({FF})\nbook_flight(flight=str(len([{FF}])))\n"
        f"book_flight(flight={FF}[0])"
    )
    execution = sb.run(code, TOOLS)
    # printing a call is the call (as on the literal path); a list holding a placeholder is
    # not a use of it; looking into one is: the run stops there
    assert [(c.function, c.bare, c.result_needed) for c in execution.calls] == [
        ("find_flight", True, False),
        ("find_flight", False, False),
        ("find_flight", True, False),
        ("find_flight", False, False),
        ("book_flight", True, False),
        ("find_flight", False, True),
    ]


def test_a_known_result_is_a_fresh_copy_each_time(sb: LoopThread) -> None:
    code = (
        f"a = {FF}\n"
        "a.append('changed')\n"
        f"book_flight(flight=str(len({FF})))"  # the second call's result is not changed
    )
    assert through_kernel(sb, code, True) == [("book_flight", {"flight": "2"})]


def test_results_are_data_not_code(sb: LoopThread) -> None:
    """A result that looks like code stays a string in the kernel."""
    from litellm_toolcode.results import Answered, known_results
    from tests.test_results import NYC, answered_history

    hostile = "__import__('os').system('touch /tmp/pwned') # \")\n'''"
    answered = Answered.of(
        TOOLS, known_results(answered_history((NYC, hostile)), TOOLS, max_result_chars=1000)
    )
    execution = sb.run(f"book_flight(flight={FF})", TOOLS, answered.kernel_results)
    (call,) = resolve(execution.calls, answered)
    assert answered.validated(call) == {"flight": hostile}
