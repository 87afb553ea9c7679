"""Per-alias settings, read from a model entry's ``model_info.toolcode`` in LiteLLM's config.

Keeping them in ``model_info`` (not ``litellm_params``) matters: custom keys in
``litellm_params`` are forwarded to the upstream request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

__all__ = ["AliasSettings", "settings_for"]


class AliasSettings(BaseModel):
    """``model_info.toolcode`` of one model alias. Unknown keys are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=False,
        description="Rewrite tool-bearing requests to this alias into code mode. "
        "Aliases without it get LiteLLM's native behaviour (tools passed through).",
    )
    max_repair_rounds: int = Field(
        default=1,
        ge=0,
        le=5,
        description="When the model's code is wrong (syntax, unknown tool, bad arguments, "
        "tool_choice ignored), ask the same alias again this many times with the error shown, "
        "before the client gets an error.",
    )
    max_tool_result_chars: int = Field(
        default=20_000,
        ge=100,
        description="Tool results in the history longer than this are cut, with a marker "
        "saying how much was left out, before the upstream sees them.",
    )
    max_tools: int = Field(
        default=128,
        ge=1,
        description="Requests with more tools get HTTP 400 (OpenAI's own limit is 128).",
    )
    max_tool_chars: int = Field(
        default=100_000,
        ge=1_000,
        description="A tool whose definition (name, description, schema as JSON) is longer "
        "than this gets HTTP 400: it would flood the model's context.",
    )
    max_tools_chars: int = Field(
        default=1_000_000,
        ge=1_000,
        description="All tool definitions of one request together (as JSON) longer than this "
        "get HTTP 400: turning them into code takes about 3 s of CPU per MB (on a worker "
        "thread, off the event loop).",
    )
    log_payloads: bool = Field(
        default=False,
        description="Debug mode: log the generated prompt, the model's raw answers and "
        "argument values to the litellm_toolcode.payload logger at DEBUG (secrets scrubbed). "
        "Off: logs hold only tool names, argument names, counts and error kinds.",
    )
    think_prefilled: bool = Field(
        default=False,
        description="The model's chat template opens a `<think>` block before the model writes "
        "(QwQ, DeepSeek-R1 and the like behind a server that does not split reasoning out): every "
        "answer is read as starting inside a thought, so the thought streams as "
        "`reasoning_content`, never as `content`. An answer that never closes the thought has "
        "no content.",
    )
    execution: Literal["auto", "literal_only"] = Field(
        default="auto",
        description="How the model's code is read. `auto`: literal calls are read from the "
        "AST without running anything; other code (loops, variables, comprehensions, "
        "f-strings, arithmetic) runs in the hardened Jupyter kernel sandbox, where the tool "
        "stubs only record calls. `literal_only`: never run code; such code is an error "
        "that asks the model for literal calls. Pool size and limits are per proxy: "
        "TOOLCODE_POOL_SIZE and TOOLCODE_SANDBOX_* environment variables (docs/sandbox.md).",
    )


_DISABLED = AliasSettings()


def settings_for(alias: str, model_info: Mapping[str, Any] | None) -> AliasSettings:
    """Parse one deployment's ``model_info``; errors name the alias and the offending key."""
    raw = (model_info or {}).get("toolcode")
    if raw is None:
        return _DISABLED
    if raw is True:  # `toolcode: true` is a natural shorthand
        return AliasSettings(enabled=True)
    try:
        return AliasSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<toolcode>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"model alias {alias!r}: invalid model_info.toolcode ({problems}). "
            f"Known keys: {', '.join(AliasSettings.model_fields)}."
        ) from None
