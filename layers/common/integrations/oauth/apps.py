"""OAuth app credentials: the platform's app per provider app, or an agency's own white-label app.

Platform apps live in `APP_SECRET_PREFIX + <app>`; an agency's registered client lives in
`AGENCY_APP_SECRET_PREFIX + <agency>/<app>`. Both are JSON `{client_id, client_secret, ...}` read
through Powertools Parameters with a short cache, so a rotation or a newly registered agency app is
picked up within a minute. The client secret is write-only: nothing here returns it to a caller
except as an AppCredentials handed to the engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.connection import utcnow
from integrations.domain.credentials import AppCredentials
from integrations.oauth.errors import AppNotConfigured

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from integrations.catalog.model import ProviderSpec

CACHE_SECONDS = 60


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


class AppCredentialStore:
    """Resolves which OAuth client an agency's connections use, and stores agencies' own clients."""

    def __init__(
        self,
        client: SecretsManagerClient,
        platform_prefix: str,
        agency_prefix: str,
        *,
        max_age: int = CACHE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._sm = client
        self._provider = SecretsProvider(boto3_client=client)
        self._platform_prefix = platform_prefix
        self._agency_prefix = agency_prefix
        self._max_age = max_age
        self._clock = clock
        # Absent agency apps are the common case; remember the miss as long as a hit would be cached.
        self._misses: dict[str, float] = {}

    # --- reads ---

    def platform(self, app: str) -> AppCredentials:
        found = self._read(self._platform_prefix + app)
        if found is None or not found.client_id:
            raise AppNotConfigured(app)
        return found

    def agency(self, agency_id: str, app: str) -> AppCredentials | None:
        return self._read(self.agency_secret_name(agency_id, app))

    def current(self, agency_id: str, app: str) -> AppCredentials:
        """The app new authorizations of this agency use: its own when registered, else the platform's."""
        own = self.agency(agency_id, app)
        return own if own is not None else self.platform(app)

    def for_agency(self, spec: ProviderSpec, agency_id: str) -> AppCredentials | None:
        """container.AppCredentialSource: the agency's current app for a provider, None if none."""
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
            platform = self._read(self._platform_prefix + app)
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

    def agency_secret_name(self, agency_id: str, app: str) -> str:
        return f"{self._agency_prefix}{agency_id}/{app}"

    def put_agency_app(self, agency_id: str, app: str, given: AgencyAppInput) -> AgencyAppInfo:
        """Create or replace the agency's client for `app`."""
        updated_at = self._clock().isoformat()
        secret = json.dumps(
            {"client_id": given.client_id, "client_secret": given.client_secret, "updated_at": updated_at},
            separators=(",", ":"),
        )
        name = self.agency_secret_name(agency_id, app)
        try:
            self._sm.put_secret_value(SecretId=name, SecretString=secret)
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            self._sm.create_secret(
                Name=name,
                SecretString=secret,
                Tags=[{"Key": "agency_id", "Value": agency_id}, {"Key": "oauth_app", "Value": app}],
            )
        self._forget(name)
        return AgencyAppInfo(app=app, client_id=given.client_id, updated_at=updated_at)

    def delete_agency_app(self, agency_id: str, app: str) -> bool:
        """Remove the agency's client; True when there was one."""
        name = self.agency_secret_name(agency_id, app)
        try:
            self._sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            return False
        finally:
            self._forget(name)
        return True

    # --- internals ---

    def _read(self, name: str) -> AppCredentials | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        missed_at = self._misses.get(name)
        if missed_at is not None and time.monotonic() - missed_at < self._max_age:
            return None
        try:
            value = self._provider.get(name, max_age=self._max_age, transform="json")
        except GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError) and _error_code(cause) == "ResourceNotFoundException":
                self._misses[name] = time.monotonic()
                return None
            raise
        if not isinstance(value, dict):
            return None
        client_id = str(value.get("client_id") or "")
        client_secret = str(value.get("client_secret") or "")
        if not client_id:
            return None
        extra = {k: v for k, v in value.items() if k not in ("client_id", "client_secret")}
        return AppCredentials(client_id=client_id, client_secret=client_secret, extra=extra)

    def _forget(self, name: str) -> None:
        self._misses.pop(name, None)
        # The provider caches per (name, transform); clearing all of it is cheap and rare (admin writes).
        self._provider.clear_cache()  # type: ignore[no-untyped-call]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
