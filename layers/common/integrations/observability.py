"""Logging that cannot leak secrets: a Powertools formatter that scrubs known secret keys and values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

if TYPE_CHECKING:
    from aws_lambda_powertools.logging.types import PowertoolsLogRecord

# Keys whose values are secrets wherever they appear in a log record (compared case-insensitively).
SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "code",
        "code_verifier",
        "state",
        "session",
        "client_secret",
        "app_password",
        "password",
        "authorization",
        "cookie",
        "set-cookie",
        "signing_secret",
        "signing_key",
        "secret",
        "credentials",
    }
)
# Values that look like bearer tokens or provider token formats, wherever they appear in text.
_SECRET_PATTERNS = re.compile(
    r"(?i)(bearer\s+[A-Za-z0-9._~+/=-]+|xox[abpe]-[A-Za-z0-9-]+|ya29\.[A-Za-z0-9._-]+"
    r"|(?:access_token|refresh_token|code|state|client_secret|code_verifier|session)=[^&\s\"']+)"
)
REDACTED = "***"
# A lone surrogate (from a `\ud800` escape in a request's JSON) cannot be encoded as UTF-8: the
# handler's write would fail and the record be lost. The formatter writes it back as its JSON escape.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(value: Any) -> Any:
    """Return a copy of `value` with secret keys and token-looking text replaced."""
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in SECRET_KEYS else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _SECRET_PATTERNS.sub(_redact_match, value)
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else (an exception object in a stack trace, a model) is logged as text: scrub that text.
    return scrub(str(value))


def _redact_match(match: re.Match[str]) -> str:
    text = match.group(0)
    if "=" in text and not text.lower().startswith("bearer"):
        return text.split("=", 1)[0] + "=" + REDACTED
    return REDACTED


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Scrubs every record before it is serialized, including exceptions' text."""

    def serialize(self, log: dict[str, Any] | PowertoolsLogRecord) -> str:
        return _escape_lone_surrogates(super().serialize(scrub(log)))


def _escape_lone_surrogates(text: str) -> str:
    # Surrogates only occur inside the JSON's strings, where `\udXXX` is a valid escape of the same value.
    return _LONE_SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def get_logger(service: str | None = None) -> Logger:
    """The one way functions and modules get a logger."""
    return Logger(service=service, logger_formatter=RedactingFormatter(), log_uncaught_exceptions=True)
