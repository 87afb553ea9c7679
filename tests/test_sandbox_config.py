"""Sandbox settings: the per-alias ``execution`` key, the per-proxy limits from the environment,
and a host where kernels cannot start (a clear error, never a hang)."""

from __future__ import annotations

from pathlib import Path

import pytest

from litellm_toolcode.config import AliasSettings, settings_for
from litellm_toolcode.errors import ConfigError
from litellm_toolcode.sandbox import ENV_VARS, Limits, SandboxUnavailableError
from tests.sandbox_helpers import LoopThread


def test_execution_defaults_to_auto_and_is_checked() -> None:
    assert settings_for("a", {"toolcode": {"enabled": True}}).execution == "auto"
    assert (
        settings_for("a", {"toolcode": {"enabled": True, "execution": "literal_only"}}).execution
        == "literal_only"
    )
    with pytest.raises(ConfigError) as caught:
        settings_for("my-alias", {"toolcode": {"enabled": True, "execution": "sometimes"}})
    assert "my-alias" in caught.value.message and "execution" in caught.value.message
    assert "execution" in AliasSettings.model_fields


def test_limits_from_environment() -> None:
    limits = Limits.from_env(
        {"TOOLCODE_POOL_SIZE": "0", "TOOLCODE_SANDBOX_TIMEOUT": "1.5", "TOOLCODE_SANDBOX_DIR": "/x"}
    )
    assert (limits.pool_size, limits.timeout, limits.work_root) == (0, 1.5, "/x")
    assert limits.memory_mb == Limits().memory_mb
    assert set(ENV_VARS) == set(Limits.__dataclass_fields__)


@pytest.mark.parametrize(
    ("name", "value"), [("TOOLCODE_POOL_SIZE", "two"), ("TOOLCODE_SANDBOX_MEMORY_MB", "-1")]
)
def test_bad_limits_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Limits.from_env({name: value})


def test_kernels_that_cannot_start_give_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    loop = LoopThread(Limits(pool_size=1, directory=str(blocked / "sub"), start_timeout=5))
    try:
        with pytest.raises(SandboxUnavailableError) as caught:
            loop.run("for c in 'ab':\n    note(c)")
        assert "unavailable" in caught.value.message
        assert loop.pool.describe()["start_failures"] >= 1
    finally:
        loop.close()
