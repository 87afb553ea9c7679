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
from litellm.types.utils import ModelResponse, ModelResponseStream, Usage

from .answer import Choice
from .config import AliasSettings, settings_for
from .errors import ConfigError, ModelOutputError, ToolcodeError
from .repair import Ask, Settled, settle
from .respond import apply_reply, reply_chunks
from .rewrite import STATE_KEY, rewrite_request
from .schema_code import build_toolset

__all__ = ["ToolcodeHandler"]

log = logging.getLogger("litellm_toolcode")

_CHAT_CALL_TYPES = frozenset({"acompletion", "completion"})
# Sampling parameters a repair round repeats from the client's request.
_SAMPLING = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop")


def _router() -> Any:
    from litellm.proxy.proxy_server import llm_router  # set once the proxy has started

    return llm_router


def _proxy_error(exc: ToolcodeError) -> ProxyException:
    return ProxyException(
        message=exc.message, type=exc.error_type, param=exc.param, code=exc.status_code
    )


def _alias_settings(alias: str) -> AliasSettings:
    router = _router()
    if router is None:
        return AliasSettings()
    found = {
        settings_for(alias, deployment.get("model_info"))
        for deployment in router.get_model_list(model_name=alias) or []
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


def _record(data: Mapping[str, Any], **facts: Any) -> None:
    # Spend-log metadata must be written before the hook's first await (design.md section 2).
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        spend = metadata.get("spend_logs_metadata") or {}
        metadata["spend_logs_metadata"] = {**spend, **facts}


def _asker(data: Mapping[str, Any], usage: Usage) -> Ask:
    """Extra upstream calls go through LiteLLM's router (not the proxy: our hooks do not run
    again), attributed to the caller's key, and their usage is added to ``usage``."""

    async def ask(messages: list[dict[str, Any]], round_number: int) -> str | None:
        metadata = {k: v for k, v in (data.get("metadata") or {}).items() if k != STATE_KEY}
        spend = metadata.get("spend_logs_metadata") or {}
        metadata["spend_logs_metadata"] = {**spend, "toolcode_round": round_number}
        sampling = {k: data[k] for k in _SAMPLING if data.get(k) is not None}
        log.info("toolcode: round %d to alias %s", round_number, data.get("model"))
        response = await _router().acompletion(
            model=data["model"], messages=messages, metadata=metadata, **sampling
        )
        extra = getattr(response, "usage", None)
        if extra is not None:
            usage.prompt_tokens += extra.prompt_tokens or 0
            usage.completion_tokens += extra.completion_tokens or 0
            usage.total_tokens += extra.total_tokens or 0
        return response.choices[0].message.content  # type: ignore[no-any-return]

    return ask


async def _settle(
    text: str | None, data: Mapping[str, Any], state: Mapping[str, Any], usage: Usage
) -> Settled:
    settings = AliasSettings.model_validate(state["settings"])
    try:
        settled = await settle(
            text,
            data.get("messages") or [],
            build_toolset(state["tools"]),  # cached by content hash: no schema work twice
            Choice(**state["choice"]),
            max_rounds=settings.max_repair_rounds,
            ask=_asker(data, usage),
        )
    except ToolcodeError as exc:
        _record(data, toolcode_outcome=type(exc).__name__)
        log.info("toolcode: model answer rejected: %s", exc.message)
        raise _proxy_error(exc) from None
    # Without repair rounds nothing above suspended, so these facts reach the spend log; the
    # rounds themselves are logged as their own calls, tagged with toolcode_round.
    _record(
        data,
        toolcode_outcome=settled.reply.finish_reason,
        toolcode_calls=len(settled.reply.tool_calls),
        toolcode_rounds=settled.rounds,
        toolcode_errors=list(settled.errors),
    )
    return settled


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
            log.warning("toolcode: request refused: %s", exc.message)
            raise _proxy_error(exc) from None

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        state = _state(data)
        if state is None or not isinstance(response, ModelResponse):
            return None
        if not response.choices:
            raise _proxy_error(ModelOutputError("The upstream model returned no choices."))
        usage = getattr(response, "usage", None) or Usage(
            prompt_tokens=0, completion_tokens=0, total_tokens=0
        )
        for index, choice in enumerate(response.choices):
            settled = await _settle(choice.message.content, data, state, usage)
            apply_reply(response, index, settled.reply)
        response.usage = usage
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
        usage_chunk: ModelResponseStream | None = None
        async for chunk in response:
            if not isinstance(chunk, ModelResponseStream):
                continue
            template = template or chunk
            if getattr(chunk, "usage", None) is not None:
                usage_chunk = chunk
            if not chunk.choices:
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
        if template is None:
            return
        usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        if usage_chunk is not None:
            usage = usage_chunk.usage
        settled = await _settle("".join(text), request_data, state, usage)
        for chunk in reply_chunks(template, settled.reply):
            yield chunk
        if usage_chunk is not None:
            usage_chunk.choices = []
            yield usage_chunk
