"""The token manager counts each refresh it makes at the provider: ok, failed or reauth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from integrations.catalog import load_catalog
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.credentials import AppCredentials, Credentials
from integrations.domain.errors import DependencyUnavailable, ProviderUnavailable, ReauthRequired
from integrations.domain.leases import LeaseOutcome
from integrations.events import PlatformEvent
from integrations.metrics import TOKEN_REFRESHES
from integrations.oauth.errors import TokenEndpointError
from integrations.oauth.tokens import TokenManager
from integrations.store.vault import CredentialRef, credential_ref

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


class Recorder:
    """A Counter that keeps every count."""

    def __init__(self) -> None:
        self.counts: list[tuple[str, int, dict[str, str]]] = []

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.counts.append((name, value, dimensions))


class Connections:
    def __init__(self, connection: Connection) -> None:
        self.stored = connection.model_copy(deep=True)

    def get(self, connection_id: str) -> Connection | None:
        return self.stored.model_copy(deep=True)

    def save(self, connection: Connection) -> Connection:
        connection.version += 1
        self.stored = connection.model_copy(deep=True)
        return connection


class Vault:
    def __init__(self) -> None:
        self.items: dict[CredentialRef, Credentials] = {}

    def get(self, ref: CredentialRef) -> Credentials | None:
        return self.items.get(ref)

    def put(self, ref: CredentialRef, credentials: Credentials) -> None:
        self.items[ref] = credentials


class Events:
    def __init__(self) -> None:
        self.published: list[PlatformEvent] = []

    def publish(self, *events: PlatformEvent) -> None:
        self.published.extend(events)


class Apps:
    def for_client_id(self, agency_id: str, app: str, client_id: str | None) -> AppCredentials:
        return AppCredentials(client_id="client-id", client_secret="client-secret", extra={})


class Leases:
    def acquire(self, connection_id: str, owner: str, now: float, seconds: float) -> LeaseOutcome:
        return LeaseOutcome(acquired=True)

    def release(self, connection_id: str, owner: str) -> None:
        pass

    def hold_for_backoff(self, connection_id: str, owner: str, until: float) -> None:
        pass


class TokenEndpoint:
    """Stands in for the OAuth engine: answers a refresh with `answer`, or raises `error`."""

    def __init__(self, answer: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.answer = answer or {"access_token": "new-access", "expires_in": 3600}
        self.error = error
        self.calls = 0

    def refresh(
        self, spec: Any, app: AppCredentials, refresh_token: str, level: Any = None
    ) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.answer


def manager(endpoint: TokenEndpoint, *, expires_at: datetime) -> tuple[TokenManager, Connection, Recorder]:
    connection = Connection(
        id="c1",
        provider="ghl",
        level=Level.CLIENT,
        agency_id="ag",
        client_id="cl",
        account=ExternalAccount(id="loc-1", label="Main location"),
        token_expires_at=expires_at,
    )
    vault = Vault()
    vault.put(
        credential_ref(connection),
        Credentials(
            access_token=SecretStr("old-access"), refresh_token=SecretStr("refresh"), expires_at=expires_at
        ),
    )
    counter = Recorder()
    tokens = TokenManager(
        catalog=load_catalog(),
        connections=Connections(connection),  # type: ignore[arg-type]
        vault=vault,  # type: ignore[arg-type]
        events=Events(),
        apps=Apps(),  # type: ignore[arg-type]
        leases=Leases(),
        engine=endpoint,  # type: ignore[arg-type]
        clock=lambda: NOW,
        sleep=lambda _seconds: None,
        counter=counter,
    )
    return tokens, connection, counter


def refreshes(counter: Recorder) -> list[tuple[str, int, dict[str, str]]]:
    return [c for c in counter.counts if c[0] == TOKEN_REFRESHES]


def test_a_successful_refresh_counts_ok_for_its_provider() -> None:
    tokens, connection, counter = manager(TokenEndpoint(), expires_at=NOW - timedelta(minutes=1))

    fresh = tokens.credentials(connection)

    assert fresh.access_token is not None and fresh.access_token.get_secret_value() == "new-access"
    assert refreshes(counter) == [(TOKEN_REFRESHES, 1, {"provider": "ghl", "outcome": "ok"})]


def test_a_provider_outage_counts_failed() -> None:
    endpoint = TokenEndpoint(error=TokenEndpointError("temporarily_unavailable", 503))
    tokens, connection, counter = manager(endpoint, expires_at=NOW - timedelta(minutes=1))

    with pytest.raises(ProviderUnavailable):
        tokens.credentials(connection)

    assert refreshes(counter) == [(TOKEN_REFRESHES, 1, {"provider": "ghl", "outcome": "failed"})]


def test_a_dead_grant_counts_reauth() -> None:
    endpoint = TokenEndpoint(error=TokenEndpointError("invalid_grant", 400))
    tokens, connection, counter = manager(endpoint, expires_at=NOW - timedelta(minutes=1))

    with pytest.raises(ReauthRequired):
        tokens.credentials(connection)

    assert refreshes(counter) == [(TOKEN_REFRESHES, 1, {"provider": "ghl", "outcome": "reauth"})]


def test_a_refresh_that_cannot_be_stored_counts_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens, connection, counter = manager(TokenEndpoint(), expires_at=NOW - timedelta(minutes=1))

    def vault_down(ref: CredentialRef, credentials: Credentials) -> None:
        raise DependencyUnavailable("The token vault is unavailable.")

    monkeypatch.setattr(tokens.vault, "put", vault_down)

    with pytest.raises(DependencyUnavailable):
        tokens.credentials(connection)

    assert refreshes(counter) == [(TOKEN_REFRESHES, 1, {"provider": "ghl", "outcome": "failed"})]


def test_a_token_that_is_not_due_counts_nothing() -> None:
    endpoint = TokenEndpoint()
    tokens, connection, counter = manager(endpoint, expires_at=NOW + timedelta(hours=1))

    tokens.credentials(connection)

    assert endpoint.calls == 0
    assert refreshes(counter) == []
