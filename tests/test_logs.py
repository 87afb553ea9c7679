"""logs.py: named loggers, redaction of values and secrets, the opt-in payload switch."""

from __future__ import annotations

import logging

import pytest

from litellm_toolcode import logs


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key sk-toolcode-test-master in a sentence", "sk-toolcode-test-master"),
        ("Authorization: Bearer abc.def-123456", "abc.def-123456"),
        ('{"api_key": "hunter2-long-secret"}', "hunter2-long-secret"),
        ("api_key=s3cr3tvalue other=1", "s3cr3tvalue"),
        ("x-api-key: zzzzzzzz", "zzzzzzzz"),
        ("password='correct horse'", "correct"),
    ],
)
def test_scrub_removes_keys_and_tokens(text: str, secret: str) -> None:
    cleaned = logs.scrub(text)
    assert secret not in cleaned
    assert "<redacted>" in cleaned


def test_scrub_leaves_ordinary_text_alone() -> None:
    text = "alias coder: tool_calls, 1 call(s) get_weather(location=<str>), task-force skills"
    assert logs.scrub(text) == text


def test_values_are_described_never_shown() -> None:
    calls = [("get_weather", '{"location": "Zanzibar", "days": 3, "tags": ["a"], "x": null}')]
    shape = logs.shape_of_calls(calls)
    assert shape == "get_weather(location=<str>, days=<int>, tags=<list[1]>, x=<NoneType>)"
    assert logs.shape_of_calls([("f", "not json")]) == "f(<unreadable>)"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_secret_filter_scrubs_formatted_records() -> None:
    # A handler of its own: a library imported by an earlier test may have copied pytest's
    # capture handler onto our loggers, which would count each record twice.
    logs.configure()
    logger = logs.get("request")
    collect = _Collect()
    logger.addHandler(collect)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("refused with key %s and %s", "sk-abcdefghijkl", "Bearer tok-123456")
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    (record,) = collect.records
    assert "sk-abcdefghijkl" not in record.getMessage()
    assert "tok-123456" not in record.getMessage()


def test_stage_loggers_are_children_and_unknown_stages_fail() -> None:
    assert logs.get().name == "litellm_toolcode"
    assert logs.get("payload").parent is logs.get()
    with pytest.raises(ValueError, match="unknown log stage"):
        logs.get("nope")


def test_payloads_need_the_opt_in_and_debug_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOLCODE_LOG_PAYLOADS", raising=False)
    payload = logs.get("payload")
    saved = payload.level
    try:
        payload.setLevel(logging.DEBUG)
        assert not logs.payloads_enabled(False)
        assert logs.payloads_enabled(True)
        monkeypatch.setenv("TOOLCODE_LOG_PAYLOADS", "1")
        assert logs.payloads_enabled(False)
        payload.setLevel(logging.INFO)
        assert not logs.payloads_enabled(True)  # opted in, but the level hides DEBUG
    finally:
        payload.setLevel(saved)
