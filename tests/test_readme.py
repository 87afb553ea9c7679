"""The system message the docs show for the README's example is the one the plugin renders (it
went stale once). It is shown whole in docs/how-it-works.md; the README links there."""

from __future__ import annotations

from pathlib import Path

from litellm_toolcode.prompt import system_prompt
from litellm_toolcode.schema_code import build_toolset
from tests.test_proxy import WEATHER  # the README example's tool, as the tests send it

HOW_IT_WORKS = Path(__file__).resolve().parent.parent / "docs" / "how-it-works.md"


def test_docs_example_system_message_is_what_the_plugin_sends() -> None:
    text = HOW_IT_WORKS.read_text()
    start = text.index("````text\n# Tools") + len("````text\n")
    shown = text[start : text.index("\n````", start)]
    assert shown == system_prompt(build_toolset([WEATHER]).prompt_source, None)
