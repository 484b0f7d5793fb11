"""What a connection authenticates with, and the OAuth app it authenticates through. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Credentials(BaseModel):
    """What a connection authenticates with. SecretStr keeps values out of repr, logs and errors."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    token_type: str = "Bearer"  # noqa: S105 - a token type name, not a secret
    expires_at: datetime | None = None
    # Provider-specific secrets (iCloud app password, Calendly signing key…), all secret.
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # Non-secret facts about the grant (token endpoint extras, Slack bot user id…).
    extra: dict[str, Any] = Field(default_factory=dict)

    def reveal(self) -> dict[str, Any]:
        """The plain JSON form, for encryption only."""
        return {
            "access_token": self.access_token.get_secret_value() if self.access_token else None,
            "refresh_token": self.refresh_token.get_secret_value() if self.refresh_token else None,
            "token_type": self.token_type,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "secrets": {k: v.get_secret_value() for k, v in self.secrets.items()},
            "extra": self.extra,
        }


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """An OAuth app's client credentials (the platform's, or an agency's white-label app)."""

    client_id: str
    client_secret: str
    extra: dict[str, Any]
