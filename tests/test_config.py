from __future__ import annotations

from typing import Any

import pytest

from litellm_toolcode.config import AliasSettings, settings_for
from litellm_toolcode.errors import ConfigError


@pytest.mark.parametrize(
    ("model_info", "expected"),
    [
        (None, AliasSettings(enabled=False)),
        ({}, AliasSettings(enabled=False)),
        ({"id": "abc", "other": 1}, AliasSettings(enabled=False)),
        ({"toolcode": True}, AliasSettings(enabled=True)),
        ({"toolcode": {"enabled": True}}, AliasSettings(enabled=True)),
        (
            {"toolcode": {"enabled": True, "max_tool_result_chars": 500}},
            AliasSettings(enabled=True, max_tool_result_chars=500),
        ),
        # `grammar: os.environ/TOOLCODE_GRAMMAR` with the variable unset reaches us as None
        ({"toolcode": {"enabled": True, "grammar": None}}, AliasSettings(enabled=True)),
        ({"toolcode": {"enabled": True, "grammar": ""}}, AliasSettings(enabled=True)),
        (
            {"toolcode": {"enabled": True, "grammar": "gbnf"}},
            AliasSettings(enabled=True, grammar="gbnf"),
        ),
    ],
)
def test_settings(model_info: dict[str, Any] | None, expected: AliasSettings) -> None:
    assert settings_for("coder", model_info) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"enabled": True, "max_repair_round": 2}, "max_repair_round"),
        ({"enabled": "maybe"}, "enabled"),
        ({"max_tool_result_chars": 5}, "max_tool_result_chars"),
        ("yes please", "toolcode"),
        ({"enabled": True, "grammar": "GBNF"}, "grammar"),
    ],
)
def test_bad_settings_name_alias_and_key(raw: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for("my-alias", {"toolcode": raw})
    assert "my-alias" in info.value.message
    assert fragment in info.value.message
