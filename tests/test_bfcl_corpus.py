"""The BFCL v4 corpus: every function doc becomes code, every expected answer comes back exact.

- Every function doc of every category (and the multi-turn function docs) converts, compiles
  and keeps its client names.
- Every AST case's expected answer, rendered as Python in a rotating style, read back by the
  plugin's own pipeline (``answer.interpret``) gives exactly the expected calls; the cases in
  ``bench/bfcl_outside_schema.json`` (the BFCL answer does not fit its own schema) are refused
  with a model error instead.
- A fixed sample goes through the real proxy (non-streaming and streaming alternate); the full
  proxy run is ``pytest -m slow tests/test_bfcl_corpus.py`` or ``bench/bfcl_roundtrip.py``.
"""

from __future__ import annotations

import collections
import json
from typing import Any

import openai
import pytest

from bench import bfcl_roundtrip as bfcl
from litellm_toolcode.answer import interpret
from litellm_toolcode.errors import ModelOutputError
from litellm_toolcode.schema_code import build_toolset
from tests.fake_upstream import FakeUpstream

SAMPLE_PER_CATEGORY = 12


def _docs_by_category() -> dict[str, list[tuple[str, list[Any]]]]:
    out: dict[str, list[tuple[str, list[Any]]]] = collections.defaultdict(list)
    for category, case_id, functions in bfcl.function_docs():
        out[category].append((case_id, functions))
    return out


try:
    DOCS = _docs_by_category()
except RuntimeError as error:  # bfcl-eval missing: fail loudly, never skip
    pytest.fail(str(error), pytrace=False)

# The AST categories the round trip reads answers from, and those with function docs only.
EXPECTED_DOC_CATEGORIES = {
    *bfcl.AST_CATEGORIES,
    "irrelevance",
    "live_irrelevance",
    "live_relevance",
    "multi_turn_func_doc",
}


def test_corpus_is_there() -> None:
    assert set(DOCS) == EXPECTED_DOC_CATEGORIES
    assert sum(len(v) for v in DOCS.values()) > 3600
    assert set(bfcl.OUTSIDE_SCHEMA) and all(
        entry["reason"] != "unclassified" for entry in bfcl.OUTSIDE_SCHEMA.values()
    )


@pytest.mark.parametrize("category", sorted(EXPECTED_DOC_CATEGORIES))
def test_every_function_doc_converts_and_compiles(category: str) -> None:
    for case_id, functions in DOCS[category]:
        tools = [{"type": "function", "function": f} for f in functions]
        toolset = build_toolset(tools)  # execs the generated module: it compiles and runs
        assert [t.name for t in toolset.tools] == [f["name"] for f in functions], case_id
        for spec, function in zip(toolset.tools, functions, strict=True):
            assert spec.py_name.isidentifier() and spec.py_name.isascii()
            properties = (function.get("parameters") or {}).get("properties") or {}
            assert set(toolset.argument_names(spec.py_name)) == set(properties), case_id


def _local(
    case: bfcl.BfclCase, index: int, client_names: bool = False
) -> tuple[bool, str | None, str]:
    """(passed, model error, style): the answer read back by the plugin's pipeline."""
    toolset = build_toolset(case.tools)
    style, text = bfcl.render_answer(toolset, case, index, client_names)
    try:
        reply = interpret(text, toolset)
    except ModelOutputError as error:
        return False, error.message, style
    got = [(c.name, json.loads(c.arguments)) for c in reply.tool_calls]
    return bfcl.canonical(got) == bfcl.canonical(case.expected), None, style


@pytest.mark.parametrize("client_names", [False, True], ids=["stub-names", "client-names"])
@pytest.mark.parametrize("category", bfcl.AST_CATEGORIES)
def test_every_expected_answer_reads_back(category: str, client_names: bool) -> None:
    """The whole category through extract -> check -> validate, every rendering style; with
    the stubs' names and with the client's own (``sum(...)``, ``math.factorial(...)``, ...)."""
    cases = bfcl.load_cases(category)
    wrong = []
    for index, case in enumerate(cases):
        passed, error, style = _local(case, index, client_names)
        listed = case.id in bfcl.OUTSIDE_SCHEMA
        if (passed, error is not None) != (not listed, listed):
            wrong.append(f"{case.id} [{style}] listed={listed}: {error or 'calls differ'}")
    assert not wrong, "\n".join(wrong[:20])


def _sample(category: str) -> list[bfcl.BfclCase]:
    cases = bfcl.load_cases(category)
    chosen = bfcl.sample(cases, SAMPLE_PER_CATEGORY)
    listed = [c for c in cases if c.id in bfcl.OUTSIDE_SCHEMA and c not in chosen]
    return chosen + listed[:2]  # the refusal path goes through the proxy too


def _through_proxy(
    client: openai.OpenAI, upstream: FakeUpstream, cases: list[bfcl.BfclCase]
) -> list[str]:
    outcomes = [bfcl.run_case(client, upstream, case, i) for i, case in enumerate(cases)]
    assert {o.stream for o in outcomes} == {False, True} or len(outcomes) < 2
    return [
        f"{o.case.id} [{o.style}, stream={o.stream}]: {o.detail}"
        for o in outcomes
        if not o.as_expected
    ]


@pytest.mark.parametrize("category", bfcl.AST_CATEGORIES)
def test_round_trip_sample_through_proxy(
    category: str, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    wrong = _through_proxy(client, upstream, _sample(category))
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
@pytest.mark.parametrize("category", bfcl.AST_CATEGORIES)
def test_round_trip_full_through_proxy(
    category: str, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    wrong = _through_proxy(client, upstream, bfcl.load_cases(category))
    assert not wrong, "\n".join(wrong[:20])
