"""An OAuth session's values: who asked to connect what, bound to one browser, used once. No I/O."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from integrations.domain.access import Level, Role

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
    # Who started it, as the confirmation page names them (an email or name claim; else the sub).
    requested_by_label: str = ""
    # Hash of the confirm token last offered by the confirmation page (None once bound).
    confirm_hash: str | None = None
    # The verified role of whoever connects their own account (user level): the callback has no
    # JWT, so the connection learns its owner's role from here.
    owner_role: Role | None = None

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
    # The confirm token is not the one last offered for this session (or another browser's).
    CONFIRM_MISMATCH = "confirm_mismatch"


@dataclass(frozen=True, slots=True)
class UsedSession:
    """What is left of a consumed session: enough to send a replayed callback back to the portal."""

    provider: str
    return_to: str
