"""litellm-toolcode: OpenAI tool calling for any coding-capable model, as a LiteLLM plugin.

In the proxy's config.yaml::

    litellm_settings:
      callbacks: ["litellm_toolcode.proxy_handler_instance"]

and ``model_info: {toolcode: {enabled: true}}`` on each alias that should use code mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import AliasSettings
from .errors import (
    CodeSyntaxError,
    ConfigError,
    ExecutionUnavailableError,
    ModelOutputError,
    RequestError,
    SchemaError,
    ToolArgumentError,
    ToolcodeError,
    UnknownToolError,
)

if TYPE_CHECKING:
    from .hook import ToolcodeHandler

__all__ = [
    "AliasSettings",
    "CodeSyntaxError",
    "ConfigError",
    "ExecutionUnavailableError",
    "ModelOutputError",
    "RequestError",
    "SchemaError",
    "ToolArgumentError",
    "ToolcodeError",
    "ToolcodeHandler",
    "UnknownToolError",
    "proxy_handler_instance",
]

_handler: ToolcodeHandler | None = None


def __getattr__(name: str) -> Any:
    # Lazy, so the pure stages can be imported (and tested) without importing litellm.
    global _handler
    if name == "ToolcodeHandler":
        from .hook import ToolcodeHandler

        return ToolcodeHandler
    if name == "proxy_handler_instance":
        if _handler is None:
            from .hook import ToolcodeHandler

            _handler = ToolcodeHandler()
        return _handler
    raise AttributeError(f"module 'litellm_toolcode' has no attribute {name!r}")
