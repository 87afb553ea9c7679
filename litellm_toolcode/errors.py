"""One exception tree for the whole plugin.

Every error carries what the hook needs to answer in OpenAI's error shape: an HTTP status, an
error ``type`` and an optional ``param``. Messages are written for the person who reads them in
the client (operator, developer or, in repair rounds, the model itself), so they name the tool,
the field or the config key at fault and say what to do.
"""

from __future__ import annotations

__all__ = [
    "AlreadyAnsweredError",
    "CodeSyntaxError",
    "ConfigError",
    "ExecutionUnavailableError",
    "LimitError",
    "ModelOutputError",
    "PatternTimeoutError",
    "RepeatedCallError",
    "RequestError",
    "SchemaError",
    "ToolArgumentError",
    "ToolChoiceError",
    "ToolcodeError",
    "UnknownToolError",
]


class ToolcodeError(Exception):
    """Base of every error the plugin raises on purpose."""

    status_code: int = 500
    error_type: str = "toolcode_error"
    bound: str | None = None  # the documented bound this error reports (for spend logs)

    def __init__(self, message: str, *, param: str | None = None, bound: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if bound is not None:
            self.bound = bound


class ConfigError(ToolcodeError):
    """The operator's ``model_info.toolcode`` settings are wrong (names the alias and key)."""

    status_code = 500
    error_type = "server_config_error"


class RequestError(ToolcodeError):
    """The client's request cannot be served as sent (HTTP 400)."""

    status_code = 400
    error_type = "invalid_request_error"


class SchemaError(RequestError):
    """A tool's JSON Schema cannot be turned into code (names the tool and the JSON path)."""

    def __init__(self, message: str, *, tool: str, path: str = "") -> None:
        where = f"tool {tool!r}" + (f" at {path}" if path else "")
        super().__init__(f"{where}: {message}", param="tools")
        self.tool = tool
        self.path = path


class ModelOutputError(ToolcodeError):
    """The model's answer cannot be turned into valid tool calls.

    Mirrors OpenAI's own answer to invalid model output: HTTP 500 with type ``model_error``.
    """

    status_code = 500
    error_type = "model_error"


class CodeSyntaxError(ModelOutputError):
    """The model's code block is not valid Python."""


class UnknownToolError(ModelOutputError):
    """The model called a function that is not one of the request's tools."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class ToolArgumentError(ModelOutputError):
    """A call's arguments do not fit the tool's schema (names the tool and the field)."""

    def __init__(self, message: str, *, tool: str, field: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool
        self.field = field


class ExecutionUnavailableError(ModelOutputError):
    """The code needs execution (not plain literal calls) and execution is not available."""


class ToolChoiceError(ModelOutputError):
    """The answer ignores the request's ``tool_choice`` or ``parallel_tool_calls``."""


class PatternTimeoutError(ToolArgumentError):
    """Checking a value against the schema ran out of time (a pattern, or the whole residual
    JSON Schema check): the value is neither accepted nor guessed at."""

    bound = "check_time"


class LimitError(ModelOutputError):
    """The answer makes more calls than the plugin reads from one answer (``bound``:
    ``answer_calls``)."""


class AlreadyAnsweredError(ModelOutputError):
    """Every call in the code was answered earlier in the conversation and the code used those
    results: nothing is left to send (results.py)."""


class RepeatedCallError(ModelOutputError):
    """The code only repeats calls the conversation answered several times with one result: a
    loop, not a refresh (results.py ``LOOP_AFTER``)."""
