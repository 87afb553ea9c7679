"""Reply records -> LiteLLM's OpenAI response objects (whole responses and stream chunks)."""

from __future__ import annotations

from collections.abc import Iterator

from litellm.types.utils import (
    ChatCompletionDeltaToolCall,
    ChatCompletionMessageToolCall,
    Delta,
    Function,
    ModelResponse,
    ModelResponseStream,
    StreamingChoices,
)

from .answer import Reply

__all__ = ["apply_reply", "reply_chunks"]


def _join(*parts: str | None) -> str | None:
    text = "\n".join(p for p in parts if p)
    return text or None


def apply_reply(response: ModelResponse, index: int, reply: Reply) -> None:
    """Write a reply into choice ``index`` of a non-streaming response, in place.

    Editing the upstream's own ModelResponse (not building a new one) keeps its usage, id and
    LiteLLM's hidden params, which become the ``x-litellm-*`` headers.
    """
    choice = response.choices[index]
    message = choice.message
    message.content = reply.content
    reasoning = _join(getattr(message, "reasoning_content", None), reply.reasoning)
    if reasoning:
        message.reasoning_content = reasoning
    message.tool_calls = [
        ChatCompletionMessageToolCall(
            id=call.id, type="function", function=Function(name=call.name, arguments=call.arguments)
        )
        for call in reply.tool_calls
    ] or None
    choice.finish_reason = reply.finish_reason


def reply_chunks(template: ModelResponseStream, reply: Reply) -> Iterator[ModelResponseStream]:
    """The chunks OpenAI would stream for ``reply``: content, then each call's name and
    arguments as tool-call deltas, then the finish reason. ``template`` gives id/model/created."""

    def chunk(delta: Delta, finish_reason: str | None = None) -> ModelResponseStream:
        return ModelResponseStream(
            id=template.id,
            created=template.created,
            model=template.model,
            choices=[StreamingChoices(index=0, delta=delta, finish_reason=finish_reason)],
        )

    if reply.reasoning:
        yield chunk(Delta(role="assistant", reasoning_content=reply.reasoning))
    if reply.content:
        yield chunk(Delta(role="assistant", content=reply.content))
    for position, call in enumerate(reply.tool_calls):
        head = ChatCompletionDeltaToolCall(
            index=position,
            id=call.id,
            type="function",
            function=Function(name=call.name, arguments=""),
        )
        yield chunk(Delta(role="assistant", tool_calls=[head]))
        body = ChatCompletionDeltaToolCall(
            index=position, function=Function(arguments=call.arguments)
        )
        yield chunk(Delta(tool_calls=[body]))
    yield chunk(Delta(), finish_reason=reply.finish_reason)
