"""A real GBNF parser and matcher for the tests: llguidance reads the grammar (its GBNF front
end, what llama.cpp's grammars README describes) and says whether an answer's bytes are
accepted, with a byte-level vocabulary (one token per byte) instead of a model's."""

from __future__ import annotations

from functools import cache

import llguidance
from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper

__all__ = ["accepts", "compiled", "problems"]


class _Bytes:
    """A tokenizer whose tokens are the 256 bytes, plus an end-of-sequence token."""

    def __init__(self) -> None:
        self.eos_token_id = 256
        self.bos_token_id = None
        self.tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
        self.special_token_ids = [256]

    def __call__(self, text: bytes) -> list[int]:
        return list(text)


@cache
def _tokenizer() -> LLTokenizer:
    return LLTokenizer(TokenizerWrapper(_Bytes()), slices=[])


@cache
def compiled(grammar: str) -> str:
    """The grammar in llguidance's form; ValueError when the GBNF does not parse."""
    return llguidance.grammar_from("gbnf", grammar)


def problems(grammar: str) -> str:
    """Empty when the grammar parses and is well-formed, else the parser's message."""
    try:
        return LLMatcher.validate_grammar(compiled(grammar), _tokenizer())
    except ValueError as exc:
        return str(exc)


def accepts(grammar: str, text: str) -> bool:
    """Whether the whole ``text`` is a complete answer the grammar allows."""
    matcher = LLMatcher(_tokenizer(), compiled(grammar), log_level=0)
    assert not matcher.is_error(), matcher.get_error()
    consumed = matcher.consume_tokens(list(text.encode()))
    return consumed and not matcher.is_error() and matcher.is_accepting()
