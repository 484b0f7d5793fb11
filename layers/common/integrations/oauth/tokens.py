"""The token manager: usable access tokens for a connection, refreshed once across all instances.

A refresh is single-flight per connection across Lambda instances through a lease item on the
StateTable (store.leases: a conditional put with an expiry). The holder re-reads
the credentials after taking the lease (a peer may have refreshed meanwhile), stores a rotated
refresh token before anything uses the new access token, and never repeats a refresh whose answer
was lost: it re-reads the stored tokens at once (a peer may have saved newer ones), else the lease is
held for a backoff and the next holder re-reads first (design §6).
`invalid_grant` makes the connection `error`/`reauth_required` at once; provider outages count up
through Connection.provider_failed and only a sustained run becomes `provider_unavailable`.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from integrations.catalog.scopes import granted_scopes
from integrations.domain.connection import AuthHealth, Connection, ErrorCode, StatusChange, utcnow
from integrations.domain.credentials import AppCredentials, Credentials
from integrations.domain.errors import ProviderUnavailable, ReauthRequired, VersionConflict
from integrations.domain.leases import LeaseOutcome
from integrations.http import RateLimited
from integrations.metrics import TOKEN_REFRESHES, Counter, NoCounter
from integrations.oauth.engine import OAuth2Engine
from integrations.oauth.errors import TokenAnswerLost, TokenEndpointError
from integrations.observability import get_logger
from integrations.store.vault import credential_ref

if TYPE_CHECKING:
    from integrations.catalog.loader import Catalog
    from integrations.catalog.model import ProviderSpec
    from integrations.events import EventPublisher
    from integrations.oauth.apps import AppCredentialStore
    from integrations.store.connections import ConnectionRepository
    from integrations.store.vault import TokenVault

logger = get_logger()


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    # Refresh this long before expiry (HubSpot tokens live 30 minutes, Google's an hour).
    margin: timedelta = timedelta(minutes=5)
    # Longer than a token call can take (http.TOKEN_TIMEOUT: 23 s at most) plus the vault write.
    lease_seconds: float = 30.0
    # How long a caller waits for a peer's refresh before giving up with a retryable error.
    wait_seconds: float = 15.0
    poll_seconds: float = 0.1
    # Consecutive provider failures before the connection shows `provider_unavailable`.
    failure_threshold: int = 3
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 300.0


class RefreshLeases(Protocol):
    """Single-flight leases per connection (store.leases): acquiring is the whole mutual exclusion."""

    def acquire(self, connection_id: str, owner: str, now: float, seconds: float) -> LeaseOutcome:
        """Take the lease for `seconds` unless someone else holds it; says who does when refused."""
        ...

    def release(self, connection_id: str, owner: str) -> None:
        """Give the lease back (a no-op when it ran out and someone else holds it now)."""
        ...

    def hold_for_backoff(self, connection_id: str, owner: str, until: float) -> None:
        """Keep the lease through a backoff so no instance calls the provider before `until`."""
        ...


@dataclass
class TokenManager:
    """Hands out usable credentials for a connection, refreshing OAuth tokens shortly before they expire."""

    catalog: Catalog
    connections: ConnectionRepository
    vault: TokenVault
    events: EventPublisher
    apps: AppCredentialStore
    leases: RefreshLeases
    engine: OAuth2Engine = field(default_factory=OAuth2Engine)
    clock: Callable[[], datetime] = utcnow
    policy: RefreshPolicy = field(default_factory=RefreshPolicy)
    sleep: Callable[[float], None] = time.sleep
    owner: str = field(default_factory=lambda: secrets.token_hex(8))
    # Each refresh this instance makes at the provider: ok, failed (outage, refusal to answer,
    # a store that failed) or reauth (the grant is dead). Waiting on a peer's refresh counts nothing.
    counter: Counter = field(default_factory=NoCounter)
    # Mints a sub-account token from an agency-level grant (default: the provider module's hook).
    sub_account_token: Callable[[ProviderSpec, Credentials, str], dict[str, Any]] | None = None

    # --- what callers use ---

    def credentials(self, connection: Connection) -> Credentials:
        """Usable credentials: refreshed first when they expire within the margin."""
        current = self._read(connection)
        if connection.served_by is not None:
            return self._served(connection, current, connection.served_by)
        if not self._due(current):
            return current
        if connection.auth_health is AuthHealth.REAUTH_REQUIRED:
            # The grant was declared dead; calling the provider again would only repeat that.
            raise ReauthRequired("This connection needs to be connected again.")
        spec = self.catalog.get(connection.provider)
        if spec.oauth is None or current.refresh_token is None:
            return current
        return self._refresh(connection, spec, current)

    def access_token(self, connection: Connection) -> str:
        token = self.credentials(connection).access_token
        if token is None:
            raise ReauthRequired("This connection has no access token; connect it again.")
        return token.get_secret_value()

    def refresh_now(self, connection: Connection) -> Credentials:
        """Refresh regardless of expiry (the maintenance job keeps idle grants alive)."""
        current = self._read(connection)
        spec = self.catalog.get(connection.provider)
        if spec.oauth is None or current.refresh_token is None:
            return current
        return self._refresh(connection, spec, current, force=True)

    # --- sub-accounts served through an agency-level connection ---

    def _served(self, connection: Connection, seen: Credentials, served_by: str) -> Credentials:
        """A token minted from the agency's grant for this connection's sub-account (GHL location),
        cached in this connection's own vault item and minted again, single-flight, when it is due."""
        if seen.access_token is not None and not self._due(seen):
            return seen
        deadline = time.monotonic() + self.policy.wait_seconds
        while not self.leases.acquire(
            connection.id, self.owner, self.clock().timestamp(), self.policy.lease_seconds
        ).acquired:
            self.sleep(self.policy.poll_seconds)
            latest = self._read(connection)
            if latest.access_token is not None and not self._due(latest):
                return latest
            if time.monotonic() > deadline:
                raise ProviderUnavailable("A token for this connection is being minted; try again shortly.")
        try:
            current = self._read(connection)
            if current.access_token is not None and not self._due(current):
                return current
            agency = self._serving(connection, served_by)
            spec = self.catalog.get(connection.provider)
            try:
                answer = self._mint(spec, self.credentials(agency), connection.account.id)
            except ReauthRequired:
                # The agency's grant is gone or no longer covers this sub-account.
                return self._served_lost(connection)
            fresh = Credentials(
                access_token=SecretStr(str(answer["access_token"])),
                token_type=str(answer.get("token_type") or "Bearer"),
                expires_at=_expiry(self.clock(), answer.get("expires_in")),
                extra=dict(current.extra),
            )
            self.vault.put(credential_ref(connection), fresh)
            self._record(connection.id, lambda c, now: c.provider_succeeded(now), fresh.expires_at)
            self._count(connection, "ok")
            return fresh
        finally:
            self.leases.release(connection.id, self.owner)

    def _serving(self, connection: Connection, served_by: str) -> Connection:
        """The agency-level connection that serves this one: same agency and provider, agency level."""
        from integrations.domain.access import Level

        agency = self.connections.get(served_by)
        if (
            agency is None
            or agency.level is not Level.AGENCY
            or agency.agency_id != connection.agency_id
            or agency.provider != connection.provider
            or connection.client_id is None
        ):
            self._served_lost(connection)
        assert agency is not None
        return agency

    def _served_lost(self, connection: Connection) -> Credentials:
        message = (
            "The agency's connection no longer serves this account; the agency can map it again, "
            "or connect your own account."
        )
        self._record(
            connection.id, lambda c, now: c.auth_failed(ErrorCode.REAUTH_REQUIRED, message, now), None
        )
        raise ReauthRequired(message)

    def _mint(self, spec: ProviderSpec, agency: Credentials, sub_account_id: str) -> dict[str, Any]:
        if self.sub_account_token is not None:
            return self.sub_account_token(spec, agency, sub_account_id)
        from integrations.providers.registry import module_for

        return module_for(spec.id).sub_account_token(spec, agency, sub_account_id)

    # --- the single-flight refresh ---

    def _refresh(
        self, connection: Connection, spec: ProviderSpec, seen: Credentials, *, force: bool = False
    ) -> Credentials:
        deadline = time.monotonic() + self.policy.wait_seconds
        while True:
            now = self.clock().timestamp()
            outcome = self.leases.acquire(connection.id, self.owner, now, self.policy.lease_seconds)
            if outcome.acquired:
                break
            holder = outcome.holder
            if holder is not None and holder.backoff:
                # A recent refresh failed: nobody calls the provider until the backoff ends.
                if not _expired(seen, self.clock()):
                    return seen
                raise ProviderUnavailable(
                    "The provider failed recently; retrying later.",
                    details={"retry_after": max(0.0, round(holder.until - now, 1))},
                )
            if not _expired(seen, self.clock()) and not force:
                # Still valid for a while: no need to wait for the peer's refresh.
                return seen
            self.sleep(self.policy.poll_seconds)
            latest = self._read(connection)
            if _newer(latest, seen, self.clock()):
                return latest
            if time.monotonic() > deadline:
                raise ProviderUnavailable("A refresh of this connection is in progress; try again shortly.")
        return self._refresh_holding_lease(connection, spec, seen, force=force)

    def _refresh_holding_lease(
        self, connection: Connection, spec: ProviderSpec, seen: Credentials, *, force: bool
    ) -> Credentials:
        assert spec.oauth is not None
        release = True
        try:
            # Re-read under the lease: a peer may have refreshed (and rotated) since we looked.
            current = self._read(connection)
            if _newer(current, seen, self.clock()) or (not force and not self._due(current)):
                return current
            if current.refresh_token is None:
                return current
            app = self.apps.for_client_id(
                connection.agency_id, spec.oauth.app, current.extra.get("app_client_id")
            )
            answer = self._ask_provider(connection, spec, app, current)
            if isinstance(answer, Credentials):
                return answer
            fresh = self._from_answer(spec, current, answer)
            # Stored before the lease is released and before anyone is handed the new access token:
            # a rotated refresh token that is not stored is a connection lost.
            self.vault.put(credential_ref(connection), fresh)
            self._record(connection.id, lambda c, now: c.provider_succeeded(now), fresh.expires_at)
            logger.info(
                "token refreshed", extra={"connection_id": connection.id, "provider": connection.provider}
            )
            self._count(connection, "ok")
            return fresh
        except ProviderUnavailable as exc:
            self._count(connection, "failed")
            release = False
            failure = exc
            failures = self._record(
                connection.id,
                lambda c, now: c.provider_failed(failure.message, now, self.policy.failure_threshold),
                None,
            )
            backoff = self._backoff(failures, exc)
            self.leases.hold_for_backoff(connection.id, self.owner, self.clock().timestamp() + backoff)
            logger.warning(
                "token refresh failed",
                extra={
                    "connection_id": connection.id,
                    "provider": connection.provider,
                    "error_code": exc.code,
                },
            )
            if not _expired(seen, self.clock()):
                return seen
            raise
        except ReauthRequired:
            self._count(connection, "reauth")
            raise
        except Exception:
            self._count(connection, "failed")
            raise
        finally:
            if release:
                self.leases.release(connection.id, self.owner)

    def _ask_provider(
        self, connection: Connection, spec: ProviderSpec, app: AppCredentials, current: Credentials
    ) -> dict[str, Any] | Credentials:
        """The token endpoint's answer, or stored credentials that make it moot (a peer's newer ones)."""
        assert spec.oauth is not None and current.refresh_token is not None
        try:
            return self.engine.refresh(
                spec.oauth, app, current.refresh_token.get_secret_value(), level=connection.level
            )
        except TokenAnswerLost:
            # The provider may have used (and rotated) the grant: before failing, look for tokens a
            # peer stored meanwhile (its lease ran out while ours waited).
            latest = self._read(connection)
            if _newer(latest, current, self.clock()) or _refresh_token(latest) != _refresh_token(current):
                return latest
            raise
        except TokenEndpointError as exc:
            if not exc.definitive:
                raise ProviderUnavailable(
                    f"The provider refused to refresh ({exc.error or exc.http_status})."
                ) from None
            return self._grant_rejected(connection, current, exc)

    def _grant_rejected(
        self, connection: Connection, used: Credentials, exc: TokenEndpointError
    ) -> Credentials:
        # Before declaring the grant dead, look again: a peer whose lease had run out may have
        # rotated the refresh token under us (provider page §5, "re-read once").
        latest = self._read(connection)
        if _refresh_token(latest) != _refresh_token(used):
            return latest
        message = "The provider no longer accepts this connection's authorization; connect it again."
        self._record(
            connection.id, lambda c, now: c.auth_failed(ErrorCode.REAUTH_REQUIRED, message, now), None
        )
        logger.warning(
            "refresh grant rejected",
            extra={**_about(connection), "error_code": exc.error},
        )
        raise ReauthRequired(message)

    # --- helpers ---

    def _count(self, connection: Connection, outcome: str) -> None:
        self.counter.count(TOKEN_REFRESHES, provider=connection.provider, outcome=outcome)

    def _read(self, connection: Connection) -> Credentials:
        found = self.vault.get(credential_ref(connection))
        if found is None:
            raise ReauthRequired("This connection has no stored credentials; connect it again.")
        return found

    def _due(self, credentials: Credentials) -> bool:
        if credentials.expires_at is None:
            return False
        return credentials.expires_at - self.policy.margin <= self.clock()

    def _from_answer(self, spec: ProviderSpec, current: Credentials, answer: dict[str, Any]) -> Credentials:
        assert spec.oauth is not None
        now = self.clock()
        expires_in = answer.get("expires_in")
        rotated = answer.get("refresh_token")
        extra = dict(current.extra)
        scopes = granted_scopes(spec.oauth, answer)
        if scopes:
            extra["granted_scopes"] = scopes
        return Credentials(
            access_token=SecretStr(str(answer["access_token"])),
            refresh_token=SecretStr(str(rotated)) if rotated else current.refresh_token,
            token_type=str(answer.get("token_type") or current.token_type or "Bearer"),
            expires_at=_expiry(now, expires_in),
            secrets=dict(current.secrets),
            extra=extra,
        )

    def _backoff(self, failures: int, exc: ProviderUnavailable) -> float:
        exponent = max(0, failures - 1)
        delay = min(self.policy.backoff_max_seconds, self.policy.backoff_base_seconds * (2**exponent))
        delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        if isinstance(exc, RateLimited) and exc.retry_after:
            delay = max(delay, float(exc.retry_after))
        return float(delay)

    def _record(
        self,
        connection_id: str,
        transition: Callable[[Connection, datetime], StatusChange | None],
        token_expires_at: datetime | None,
    ) -> int:
        """Apply a transition to the stored connection (connections.apply) and publish its events.

        Returns the connection's consecutive failure count afterwards.
        """
        from integrations.connections.apply import ConnectionTransitions

        def step(connection: Connection, now: datetime) -> StatusChange | None:
            change = transition(connection, now)
            if token_expires_at is not None:
                connection.token_expires_at = token_expires_at
            return change

        try:
            applied = ConnectionTransitions(self.connections, self.events, self.clock).apply(
                connection_id, step
            )
        except VersionConflict:
            logger.warning(
                "connection status not recorded after conflicts", extra={"connection_id": connection_id}
            )
            return 0
        return applied.connection.consecutive_failures if applied is not None else 0


def _about(connection: Connection) -> dict[str, str]:
    return {"connection_id": connection.id, "provider": connection.provider}


def _expired(credentials: Credentials, now: datetime) -> bool:
    return credentials.expires_at is not None and credentials.expires_at <= now


def _newer(latest: Credentials, seen: Credentials, now: datetime) -> bool:
    """Someone else refreshed: the stored access token is not the one we started from."""
    return _secret(latest.access_token) != _secret(seen.access_token) and not _expired(latest, now)


def _refresh_token(credentials: Credentials) -> str | None:
    return _secret(credentials.refresh_token)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _expiry(now: datetime, expires_in: Any) -> datetime | None:
    """`now + expires_in` seconds, or None when the answer gives no usable lifetime."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
        return None
    try:
        return now + timedelta(seconds=float(expires_in))
    except ValueError:
        return None
