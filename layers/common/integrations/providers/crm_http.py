"""One CRM API call with its rate-limit headers read, shared by the CRM adapters.

Both CRMs count requests in a rolling window per account (GHL 100 / 10 s per location, HubSpot
110 / 10 s per account) and say how many are left in headers. Reads that can wait (an import, a
sweep) stop while the window is nearly spent (`reserve`), so live writes (a call to log) always find
room; a 429 becomes `RateLimited` with the provider's wait, or the window's length without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from integrations import http
from integrations.domain.errors import ProviderUnavailable


@dataclass(frozen=True, slots=True)
class LimitHeaders:
    """The provider's names for the window's size, what is left of it and its length."""

    max: str
    remaining: str
    interval_ms: str


def call(
    method: str,
    url: str,
    *,
    token: str,
    limits: LimitHeaders,
    headers: dict[str, str] | None = None,
    json: Any = None,
    params: dict[str, Any] | None = None,
    reserve: float = 0.0,
) -> Any:
    """The JSON answer; RateLimited on a 429 or, for a call that keeps `reserve` (a share of the
    window) for others, when less than that is left after it."""
    try:
        response = http.session().request(
            method,
            url,
            headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            json=json,
            params=params,
        )
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"The provider did not answer ({type(exc).__name__}).") from None
    window = _seconds(response.headers.get(limits.interval_ms))
    if response.status_code == 429:
        wait = http.parse_retry_after(response.headers.get("Retry-After"))
        raise http.RateLimited("The provider is rate limiting requests.", retry_after=wait or window)
    if response.status_code >= 500:
        raise ProviderUnavailable(f"The provider failed with HTTP {response.status_code}.")
    if response.status_code >= 400:
        raise http.refusal(response.status_code, http.get_json(response))
    body = http.get_json(response)
    if reserve > 0 and _nearly_spent(response, limits, reserve):
        # The answer is complete: the caller uses it, checkpoints, and waits before its next read.
        return Paced(body, window or 1.0)
    return body


@dataclass(frozen=True, slots=True)
class Paced:
    """A complete answer from a window that is nearly spent: use it, then wait `seconds`."""

    body: Any
    seconds: float


def _nearly_spent(response: requests.Response, limits: LimitHeaders, reserve: float) -> bool:
    try:
        most = int(response.headers[limits.max])
        left = int(response.headers[limits.remaining])
    except (KeyError, ValueError):
        return False
    return left < most * reserve


def _seconds(value: str | None) -> float | None:
    try:
        return int(value) / 1000 if value else None
    except ValueError:
        return None
