"""Per-alias settings, read from a model entry's ``model_info.toolcode`` in LiteLLM's config.

Keeping them in ``model_info`` (not ``litellm_params``) matters: custom keys in
``litellm_params`` are forwarded to the upstream request.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

__all__ = ["AliasSettings", "GatewaySettings", "settings_for"]

ENV_PREFIX = "os.environ/"


def _from_env(value: str, what: str, environ: Mapping[str, str]) -> str:
    """``os.environ/NAME`` -> the variable's value (an error naming it when unset)."""
    if not value.startswith(ENV_PREFIX):
        return value
    name = value[len(ENV_PREFIX) :]
    found = environ.get(name, "")
    if not found:
        raise ConfigError(
            f"execution: gateway needs {what} in the environment variable {name} "
            "(`make gateway` prints both the URL and the token)"
        )
    return found


@dataclass(frozen=True)
class GatewaySettings:
    """Where the gateway is and how to get in. The token stays out of ``repr`` and logs."""

    url: str
    token: str = field(repr=False)
    kernel_name: str = "toolcode"
    """The kernelspec asked for; a gateway we ship forces its own whatever this says."""

    @classmethod
    def resolve(cls, url: str, token: str, environ: Mapping[str, str]) -> GatewaySettings:
        found = _from_env(url, "the Kernel Gateway's URL", environ).rstrip("/")
        if not found.startswith(("http://", "https://")):
            raise ConfigError(f"the Kernel Gateway URL must start with http(s)://: {found!r}")
        return cls(url=found, token=_from_env(token, "the Kernel Gateway's token", environ))

    @property
    def key(self) -> str:
        """Names this gateway's pool (URL and a hash of the token, never the token)."""
        digest = hashlib.sha256(self.token.encode()).hexdigest()[:12]
        return f"gateway {self.url} {digest}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}


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
    execution: Literal["auto", "literal_only", "gateway"] = Field(
        default="auto",
        description="How the model's code is read. `auto`: literal calls are read from the "
        "AST without running anything; other code (loops, variables, comprehensions, "
        "f-strings, arithmetic) runs in the hardened Jupyter kernel sandbox, where the tool "
        "stubs only record calls. `gateway`: the same, but the kernels run on a Jupyter Kernel "
        "Gateway (`gateway_url`, `gateway_token_env`; docs/gateway.md), for a proxy host that "
        "cannot create namespaces. `literal_only`: never run code; such code is an error "
        "that asks the model for literal calls. Pool size and limits are per proxy: "
        "TOOLCODE_POOL_SIZE and TOOLCODE_SANDBOX_* environment variables (docs/sandbox.md).",
    )
    grammar: Literal["none", "gbnf", "vllm", "sglang"] = Field(
        default="none",
        description="Constrain the model's answer with a grammar made from the request's tools, "
        "so it can only write calls to them with their own keywords and typed literal values "
        "(docs/configuration.md). Say the backend, it is never guessed (a server that ignores an "
        "unknown field would run unconstrained): `gbnf` for llama-cpp-python and llama-server "
        "(field `grammar`), `vllm` for vLLM 0.12+ (`structured_outputs.grammar`), `sglang` "
        "(`ebnf`). With a grammar the code is literal calls, whose arguments may be other calls' "
        "results (no loops or variables).",
    )

    @field_validator("grammar", mode="before")
    @classmethod
    def _unset_is_none(cls, value: object) -> object:
        # `grammar: os.environ/TOOLCODE_GRAMMAR` with the variable unset: LiteLLM resolves
        # it to None before we see it, which means no grammar (the shipped config relies on it).
        return "none" if value is None or value == "" else value

    gateway_url: str = Field(
        default="os.environ/TOOLCODE_GATEWAY_URL",
        description="With `execution: gateway`: the Kernel Gateway's http(s) URL, or "
        "`os.environ/NAME` to read it from the environment variable NAME.",
    )
    gateway_token_env: str = Field(
        default="TOOLCODE_GATEWAY_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="With `execution: gateway`: the NAME of the environment variable holding "
        "the gateway's token. A name, not `os.environ/NAME`: LiteLLM resolves those into "
        "model_info, which the proxy shows through /model/info.",
    )

    def gateway(self, environ: Mapping[str, str] | None = None) -> GatewaySettings | None:
        """The gateway to run code on (``execution: gateway``), resolved from the env."""
        if self.execution != "gateway":
            return None
        return GatewaySettings.resolve(
            self.gateway_url,
            ENV_PREFIX + self.gateway_token_env,
            os.environ if environ is None else environ,
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
