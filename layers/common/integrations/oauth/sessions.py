"""Single-use OAuth sessions (design §6, reliability.md B1 rows 1-8): the model and its store port.

The random `state` is the session's only handle and is never stored: items are keyed by its
SHA-256. A session is created at start, bound to one browser at authorize (the cookie's hash is
written once), and consumed at the callback exactly once. The DynamoDB adapter is
store.oauth_sessions; expiry is always checked in code (`OAuthSession.expired`), never left to a TTL.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from integrations.domain.access import Level

SESSION_LIFETIME = timedelta(minutes=10)


def hash_secret(value: str) -> str:
    """The at-rest form of a state or cookie value."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OAuthSession:
    """Who asked to connect what, and where the browser goes back to."""

    provider: str
    level: Level
    agency_id: str
    client_id: str | None
    user_id: str | None
    requested_by: str
    return_to: str
    expires_at: datetime
    verifier: str | None = None
    # client_id of the OAuth app the authorize request used: the exchange must use the same app.
    app_client_id: str = ""
    cookie_hash: str | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def cookie_matches(self, cookie_value: str | None) -> bool:
        if not cookie_value or not self.cookie_hash:
            return False
        return hmac.compare_digest(hash_secret(cookie_value), self.cookie_hash)


class BindOutcome(StrEnum):
    BOUND = "bound"
    UNKNOWN = "unknown"
    ALREADY_BOUND = "already_bound"


@dataclass(frozen=True, slots=True)
class UsedSession:
    """What is left of a consumed session: enough to send a replayed callback back to the portal."""

    provider: str
    return_to: str


class SessionStore(Protocol):
    """Where sessions live between start, authorize and callback (store.oauth_sessions)."""

    def create(self, session: OAuthSession) -> str:
        """Store the session and return its random state (the only copy of it)."""
        ...

    def new_session(self, **fields: Any) -> OAuthSession:
        """An OAuthSession expiring SESSION_LIFETIME from now."""
        ...

    def get(self, state: str) -> OAuthSession | None: ...

    def bind_cookie(self, state: str, cookie_value: str) -> BindOutcome:
        """Bind the session to the browser holding `cookie_value`; only the first browser wins."""
        ...

    def consume(self, state: str) -> OAuthSession | None:
        """Delete the session and return it; None if it does not exist (never did, or already used)."""
        ...

    def used(self, state: str) -> UsedSession | None:
        """The marker a consumed session left behind, if it is still there."""
        ...
