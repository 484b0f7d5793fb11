"""A provider's HTTP request exactly as received: the raw bytes every signature is computed over."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from integrations.webhooks.errors import MalformedPayload


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive HTTP headers; repeated headers are joined with ", " (RFC 9110 §5.3)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        merged: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._items = merged

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # Names only: header values carry signatures and bearer tokens.
        return f"Headers({sorted(self._items)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One inbound push. `url` is the public URL the provider called (never rebuilt from Host)."""

    provider: str
    method: str
    # Kept out of repr: bodies can be large and are not for logs.
    raw_body: bytes = field(repr=False)
    headers: Headers
    query: Mapping[str, str]
    # The request path as the provider called it (API Gateway's rawPath).
    path: str
    # Scheme, host, path and query as configured publicly: HubSpot v3 signs exactly this.
    url: str
    received_at: datetime
    # The raw query string, in the provider's order and encoding, for signatures over the URL.
    raw_query: str = ""

    def header(self, name: str) -> str | None:
        """One header's value, or None when absent."""
        return self.headers.get(name)


def from_http_api_event(
    event: Mapping[str, Any], *, provider: str, public_url: str, received_at: datetime
) -> WebhookRequest:
    """Build the request from an API Gateway HTTP API (payload v2) event.

    `public_url` is this endpoint's public URL without a query (e.g. PUBLIC_API_URL + "/webhooks/<provider>");
    the raw query string is appended unchanged, so URL-signing schemes see what the provider called.
    """
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw_body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedPayload("The request body is not valid base64.") from exc
    else:
        raw_body = body.encode("utf-8")
    raw_query = str(event.get("rawQueryString") or "")
    context = event.get("requestContext") or {}
    method = str((context.get("http") or {}).get("method") or "POST").upper()
    return WebhookRequest(
        provider=provider,
        method=method,
        raw_body=raw_body,
        headers=Headers(event.get("headers") or {}),
        query=parse_query(raw_query),
        path=str(event.get("rawPath") or ""),
        url=f"{public_url}?{raw_query}" if raw_query else public_url,
        received_at=received_at,
        raw_query=raw_query,
    )


def parse_query(raw_query: str) -> dict[str, str]:
    """Decoded query parameters; the first value wins when a name repeats."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params.setdefault(name, value)
    return params
