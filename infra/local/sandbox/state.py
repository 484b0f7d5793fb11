"""Everything a sandbox remembers: codes, grants, tokens, faults, the request log. One lock guards it all."""

from __future__ import annotations

import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from infra.local.sandbox.dialects import DIALECTS, RefreshPolicy


@dataclass(slots=True)
class AuthCode:
    """A single-use authorization code and everything it is bound to."""

    code: str
    app: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    account: str
    expires_at: float
    code_challenge: str | None
    offline: bool
    force_consent: bool
    include_granted: bool
    nonce: str | None
    used: bool = False
    # Set at the first exchange, so a replayed code can revoke what it produced (RFC 6749 §4.1.2).
    grant_id: str | None = None


@dataclass(slots=True)
class Grant:
    """What one consent produced: the family of tokens that dies together when revoked."""

    id: str
    app: str
    client_id: str
    account: str
    scopes: tuple[str, ...]
    created_at: float
    nonce: str | None = None
    revoked: bool = False
    # Provider-specific facts fixed at consent (GHL user_type).
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class AccessToken:
    token: str
    grant_id: str
    expires_at: float | None


@dataclass(slots=True)
class RefreshToken:
    token: str
    grant_id: str
    # Rotating providers: a refresh token that was used once is dead.
    spent: bool = False


class TokenProblem(StrEnum):
    """Why an API call's access token was refused; each provider words these differently."""

    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    LATENCY = "latency"
    # The call is processed at once (a grant used, a refresh token rotated), its answer sent late.
    SLOW_ANSWER = "slow_answer"
    REVOKE_GRANTS = "revoke_grants"


@dataclass(slots=True)
class Fault:
    """An injected failure for the next `remaining` matching calls to one app."""

    app: str
    kind: FaultKind
    remaining: int
    retry_after: int = 1
    latency_ms: int = 0
    status: int = 503
    # Which calls it hits: "any", "token" (token/revoke endpoints) or "api".
    endpoint: str = "any"
    # Only calls whose path starts with this (e.g. "/google/calendar/v3/"); "" = every path.
    path: str = ""
    # Each matching call is hit with this chance (a 20% fault run); `remaining` counts hits only.
    probability: float = 1.0

    def hits(self, app: str, endpoint: str, path: str) -> bool:
        """Whether this call draws the fault (consumes nothing)."""
        if self.app != app or self.endpoint not in ("any", endpoint) or self.remaining <= 0:
            return False
        if not path.startswith(self.path):
            return False
        return self.probability >= 1.0 or secrets.randbelow(1_000_000) < self.probability * 1_000_000

    def public(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "kind": self.kind.value,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "endpoint": self.endpoint,
            "path": self.path,
            "probability": self.probability,
        }


def new_token(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


# Token shapes close to each provider's, so logs and fixtures look familiar; all are opaque.
_ACCESS_PREFIX = {
    "google": "ya29.sbx",
    "ghl": "ghl-sbx.",
    "hubspot": "CJ-sbx",
    "calendly": "eyJ-sbx.",
    "slack": "xoxb-sbx-",
    "microsoft": "EwB-sbx",
}
_REFRESH_PREFIX = {
    "google": "1//0sbx",
    "ghl": "ghl-rt-sbx.",
    "hubspot": "na1-sbx-",
    "calendly": "rt-sbx.",
    "slack": "xoxe-1-sbx-",
    "microsoft": "M.C5-sbx",
}


@dataclass
class OAuthStore:
    """Codes, grants and tokens of every app. Callers hold `SandboxState.lock`."""

    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)

    def new_code(self, **kwargs: Any) -> AuthCode:
        code = AuthCode(code=new_token("sbx-code-", 24), **kwargs)
        self.codes[code.code] = code
        return code

    def new_grant(
        self, app: str, client_id: str, account: str, scopes: tuple[str, ...], now: float, nonce: str | None
    ) -> Grant:
        grant = Grant(
            id=new_token("g-", 12),
            app=app,
            client_id=client_id,
            account=account,
            scopes=scopes,
            created_at=now,
            nonce=nonce,
        )
        self.grants[grant.id] = grant
        return grant

    def issue_access(self, grant: Grant, ttl: int | None, now: float) -> AccessToken:
        token = AccessToken(
            token=new_token(_ACCESS_PREFIX[grant.app]),
            grant_id=grant.id,
            expires_at=None if ttl is None else now + ttl,
        )
        self.access[token.token] = token
        return token

    def issue_refresh(self, grant: Grant) -> RefreshToken:
        token = RefreshToken(token=new_token(_REFRESH_PREFIX[grant.app]), grant_id=grant.id)
        self.refresh[token.token] = token
        return token

    def live_refresh_tokens(self, client_id: str, account: str) -> list[RefreshToken]:
        return [
            r
            for r in self.refresh.values()
            if not r.spent
            and (g := self.grants.get(r.grant_id)) is not None
            and not g.revoked
            and g.client_id == client_id
            and g.account == account
        ]

    def live_grants(self, app: str, client_id: str, account: str) -> list[Grant]:
        return [
            g
            for g in self.grants.values()
            if g.app == app and g.client_id == client_id and g.account == account and not g.revoked
        ]

    def revoke_grant(self, grant_id: str) -> None:
        grant = self.grants.get(grant_id)
        if grant is not None:
            grant.revoked = True

    def revoke_app(self, app: str) -> int:
        """Revoke every grant of `app` (the user removed the app, or a `revoke_grants` fault)."""
        count = 0
        for grant in self.grants.values():
            if grant.app == app and not grant.revoked:
                grant.revoked = True
                count += 1
        return count

    def check_access(
        self, app: str, token: str | None, now: float
    ) -> tuple[AccessToken, Grant] | TokenProblem:
        """The token and its grant, or why it is refused."""
        if not token:
            return TokenProblem.MISSING
        access = self.access.get(token)
        grant = self.grants.get(access.grant_id) if access else None
        if access is None or grant is None or grant.app != app:
            return TokenProblem.INVALID
        if grant.revoked:
            return TokenProblem.REVOKED
        parent = self.grants.get(grant.extra.get("company_grant", ""))
        if parent is not None and parent.revoked:
            # A location token minted from a company token dies with the company's grant (GHL).
            return TokenProblem.REVOKED
        if access.expires_at is not None and now >= access.expires_at:
            return TokenProblem.EXPIRED
        return access, grant


def refresh_policy(app: str) -> RefreshPolicy:
    return DIALECTS[app].refresh


@dataclass
class LoggedRequest:
    seq: int
    at: float
    app: str | None
    kind: str
    method: str
    route: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    auth: str | None
    status: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "app": self.app,
            "kind": self.kind,
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "query": self.query,
            "form": self.form,
            "grant_type": self.form.get("grant_type"),
            "auth": self.auth,
            "status": self.status,
        }


class SandboxState:
    """All mutable state. Handlers run on server threads: take `lock` around every read-modify-write."""

    def __init__(self, max_log_entries: int) -> None:
        self.lock = threading.RLock()
        self.oauth = OAuthStore()
        self.faults: list[Fault] = []
        self.log: deque[LoggedRequest] = deque(maxlen=max_log_entries)
        self.log_seq = 0
        # Seconds added to the configured clock (`POST /_sandbox/clock`).
        self.time_offset = 0.0
        # Per-provider feature state lives in the modules that own it, keyed by name.
        self.extensions: dict[str, Any] = {}

    def reset(self) -> None:
        with self.lock:
            self.oauth = OAuthStore()
            self.faults.clear()
            self.log.clear()
            self.time_offset = 0.0
            self.extensions.clear()

    def take_fault(self, app: str, endpoint: str, path: str = "") -> Fault | None:
        """Consume one use of the first fault that matches this call, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.hits(app, endpoint, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None
