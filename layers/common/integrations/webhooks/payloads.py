"""Helpers every provider's webhook parser shares: JSON bodies, strict ids, stable digests.

A payload is only a hint: the worker re-reads current state from the provider. So a delivery carries
ids and the event type, not the provider's data. Bodies that are not what the provider documents
raise `MalformedPayload` (400); parsers never raise anything else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, StrictStr, ValidationError

from integrations.webhooks.errors import MalformedPayload

_M = TypeVar("_M", bound=BaseModel)


def digest(*parts: object) -> str:
    """A stable id from the parts that identify an event (for providers without a unique event id)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def body_digest(raw_body: bytes) -> str:
    """Hex SHA-256 of the raw body: the id of last resort."""
    return hashlib.sha256(raw_body).hexdigest()


def json_body(raw_body: bytes) -> Any:
    """The body as JSON, or `MalformedPayload`."""
    try:
        return json.loads(raw_body)
    except (ValueError, RecursionError):
        raise MalformedPayload("The body is not JSON.") from None


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
