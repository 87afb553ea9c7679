"""The README's example system message is the one the plugin renders (it went stale once)."""

from __future__ import annotations

from pathlib import Path

from litellm_toolcode.prompt import system_prompt
from litellm_toolcode.schema_code import build_toolset
from tests.test_proxy import WEATHER  # the README example's tool, as the tests send it

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_system_message_is_what_the_plugin_sends() -> None:
    text = README.read_text()
    start = text.index("````text\n# Tools") + len("````text\n")
    shown = text[start : text.index("\n````", start)]
    assert shown == system_prompt(build_toolset([WEATHER]).prompt_source, None)
