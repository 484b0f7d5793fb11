"""Stable codes for everything that can end an OAuth round trip, and the errors that carry them."""

from __future__ import annotations

from typing import Any

from integrations.domain.errors import IntegrationError, ProviderUnavailable


class TokenEndpointError(IntegrationError):
    """The token endpoint refused a grant. `error` is the provider's own error name (never a token)."""

    status = 502
    code = "token_endpoint_error"

    # Answers that mean the grant itself is dead: the owner has to connect again.
    DEFINITIVE = frozenset(
        {
            "invalid_grant",
            "invalid_refresh_token",
            "bad_refresh_token",
            "token_revoked",
            "token_expired",
            "account_inactive",
            "invalid_auth",
            "invalid_code",
            "bad_auth_code",
        }
    )

    def __init__(self, error: str, http_status: int, description: str = "") -> None:
        super().__init__(f"The provider refused the token request ({error or 'HTTP ' + str(http_status)}).")
        self.error = error
        self.http_status = http_status
        self.description = description[:200]

    @property
    def definitive(self) -> bool:
        return self.error.lower() in self.DEFINITIVE


class TokenAnswerLost(ProviderUnavailable):
    """The token request was sent but no answer came back: the grant may or may not have rotated."""

    code = "token_answer_lost"


class AppNotConfigured(IntegrationError):
    """No OAuth client credentials exist for this provider app (platform or agency)."""

    status = 503
    code = "app_not_configured"

    def __init__(self, app: str, details: Any = None) -> None:
        super().__init__(f"The OAuth app '{app}' is not configured.", details=details)
