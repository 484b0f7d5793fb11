"""Single-use OAuth sessions (design §6, reliability.md B1 rows 1-8): the model and its store port.

The random `state` is the session's only handle and is never stored: items are keyed by its
SHA-256. A session is created at start, bound to one browser at authorize (the cookie's hash is
written once), and consumed at the callback exactly once. The DynamoDB adapter is
store.oauth_sessions; expiry is always checked in code (`OAuthSession.expired`), never left to a TTL.
"""

from __future__ import annotations

from typing import Any, Protocol

from integrations.domain.oauth_session import (
    SESSION_LIFETIME,
    BindOutcome,
    OAuthSession,
    UsedSession,
    hash_secret,
)

__all__ = ["SESSION_LIFETIME", "BindOutcome", "OAuthSession", "SessionStore", "UsedSession", "hash_secret"]


class SessionStore(Protocol):
    """Where sessions live between start, authorize and callback (store.oauth_sessions)."""

    def create(self, session: OAuthSession) -> str:
        """Store the session and return its random state (the only copy of it)."""
        ...

    def new_session(self, **fields: Any) -> OAuthSession:
        """An OAuthSession expiring SESSION_LIFETIME from now."""
        ...

    def get(self, state: str) -> OAuthSession | None: ...

    def bind_cookie(self, state: str, cookie_value: str, confirm_token: str | None = None) -> BindOutcome:
        """Bind the session to the browser holding `cookie_value`; only the first browser wins.

        With `confirm_token`, binds only if it is the token last offered for this session, and spends it.
        """
        ...

    def offer_confirmation(self, state: str, confirm_token: str) -> BindOutcome:
        """Remember the hash of the token a confirmation page offers; BOUND means it was stored."""
        ...

    def consume(self, state: str) -> OAuthSession | None:
        """Delete the session and return it; None if it does not exist (never did, or already used)."""
        ...

    def used(self, state: str) -> UsedSession | None:
        """The marker a consumed session left behind, if it is still there."""
        ...
