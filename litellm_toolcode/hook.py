"""The LiteLLM CustomLogger that wires the stages. Thin on purpose: no parsing here.

LiteLLM only calls ``async_pre_call_hook`` and ``async_post_call_streaming_iterator_hook`` when
they are defined in the subclass's own body (``vars(cls)``), so all three live right here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException
from litellm.types.utils import ModelResponse, ModelResponseStream

from .answer import Reply, interpret
from .config import AliasSettings, settings_for
from .errors import ConfigError, ToolcodeError
from .extract import split_answer
from .respond import apply_reply, reply_chunks
from .rewrite import STATE_KEY, rewrite_request
from .schema_code import build_toolset

__all__ = ["ToolcodeHandler"]

log = logging.getLogger("litellm_toolcode")

_CHAT_CALL_TYPES = frozenset({"acompletion", "completion"})


def _proxy_error(exc: ToolcodeError) -> ProxyException:
    return ProxyException(
        message=exc.message, type=exc.error_type, param=exc.param, code=exc.status_code
    )


def _alias_settings(alias: str) -> AliasSettings:
    from litellm.proxy.proxy_server import llm_router  # set once the proxy has started

    if llm_router is None:
        return AliasSettings()
    found = {
        settings_for(alias, deployment.get("model_info"))
        for deployment in llm_router.get_model_list(model_name=alias) or []
    }
    if len(found) > 1:
        raise ConfigError(
            f"model alias {alias!r}: its deployments disagree on model_info.toolcode; "
            "give every deployment of one alias the same settings"
        )
    return found.pop() if found else AliasSettings()


def _state(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    state = (data.get("metadata") or {}).get(STATE_KEY)
    return state if isinstance(state, Mapping) else None


def _reply(text: str | None, state: Mapping[str, Any]) -> Reply:
    toolset = build_toolset(state["tools"])  # cached by content hash: no schema work twice
    if state["mode"] == "none":  # tool_choice "none": never read calls, only drop thoughts
        answer = split_answer(text, ())
        return Reply(content=answer.content, reasoning=answer.reasoning, tool_calls=())
    return interpret(text, toolset)


def _record(data: Mapping[str, Any], **facts: Any) -> None:
    # Spend-log metadata must be written before the hook's first await (design.md section 2).
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        spend = metadata.get("spend_logs_metadata") or {}
        metadata["spend_logs_metadata"] = {**spend, **facts}


class ToolcodeHandler(CustomLogger):  # type: ignore[misc]
    """Code-mode tool calling for the aliases whose ``model_info.toolcode.enabled`` is true."""

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop(STATE_KEY, None)  # only this hook may set it, never the client
        if call_type not in _CHAT_CALL_TYPES or not data.get("tools"):
            return data
        try:
            settings = _alias_settings(str(data.get("model")))
            if not settings.enabled:
                return data
            return rewrite_request(data, settings)
        except ToolcodeError as exc:
            log.warning("toolcode request refused: %s", exc.message)
            raise _proxy_error(exc) from None

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        state = _state(data)
        if state is None or not isinstance(response, ModelResponse):
            return None
        try:
            for index, choice in enumerate(response.choices):
                message = choice.message  # type: ignore[union-attr]
                apply_reply(response, index, _reply(message.content, state))
        except ToolcodeError as exc:
            _record(data, toolcode_outcome=type(exc).__name__)
            log.info("toolcode: model answer rejected: %s", exc.message)
            raise _proxy_error(exc) from None
        _record(
            data,
            toolcode_outcome=response.choices[0].finish_reason,
            toolcode_calls=sum(len(c.message.tool_calls or []) for c in response.choices),  # type: ignore[union-attr]
        )
        return response

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: AsyncIterator[Any], request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        state = _state(request_data)
        if state is None:
            async for chunk in response:
                yield chunk
            return
        # Buffered for now: content is held until the answer is complete, then re-emitted as
        # OpenAI would stream it. Upstream reasoning deltas are passed through as they come.
        text: list[str] = []
        template: ModelResponseStream | None = None
        tail: list[Any] = []  # the usage chunk, re-sent after our finish chunk
        async for chunk in response:
            if not isinstance(chunk, ModelResponseStream):
                continue
            template = template or chunk
            if not chunk.choices:
                if getattr(chunk, "usage", None) is not None:
                    tail.append(chunk)
                continue
            delta = chunk.choices[0].delta
            if getattr(delta, "reasoning_content", None):
                yield ModelResponseStream(
                    id=chunk.id,
                    created=chunk.created,
                    model=chunk.model,
                    choices=[{"index": 0, "delta": {"reasoning_content": delta.reasoning_content}}],
                )
            if delta.content:
                text.append(delta.content)
            if getattr(chunk, "usage", None) is not None:
                tail.append(chunk)
        if template is None:
            return
        try:
            reply = _reply("".join(text), state)
        except ToolcodeError as exc:
            _record(request_data, toolcode_outcome=type(exc).__name__)
            log.info("toolcode: model answer rejected: %s", exc.message)
            raise _proxy_error(exc) from None
        _record(request_data, toolcode_outcome=reply.finish_reason, toolcode_calls=len(reply.tool_calls))
        for chunk in reply_chunks(template, reply):
            yield chunk
        for chunk in tail:
            yield chunk
