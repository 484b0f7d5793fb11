"""The log formatter scrubs secrets by key and by shape before anything is written."""

from __future__ import annotations

import json

import pytest

from integrations.observability import REDACTED, get_logger, scrub


def test_secret_keys_are_redacted_at_any_depth() -> None:
    record = {"message": "x", "extra": {"refresh_token": "r-1", "nested": [{"Authorization": "Bearer abc"}]}}

    clean = scrub(record)

    assert clean["extra"]["refresh_token"] == REDACTED
    assert clean["extra"]["nested"][0]["Authorization"] == REDACTED


@pytest.mark.parametrize(
    "text",
    [
        "calling with Bearer ya29.a0AfH6SMBx",
        "body=grant_type=refresh_token&refresh_token=1//0gSecret&client_secret=shh",
        "callback?code=4/0Adeu5&state=abc123",
        "slack token xoxb-1234-5678-abcdef",
    ],
)
def test_token_shaped_text_is_redacted(text: str) -> None:
    clean = scrub(text)

    for secret in ("ya29.a0AfH6SMBx", "1//0gSecret", "shh", "4/0Adeu5", "abc123", "xoxb-1234-5678-abcdef"):
        assert secret not in clean


def test_logger_output_never_shows_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    logger = get_logger("redaction-test")

    logger.info("refreshing", extra={"access_token": "at-SECRET-1", "url": "https://x/?code=CODE-SECRET-2"})
    try:
        raise ValueError("token endpoint said refresh_token=RT-SECRET-3 is bad")
    except ValueError:
        logger.exception("failed")

    out = capsys.readouterr().out
    assert "at-SECRET-1" not in out and "CODE-SECRET-2" not in out and "RT-SECRET-3" not in out
    assert [json.loads(line)["message"] for line in out.splitlines()] == ["refreshing", "failed"]


def test_a_record_with_a_lone_surrogate_is_written_not_lost(capsys: pytest.CaptureFixture[str]) -> None:
    logger = get_logger("surrogate-test")

    # The message stays ASCII: pytest's own log capture (and xdist's report) cannot carry a surrogate.
    logger.info("webhook for an unknown account", extra={"value": "id-\udfff", "\ud83d": "key"})
    logger.info("after")

    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["message"] for line in lines] == ["webhook for an unknown account", "after"]
    assert lines[0]["value"] == "id-\udfff"
    assert lines[0]["\ud83d"] == "key"
    assert "Logging error" not in captured.err


def test_valid_non_ascii_text_is_logged_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    get_logger("unicode-test").info("Zoë 😀 日本")

    out = capsys.readouterr().out
    assert "Zoë 😀 日本" in out
