"""OAuth app credentials: the platform's app per provider app, or an agency's own white-label app.

Both are JSON `{client_id, client_secret, ...}` app secrets, read through one AppSecretStore
(store.app_secrets, cached a minute, so a rotation or a newly registered agency app is picked up
quickly). The client secret is write-only: nothing here returns it to a caller except as an
AppCredentials handed to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.connection import utcnow
from integrations.domain.credentials import AppCredentials
from integrations.oauth.errors import AppNotConfigured

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec


class AgencyAppInput(BaseModel):
    """Body of `PUT /agency/oauth-apps/{provider}`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    client_id: str = Field(min_length=1, max_length=512)
    client_secret: str = Field(min_length=1, max_length=2048, repr=False)


@dataclass(frozen=True, slots=True)
class AgencyAppInfo:
    """What may be shown about an agency's registered app: never its secret."""

    app: str
    client_id: str
    updated_at: str

    def to_body(self, provider: str) -> dict[str, Any]:
        return {
            "provider": provider,
            "app": self.app,
            "client_id": self.client_id,
            "client_secret_set": True,
            "updated_at": self.updated_at,
        }


class AppSecretStore(Protocol):
    """App secrets by app name, platform-wide or an agency's own (store.app_secrets)."""

    def fields(self, app: str) -> Mapping[str, Any]:
        """The platform app's fields; `{}` when there is no such secret."""
        ...

    def agency_fields(self, agency_id: str, app: str) -> Mapping[str, Any]:
        """The agency's own app's fields; `{}` when it registered none."""
        ...

    def put_agency_app(self, agency_id: str, app: str, fields: Mapping[str, str]) -> None: ...

    def delete_agency_app(self, agency_id: str, app: str) -> bool: ...


class AppCredentialStore:
    """Resolves which OAuth client an agency's connections use, and stores agencies' own clients."""

    def __init__(self, secrets: AppSecretStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._secrets = secrets
        self._clock = clock

    # --- reads ---

    def platform(self, app: str) -> AppCredentials:
        found = _credentials(self._secrets.fields(app))
        if found is None:
            raise AppNotConfigured(app)
        return found

    def agency(self, agency_id: str, app: str) -> AppCredentials | None:
        return _credentials(self._secrets.agency_fields(agency_id, app))

    def current(self, agency_id: str, app: str) -> AppCredentials:
        """The app new authorizations of this agency use: its own when registered, else the platform's."""
        own = self.agency(agency_id, app)
        return own if own is not None else self.platform(app)

    def for_agency(self, spec: ProviderSpec, agency_id: str) -> AppCredentials | None:
        """The agency's current app for a provider, None if none."""
        if spec.oauth is None:
            return None
        try:
            return self.current(agency_id, spec.oauth.app)
        except AppNotConfigured:
            return None

    def for_client_id(self, agency_id: str, app: str, client_id: str | None) -> AppCredentials:
        """The app that issued a grant (recorded client id): refresh and revoke must use that client.

        A grant made before the agency registered (or replaced) its own app still belongs to the
        app that issued it; an unknown or missing id falls back to the agency's current choice.
        """
        if client_id:
            own = self.agency(agency_id, app)
            if own is not None and own.client_id == client_id:
                return own
            platform = _credentials(self._secrets.fields(app))
            if platform is not None and platform.client_id == client_id:
                return platform
        return self.current(agency_id, app)

    def describe_agency_app(self, agency_id: str, app: str) -> AgencyAppInfo | None:
        found = self.agency(agency_id, app)
        if found is None:
            return None
        return AgencyAppInfo(
            app=app, client_id=found.client_id, updated_at=str(found.extra.get("updated_at", ""))
        )

    # --- agency writes ---

    def put_agency_app(self, agency_id: str, app: str, given: AgencyAppInput) -> AgencyAppInfo:
        """Create or replace the agency's client for `app`."""
        updated_at = self._clock().isoformat()
        self._secrets.put_agency_app(
            agency_id,
            app,
            {"client_id": given.client_id, "client_secret": given.client_secret, "updated_at": updated_at},
        )
        return AgencyAppInfo(app=app, client_id=given.client_id, updated_at=updated_at)

    def delete_agency_app(self, agency_id: str, app: str) -> bool:
        """Remove the agency's client; True when there was one."""
        return self._secrets.delete_agency_app(agency_id, app)


def _credentials(value: Mapping[str, Any]) -> AppCredentials | None:
    """AppCredentials from a secret's fields; None without a client id."""
    client_id = str(value.get("client_id") or "")
    if not client_id:
        return None
    client_secret = str(value.get("client_secret") or "")
    extra = {k: v for k, v in value.items() if k not in ("client_id", "client_secret")}
    return AppCredentials(client_id=client_id, client_secret=client_secret, extra=extra)
