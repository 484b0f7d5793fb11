"""Helpers every provider's webhook parser shares: JSON bodies, strict ids, stable digests.

A payload is only a hint: the worker re-reads current state from the provider. So a delivery carries
ids and the event type, not the provider's data. Bodies that are not what the provider documents
raise `MalformedPayload` (400); parsers never raise anything else.

A lone surrogate escape (`"\\ud800"`) is valid JSON but not text: it cannot be encoded as UTF-8 for
the queue, the bus or the logs. JavaScript senders produce it from a string cut inside an emoji
(`JSON.stringify` escapes the half it keeps), so a genuine, signed push can hold one; `json_body`
replaces it with U+FFFD rather than refusing an event the provider will not send again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, StrictStr, ValidationError

from integrations.webhooks.errors import MalformedPayload

_M = TypeVar("_M", bound=BaseModel)

# `\uD800`-`\uDFFF` escapes in the raw body: only then can the parsed JSON hold a surrogate (raw
# UTF-8 bytes of one do not decode). json.loads joins valid pairs, so any surrogate left is lone.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def digest(*parts: object) -> str:
    """A stable id from the parts that identify an event (for providers without a unique event id)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def body_digest(raw_body: bytes) -> str:
    """Hex SHA-256 of the raw body: the id of last resort."""
    return hashlib.sha256(raw_body).hexdigest()


def json_body(raw_body: bytes) -> Any:
    """The body as JSON, or `MalformedPayload`."""
    try:
        parsed = json.loads(raw_body)
        return without_lone_surrogates(parsed) if _SURROGATE_ESCAPE.search(raw_body) else parsed
    except (ValueError, RecursionError):
        raise MalformedPayload("The body is not JSON.") from None


def without_lone_surrogates(value: Any) -> Any:
    """`value` (parsed JSON) with every lone surrogate, in keys and strings, replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    return value


def model(model_type: type[_M], data: Any) -> _M:
    """`data` validated as `model_type`, or `MalformedPayload` with a fixed sentence."""
    try:
        return model_type.model_validate(data)
    except (ValidationError, ValueError, RecursionError):
        # The pydantic message echoes input; the provider gets a fixed sentence instead.
        raise MalformedPayload(f"The body is not a valid {model_type.__name__}.") from None


def _as_str(value: Any) -> Any:
    # Providers send numeric ids as numbers or strings; keep them as exact strings (never via float).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# A provider id: a non-empty string, numbers accepted and kept exact.
Id = Annotated[StrictStr, BeforeValidator(_as_str), Field(min_length=1, max_length=512)]


class Payload(BaseModel):
    """Base of provider payload models: unknown fields ignored, immutable."""

    # defer_build: a receiver invocation parses one provider's bodies; build only that provider's models.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


def compact(values: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """The hint without its empty entries."""
    return {k: v for k, v in values.items() if v is not None}


def str_or_none(value: Any) -> str | None:
    """`value` when it is a string, else None."""
    return value if isinstance(value, str) else None
