"""The grammars read by llama.cpp's own GBNF parser and grammar sampler (what llama-cpp-python
runs), on the embedded model's vocabulary only (no weights, no generation): the answer tables
of test_grammar.py get the same verdicts token by token, and the grammar of every BFCL
function-doc set parses. Needs llama-cpp-python and the model file: ``make test-real``."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator
from typing import Any

import pytest

from bench import bfcl_roundtrip as bfcl
from litellm_toolcode.grammar import tool_grammar
from litellm_toolcode.schema import build_toolset
from scripts import serve
from tests.test_grammar import AUTO_CASES, TOOLS, VALUE_CASES

pytestmark = [pytest.mark.real_model, pytest.mark.timeout(900)]


class Vocab:
    """The model's vocabulary loaded by llama.cpp, and its grammar sampler over it."""

    def __init__(self) -> None:
        import llama_cpp

        self.lib: Any = llama_cpp
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(str(serve.prepare()).encode(), params)
        assert self.model, "llama.cpp could not load the model's vocabulary"
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.ends = [llama_cpp.llama_vocab_eos(self.vocab), llama_cpp.llama_vocab_eot(self.vocab)]

    def close(self) -> None:
        self.lib.llama_model_free(self.model)

    def parses(self, grammar: str) -> bool:
        sampler = self.lib.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        if sampler:
            self.lib.llama_sampler_free(sampler)
        return bool(sampler)

    def tokens(self, text: str) -> list[int]:
        raw = text.encode()
        buffer = (self.lib.llama_token * (len(raw) + 8))()
        n = self.lib.llama_tokenize(self.vocab, raw, len(raw), buffer, len(buffer), False, False)
        return list(buffer[:n])

    def _allowed(self, sampler: Any, token: int) -> bool:
        data = (self.lib.llama_token_data * 1)()
        data[0].id, data[0].logit, data[0].p = token, 0.0, 0.0
        array = self.lib.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
        self.lib.llama_sampler_apply(sampler, ctypes.byref(array))
        return not math.isinf(data[0].logit)

    def accepts(self, grammar: str, text: str) -> bool:
        """Each of the text's tokens allowed in turn, then an end-of-generation token."""
        sampler = self.lib.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        assert sampler, "llama.cpp did not parse the grammar"
        try:
            for token in self.tokens(text):
                if not self._allowed(sampler, token):
                    return False
                self.lib.llama_sampler_accept(sampler, token)
            return any(self._allowed(sampler, end) for end in self.ends if end >= 0)
        finally:
            self.lib.llama_sampler_free(sampler)


@pytest.fixture(scope="module")
def vocab() -> Iterator[Vocab]:
    loaded = Vocab()
    yield loaded
    loaded.close()


@pytest.mark.parametrize(("answer", "accepted"), AUTO_CASES + VALUE_CASES)
def test_llama_cpp_gives_the_same_verdicts(vocab: Vocab, answer: str, accepted: bool) -> None:
    grammar = tool_grammar(build_toolset(TOOLS), "auto", None, True)
    assert vocab.accepts(grammar, answer) is accepted


def test_every_bfcl_function_doc_set_parses_in_llama_cpp(vocab: Vocab) -> None:
    failed, count = [], 0
    for _, case_id, functions in bfcl.function_docs():
        toolset = build_toolset([{"type": "function", "function": f} for f in functions])
        for mode in ("auto", "required"):
            count += 1
            if not vocab.parses(tool_grammar(toolset, mode, None, True)):
                failed.append(f"{case_id} ({mode})")
    assert count > 7000
    assert not failed, failed[:20]
