"""Stable codes for everything that can end a connect round trip, and the error that carries them."""

from __future__ import annotations

from enum import StrEnum

from integrations.domain.errors import IntegrationError


class FlowErrorCode(StrEnum):
    """`code` on `return_to?integration=<id>&result=error&code=<code>`: the portal explains each one."""

    ACCESS_DENIED = "access_denied"
    SESSION_EXPIRED = "session_expired"
    SESSION_USED = "session_used"
    SESSION_UNKNOWN = "session_unknown"
    COOKIE_MISMATCH = "cookie_mismatch"
    PROVIDER_MISMATCH = "provider_mismatch"
    PROVIDER_ERROR = "provider_error"
    EXCHANGE_FAILED = "exchange_failed"
    MISSING_SCOPES = "missing_scopes"
    IDENTITY_FAILED = "identity_failed"
    ALREADY_CONNECTED = "already_connected"
    CONFLICT = "conflicts_with"
    NOT_ALLOWED = "not_allowed"
    INTERNAL_ERROR = "internal_error"


class FlowError(IntegrationError):
    """A browser-route failure: redirected to return_to with `code` (and `missing` for scopes)."""

    status = 400

    def __init__(self, code: FlowErrorCode, message: str, *, missing: list[str] | None = None) -> None:
        super().__init__(message, code=code.value)
        self.flow_code = code
        self.missing = missing or []
