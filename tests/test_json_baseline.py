"""The JSON-prompt baseline's reading of an answer, which both accuracy benchmarks score: lenient
on purpose (several objects, a list, prose around them), never a call from something else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.json_baseline import json_calls, json_prompt

CALL = '{"name": "f", "arguments": {"a": 1}}'


@pytest.mark.parametrize(
    ("answer", "calls"),
    [
        (CALL, [{"f": {"a": 1}}]),
        (f"Sure, here it is:\n```json\n{CALL}\n```\nDone.", [{"f": {"a": 1}}]),
        (f'[{CALL}, {{"name": "g", "arguments": {{}}}}]', [{"f": {"a": 1}}, {"g": {}}]),
        (f"{CALL}\n{CALL}", [{"f": {"a": 1}}, {"f": {"a": 1}}]),
        ('{"name": "f", "arguments": "{\\"a\\": 2}"}', [{"f": {"a": 2}}]),  # arguments as text
        ('{"name": "f", "arguments": "a=2"}', []),  # text that is not JSON: no call
        ('{"name": "f", "parameters": {"a": 3}}', [{"f": {"a": 3}}]),
        ('{"name": "f"}', [{"f": {}}]),
        ('{"tool": "f", "arguments": {}}', []),
        ('{"name": 7, "arguments": {}}', []),
        ('{"name": "f", "arguments": [1]}', []),
        ('{oops} {"name": "g", "arguments": {}}', [{"g": {}}]),  # broken JSON, then a call
        (
            '{"name": "f", "arguments": {"x": {"name": "inner", "arguments": {}}}}',
            [{"f": {"x": {"name": "inner", "arguments": {}}}}],
        ),  # an object inside the arguments is a value, not a second call
        ("The weather in Paris is sunny.", []),
        ("", []),
    ],
)
def test_json_calls(answer: str, calls: list[dict[str, Any]]) -> None:
    assert json_calls(answer) == calls


def test_json_prompt_puts_the_tools_as_json_in_a_leading_system_message() -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    prompted = json_prompt(messages, [tool])
    assert prompted[0]["role"] == "system" and json.dumps(tool) in prompted[0]["content"]
    assert prompted[0]["content"] == prompted[0]["content"].strip()
    assert prompted[1:] == messages
    assert messages == [{"role": "user", "content": "Weather in Paris?"}]  # the caller's intact
