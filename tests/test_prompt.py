"""The rendered system prompt is cached: equal inputs render once, and every input that changes
the text changes the key (the template reads nothing else)."""

from __future__ import annotations

from typing import Any

import jinja2.meta
import pytest

from litellm_toolcode import prompt
from litellm_toolcode.config import AliasSettings
from litellm_toolcode.prompt import CACHED_PROMPT_CHARS, SYSTEM_TEMPLATE, render, system_prompt
from litellm_toolcode.rewrite import rewrite_request
from litellm_toolcode.schema_code import build_toolset
from tests.test_proxy import TIME, WEATHER

SOURCE = build_toolset([WEATHER]).prompt_source
OTHER = build_toolset([WEATHER, TIME]).prompt_source


def uncached(source: str, client_system: str | None) -> str:
    return render(SYSTEM_TEMPLATE, source=source.strip(), client_system=client_system)


def test_the_template_reads_only_what_the_cache_is_keyed_by() -> None:
    env = prompt._ENV
    assert env.loader is not None
    text, _, _ = env.loader.get_source(env, SYSTEM_TEMPLATE)
    read = jinja2.meta.find_undeclared_variables(env.parse(text))
    assert read == {"source", "client_system"}


# (source, client_system) of a first and a second call; whether the second is the first's text
SAME, DIFFERENT = True, False
CASES = [
    ("equal inputs", (SOURCE, None), (SOURCE, None), SAME),
    ("equal, client system", (SOURCE, "Be brief."), (SOURCE, "Be brief."), SAME),
    ("equal, a copy of the source", (SOURCE, None), ("".join(list(SOURCE)), None), SAME),
    ("other tools", (SOURCE, None), (OTHER, None), DIFFERENT),
    ("a client system added", (SOURCE, None), (SOURCE, "Be brief."), DIFFERENT),
    ("another client system", (SOURCE, "Be brief."), (SOURCE, "Be long."), DIFFERENT),
    ("client system whitespace", (SOURCE, "Be brief."), (SOURCE, "Be brief. "), DIFFERENT),
]


@pytest.mark.parametrize(
    ("first", "second", "same"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_equal_inputs_hit_the_cache_and_others_render_their_own_text(
    first: tuple[str, str | None], second: tuple[str, str | None], same: bool
) -> None:
    one = system_prompt(*first)
    two = system_prompt(*second)
    assert one == uncached(*first)
    assert two == uncached(*second)
    assert (one == two) is same
    # a hit hands back the very string rendered before; a render makes a new one
    assert (one is two) is same


def test_a_render_is_not_redone_for_the_same_tools() -> None:
    system_prompt(OTHER, "Count the renders.")
    before = prompt._cached_system.cache_info()
    for _ in range(5):
        system_prompt(OTHER, "Count the renders.")
    after = prompt._cached_system.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (5, 0)


def test_long_inputs_are_rendered_each_time_not_kept() -> None:
    client_system = "x" * CACHED_PROMPT_CHARS
    one = system_prompt(SOURCE, client_system)
    two = system_prompt(SOURCE, client_system)
    assert one == two == uncached(SOURCE, client_system)
    assert one is not two


def system_of(**request: Any) -> str | None:
    data = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **request}
    messages = rewrite_request(data, AliasSettings(enabled=True))["messages"]
    return messages[0]["content"] if messages[0]["role"] == "system" else None


def test_through_the_rewrite_only_tools_and_client_system_change_the_prompt() -> None:
    base = system_of(tools=[WEATHER])
    assert base == uncached(SOURCE, None)
    # tool_choice and parallel_tool_calls are not shown in the prompt: the same text
    assert system_of(tools=[WEATHER], tool_choice="required") == base
    assert system_of(tools=[WEATHER], parallel_tool_calls=False) == base
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert system_of(tools=[WEATHER], tool_choice=named) == base
    # ... except "none", which shows no tools at all
    assert system_of(tools=[WEATHER], tool_choice="none") is None
    assert system_of(tools=[WEATHER, TIME]) == uncached(OTHER, None)
    pirate = [
        {"role": "system", "content": "Talk like a pirate."},
        {"role": "user", "content": "hi"},
    ]
    assert system_of(tools=[WEATHER], messages=pirate) == uncached(SOURCE, "Talk like a pirate.")
