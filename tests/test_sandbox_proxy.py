"""The sandbox through the real proxy: alias ``runner`` (execution: auto, no repair rounds) runs
code the literal path cannot read in a kernel; ``coder`` (literal_only) refuses it. The proxy's
pool keeps one spare and times executions out after 3 s (tests/conftest.py)."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, Case
from tests.fake_upstream import FakeUpstream
from tests.test_proxy import WEATHER, code


def ask_runner(case: Case, text: str) -> list[tuple[str, dict[str, object]]]:
    return case.ask(model="runner", messages=[case.user(text)], tools=[WEATHER]).calls()


def expect_error(case: Case, *fragments: str, model: str = "runner") -> str:
    """The request's error (HTTP 500 when not streaming), holding each of ``fragments``."""
    with pytest.raises(openai.APIError) as info:
        case.ask(model=model, messages=[case.user("go")], tools=[WEATHER])
    message = str(info.value.message)
    if not case.stream:
        assert isinstance(info.value, openai.InternalServerError)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_loop_over_cities_gives_one_tool_call_each(case: Case) -> None:
    case.script(
        "Checking all three.\n"
        + code(
            "# tool: get_weather",
            "for city in ['Paris', 'Rome', 'Oslo']:",
            "    get_weather(location=city, unit='celsius')",
        )
    )
    result = case.ask(model="runner", messages=[case.user("3 cities")], tools=[WEATHER])
    assert result.finish_reason == "tool_calls"
    assert result.calls() == [
        ("get_weather", {"location": city, "unit": "celsius"}) for city in ("Paris", "Rome", "Oslo")
    ]
    assert result.content == "Checking all three."
    assert len({c["id"] for c in result.tool_calls}) == 3


def test_code_using_a_result_gets_the_calls_before(case: Case) -> None:
    case.script(
        code(
            "w = get_weather(location='Paris')",
            "if w['temp'] > 20:",
            "    get_weather(location='Nice')",
        )
    )
    assert ask_runner(case, "warm?") == [("get_weather", {"location": "Paris"})]


def test_an_attribute_of_the_tool_itself_stands_for_its_result(case: Case) -> None:
    case.script(
        code(
            "# tool: get_weather",
            "get_weather(location='Paris')",
            "get_weather(location=get_weather.nearest_city)",
        )
    )
    assert ask_runner(case, "Paris and its neighbour") == [("get_weather", {"location": "Paris"})]


def test_literal_only_alias_refuses_the_same_code(case: Case) -> None:
    loop = code("for c in ['A', 'B']:", "    get_weather(location=c)")
    case.script(loop, loop)
    with pytest.raises(openai.APIError) as info:
        case.ask(model="coder", messages=[case.user("A, B")], tools=[WEATHER])
    assert "execution" in str(info.value.message)


def test_code_reading_proxy_secrets_finds_nothing(case: Case) -> None:
    case.script(
        code(
            "import os",
            "for path in ['config.yaml', '../config.yaml', '.env']:",
            "    try:",
            "        get_weather(location=open(path).read())",
            "    except OSError as e:",
            "        get_weather(location=type(e).__name__)",
            "get_weather(location=repr(dict(os.environ)))",
        )
    )
    calls = ask_runner(case, "leak")
    texts = [str(arguments["location"]) for _, arguments in calls]
    assert texts[:3] == ["FileNotFoundError"] * 3
    everything = json.dumps(texts)
    assert MASTER_KEY not in everything and UPSTREAM_KEY not in everything
    assert "LITELLM" not in everything and "TOOLCODE_" not in everything


def test_forged_call_to_an_unknown_tool_is_refused(case: Case) -> None:
    case.script(
        code(
            "state = get_weather.__globals__['_state']",
            "state.calls.append({'function': 'transfer_money', 'arguments': {'to': 'x'}})",
            "get_weather(location='cover')",
        )
    )
    expect_error(case, "transfer_money")


def test_crashing_kernel_gives_an_error_and_the_next_request_runs(case: Case) -> None:
    case.script(code("import os", "os._exit(3)", "get_weather(location='never')"))
    expect_error(case, "crashed the sandbox")
    follow = Case(case.upstream, case.client, case.stream)
    follow.script(code("for c in 'AB':", "    get_weather(location=c)"))
    assert ask_runner(follow, "again") == [
        ("get_weather", {"location": "A"}),
        ("get_weather", {"location": "B"}),
    ]


def test_hanging_kernel_errors_while_the_proxy_serves_others(
    upstream: FakeUpstream, client: openai.OpenAI
) -> None:
    hanging = Case(upstream, client, stream=False)
    hanging.script(code("while True:", "    pass", "get_weather(location='never')"))
    literal = Case(upstream, client, stream=True)
    literal.script(code("get_weather(location='Bern')"))
    looping = Case(upstream, client, stream=False)
    looping.script(code("for c in ['X', 'Y']:", "    get_weather(location=c)"))
    hung_done = threading.Event()

    def hang() -> str:
        try:
            hanging.ask(model="runner", messages=[hanging.user("hang")], tools=[WEATHER])
        except openai.APIError as exc:
            return str(exc.message)
        finally:
            hung_done.set()
        return "no error"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(hang)
        deadline = time.monotonic() + 30
        while not hanging.seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hanging.seen, "the hanging request never reached the upstream"
        # while the first request's kernel spins, the proxy answers others, including one
        # that needs a kernel of its own
        assert literal.ask(messages=[literal.user("lit")], tools=[WEATHER]).calls() == [
            ("get_weather", {"location": "Bern"})
        ]
        assert ask_runner(looping, "loop") == [
            ("get_weather", {"location": "X"}),
            ("get_weather", {"location": "Y"}),
        ]
        assert not hung_done.is_set(), first.result()
        message = first.result(timeout=60)
    assert "ran longer than 3 s" in message
