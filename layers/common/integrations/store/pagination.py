"""Opaque pagination tokens bound to the tenant that received them."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from integrations.domain.errors import BadRequest


def encode_cursor(last_key: Mapping[str, Any] | None, partition_attr: str) -> str | None:
    if not last_key:
        return None
    raw = json.dumps({"k": last_key, "p": partition_attr}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, *, partition_attr: str, expected_partition: str
) -> dict[str, Any] | None:
    """Decode a cursor; one minted for another tenant (or tampered with) is a 400, never a replay."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        partition = key[partition_attr]["S"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest("The cursor is not valid.", code="invalid_cursor") from None
    if data.get("p") != partition_attr or partition != expected_partition:
        raise BadRequest("The cursor is not valid.", code="invalid_cursor")
    if not all(isinstance(v, dict) and len(v) == 1 for v in key.values()):
        raise BadRequest("The cursor is not valid.", code="invalid_cursor")
    return dict(key)
