"""The LiteLLM CustomLogger that wires the stages. Thin on purpose: no parsing here.

LiteLLM only calls ``async_pre_call_hook`` and ``async_post_call_streaming_iterator_hook`` when
they are defined in the subclass's own body (``vars(cls)``), so all three live right here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException
from litellm.types.llms.openai import ResponsesAPIResponse
from litellm.types.utils import ModelResponse, ModelResponseStream, Usage

from . import logs, sandbox
from .answer import Choice, Executor
from .bounds import off_loop
from .config import AliasSettings, settings_for
from .early import EarlyCalls, early_calls_allowed, remaining
from .errors import ConfigError, ModelOutputError, ToolcodeError
from .extract import start_in_thought
from .grammar import GRAMMAR_FIELDS
from .messages_api import (
    is_anthropic_message,
    rewrite_messages_request,
    settle_messages,
    stream_messages,
)
from .repair import Ask, Settled, settle
from .respond import StreamWriter, apply_reply
from .responses_api import (
    ENDPOINT,
    METADATA,
    endpoint_state,
    rewrite_responses_request,
    settle_responses,
    stream_responses,
)
from .rewrite import (
    STATE_KEY,
    request_answered,
    request_toolset,
    rewrite_request,
    stream_assembler,
)

__all__ = ["ToolcodeHandler"]

log = logs.configure()  # named loggers per stage: see logs.py

_CHAT_CALL_TYPES = frozenset({"acompletion", "completion"})
# /v1/responses and /v1/messages: the hooks see those endpoints' own shapes (their modules).
_REWRITERS = {
    "aresponses": rewrite_responses_request,
    "anthropic_messages": rewrite_messages_request,
    **dict.fromkeys(_CHAT_CALL_TYPES, rewrite_request),
}
# Their streams: each reads the endpoint's own events (their modules).
_STREAMERS = {"/v1/responses": stream_responses, "/v1/messages": stream_messages}
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


def _as_read(text: str | None, settings: AliasSettings) -> str | None:
    """An upstream answer as the stages read it (after the thought the template opened)."""
    return start_in_thought(text) if settings.think_prefilled else text


def _asker(data: Mapping[str, Any], usage: Usage, settings: AliasSettings) -> Ask:
    """Extra upstream calls go through LiteLLM's router (not the proxy: our hooks do not run
    again), attributed to the caller's key, and their usage is added to ``usage``."""

    async def ask(messages: list[dict[str, Any]], round_number: int) -> str | None:
        metadata = {k: v for k, v in (data.get("metadata") or {}).items() if k != STATE_KEY}
        spend = metadata.get("spend_logs_metadata") or {}
        metadata["spend_logs_metadata"] = {**spend, "toolcode_round": round_number}
        sampling = {k: data[k] for k in _SAMPLING if data.get(k) is not None}
        if settings.grammar != "none":  # the rounds are held to the same grammar
            sampling.update({k: data[k] for k in GRAMMAR_FIELDS if k in data})
        logs.repair_round(data.get("model"), round_number, messages, settings.log_payloads)
        response = await _router().acompletion(
            model=data["model"], messages=messages, metadata=metadata, **sampling
        )
        extra = getattr(response, "usage", None)
        if extra is not None:
            usage.prompt_tokens += extra.prompt_tokens or 0
            usage.completion_tokens += extra.completion_tokens or 0
            usage.total_tokens += extra.total_tokens or 0
        answer: str | None = response.choices[0].message.content
        logs.raw_answer(data.get("model"), answer, settings.log_payloads, round_number)
        return _as_read(answer, settings)

    return ask


async def _settle(
    text: str | None, data: Mapping[str, Any], state: Mapping[str, Any], usage: Usage
) -> Settled:
    settings = AliasSettings.model_validate(state["settings"])
    logs.raw_answer(data.get("model"), text, settings.log_payloads)
    try:
        toolset = await request_toolset(state)  # the pre-call hook's: no schema work twice
        settled = await settle(
            _as_read(text, settings),
            data.get("messages") or [],
            toolset,
            Choice(**state["choice"]),
            max_rounds=settings.max_repair_rounds,
            ask=_asker(data, usage, settings),
            execute=_executor(data, settings) if settings.execution != "literal_only" else None,
            answered=request_answered(state, toolset),
            after_results=bool(state.get("after_results")),
        )
    except ToolcodeError as exc:
        _record(data, toolcode_outcome=type(exc).__name__, toolcode_bound=exc.bound)
        logs.rejected(data.get("model"), exc, settings.log_payloads)
        raise _proxy_error(exc) from None
    # Without repair rounds nothing above suspended, so these facts reach the spend log; the
    # rounds themselves are logged as their own calls, tagged with toolcode_round.
    _record(
        data,
        toolcode_outcome=settled.reply.finish_reason,
        toolcode_calls=len(settled.reply.tool_calls),
        toolcode_rounds=settled.rounds,
        toolcode_errors=list(settled.errors),
        toolcode_bounds=list(settled.bounds),
    )
    logs.settled(data.get("model"), settled, settings.log_payloads)
    return settled


def _executor(data: Mapping[str, Any], settings: AliasSettings) -> Executor:
    # Facts recorded after the execution's await may miss the spend log (design.md section 2);
    # they are logged by litellm_toolcode.sandbox either way.
    return sandbox.executor(lambda **facts: _record(data, **facts), settings.gateway())


async def _early_calls(state: Mapping[str, Any]) -> EarlyCalls | None:
    """The reader of calls sent before the end, when no repair round can follow (early.py)."""
    if not early_calls_allowed(state["settings"]):
        return None
    toolset = await request_toolset(state)
    return EarlyCalls(toolset, Choice(**state["choice"]), request_answered(state, toolset))


def _warm(settings: AliasSettings) -> None:
    try:
        gateway = settings.gateway()
    except ToolcodeError:
        return  # the execution, if any, reports the missing setting
    sandbox.warm(gateway)


class ToolcodeHandler(CustomLogger):  # type: ignore[misc]
    """Code-mode tool calling for the aliases whose ``model_info.toolcode.enabled`` is true."""

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        for bucket in ("metadata", METADATA):
            metadata = data.get(bucket)
            if isinstance(metadata, dict):
                metadata.pop(STATE_KEY, None)  # only this hook may set it, never the client
        rewriter = _REWRITERS.get(call_type)
        if rewriter is None or not data.get("tools"):
            return data
        try:
            settings = _alias_settings(str(data.get("model")))
            if not settings.enabled:
                return data
            # Schema conversion grows with the tools (~3 s per MB on a cache miss) and history
            # rendering with the messages: neither may hold the event loop.
            rewritten = await off_loop(rewriter, data, settings)
            if settings.execution != "literal_only":
                _warm(settings)  # spares start while the upstream thinks
            logs.rewritten(rewritten, settings.log_payloads)
            return rewritten
        except ToolcodeError as exc:
            if exc.bound is not None:
                _record(data, toolcode_bound=exc.bound)
            logs.refused(data.get("model"), exc)
            raise _proxy_error(exc) from None

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        if isinstance(response, ResponsesAPIResponse):
            return await settle_responses(data, response, _settle)
        if is_anthropic_message(response):
            return await settle_messages(data, response, _settle)
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
        endpoint = endpoint_state(request_data)
        if endpoint is not None:
            try:
                streamer = _STREAMERS[endpoint[ENDPOINT]]
                early = await _early_calls(endpoint)
                async for item in streamer(request_data, endpoint, response, _settle, early):
                    yield item
            except ToolcodeError as exc:
                raise _proxy_error(exc) from None
            return
        state = _state(request_data)
        if state is None:
            async for chunk in response:
                yield chunk
            return
        # Progressive: prose is sent as it arrives, possible code is held until it is known
        # (stream.py); calls go out once the whole answer is settled, exactly as without
        # streaming, or as each is read when no repair round can follow (early.py). Upstream
        # reasoning deltas pass through as they come.
        assembler = stream_assembler(state)
        early = await _early_calls(state)
        writer: StreamWriter | None = None
        usage_chunk: ModelResponseStream | None = None
        async for chunk in response:
            if not isinstance(chunk, ModelResponseStream):
                continue
            writer = writer or StreamWriter(chunk)
            if getattr(chunk, "usage", None) is not None:
                usage_chunk = chunk
            # One choice streamed (n > 1 is not read while streaming: the others are dropped).
            delta = next((c.delta for c in chunk.choices if (c.index or 0) == 0), None)
            if delta is not None:
                if getattr(delta, "reasoning_content", None):
                    yield writer.upstream_reasoning(delta.reasoning_content)
                for event in assembler.feed(delta.content or ""):
                    yield writer.text(event)
                release = early.feed(assembler) if early is not None else None
                if release is not None:
                    for position, call in enumerate(release.calls, release.position):
                        for out in writer.call(position, call):
                            yield out
            # The response starts now, not with the first text sent (respond.StreamWriter.opening)
            if (opening := writer.opening()) is not None:
                yield opening
        if writer is None:
            raise _proxy_error(ModelOutputError("The upstream model returned no choices."))
        usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        if usage_chunk is not None:
            usage = usage_chunk.usage
        # No await between the last upstream chunk and _settle: its spend-log facts must land.
        settled = await _settle(assembler.text, request_data, state, usage)
        reply = settled.reply
        sent = early.sent if early is not None else ()
        try:
            remaining(reply.tool_calls, sent)
        except ToolcodeError as exc:
            raise _proxy_error(exc) from None
        for event in assembler.finish(reply.content, reply.reasoning):
            yield writer.text(event)
        for chunk in writer.calls(reply, sent):
            yield chunk
        if usage_chunk is not None:
            usage_chunk.choices = []
            yield usage_chunk
