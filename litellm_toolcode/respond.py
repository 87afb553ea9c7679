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

from .answer import Reply, ToolCall
from .stream import StreamEvent

__all__ = ["StreamWriter", "apply_reply"]


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


class StreamWriter:
    """Builds the chunks of one streamed reply; ``template`` (the upstream's first chunk) gives
    their id, model and created. The first chunk sent carries ``role: "assistant"``."""

    def __init__(self, template: ModelResponseStream) -> None:
        self._template = template
        self._role_sent = False
        self._upstream_reasoning = False
        self._think_reasoning = False

    def chunk(self, delta: Delta, finish_reason: str | None = None) -> ModelResponseStream:
        if not self._role_sent:
            delta.role = "assistant"
            self._role_sent = True
        return ModelResponseStream(
            id=self._template.id,
            created=self._template.created,
            model=self._template.model,
            choices=[StreamingChoices(index=0, delta=delta, finish_reason=finish_reason)],
        )

    def opening(self) -> ModelResponseStream | None:
        """A chunk with the role alone, unless a chunk went out already. LiteLLM's proxy starts
        the HTTP response with the first chunk the hook yields: sent as the upstream's first
        chunk arrives, the response starts while the model still writes, as without the plugin,
        not with the first prose (or at the end, for held code). No content, not even "": the
        SDK would join it into the final message, whose content may be None."""
        return None if self._role_sent else self.chunk(Delta())

    def upstream_reasoning(self, text: str) -> ModelResponseStream:
        """The upstream's own ``reasoning_content`` delta, passed through."""
        self._upstream_reasoning = True
        return self.chunk(Delta(reasoning_content=text))

    def text(self, event: StreamEvent) -> ModelResponseStream:
        """A content delta, or reasoning from ``<think>``: that follows the upstream's own
        reasoning after a line break, as ``apply_reply`` joins them without streaming."""
        if event.kind == "content":
            return self.chunk(Delta(content=event.text))
        text = event.text
        if self._upstream_reasoning and not self._think_reasoning:
            text = "\n" + text
        self._think_reasoning = True
        return self.chunk(Delta(reasoning_content=text))

    def call(self, position: int, call: ToolCall) -> list[ModelResponseStream]:
        """One call as OpenAI streams it: index, id, type and name, then the arguments."""
        head = ChatCompletionDeltaToolCall(
            index=position,
            id=call.id,
            type="function",
            function=Function(name=call.name, arguments=""),
        )
        body = ChatCompletionDeltaToolCall(
            index=position, function=Function(arguments=call.arguments)
        )
        return [self.chunk(Delta(tool_calls=[head])), self.chunk(Delta(tool_calls=[body]))]

    def calls(self, reply: Reply, sent: tuple[ToolCall, ...] = ()) -> Iterator[ModelResponseStream]:
        """The reply's calls after the ``sent`` ones (early.py checked they begin it), then the
        finish reason. All of it is built before the first chunk is sent: never half a call."""
        chunks = []
        for position in range(len(sent), len(reply.tool_calls)):
            chunks += self.call(position, reply.tool_calls[position])
        chunks.append(self.chunk(Delta(), finish_reason=reply.finish_reason))
        return iter(chunks)
