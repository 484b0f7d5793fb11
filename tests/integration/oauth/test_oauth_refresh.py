"""The token manager against the sandbox's token endpoints: single-flight refresh across instances,
rotated refresh tokens stored first, invalid_grant → reauth_required, outages counted not flipped."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level
from integrations.domain.connection import AuthHealth, Connection, ExternalAccount, PortalStatus
from integrations.domain.credentials import Credentials
from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.events import IntegrationErrored, IntegrationRecovered, PlatformEvent
from integrations.oauth.apps import AppCredentialStore
from integrations.oauth.tokens import RefreshPolicy, TokenManager
from integrations.store.app_secrets import SecretsManagerAppSecrets
from integrations.store.leases import DynamoLeases
from integrations.store.vault import credential_ref
from tests.integration.oauth.conftest import (
    point_catalog_at,
    sandbox_grant,
    sandbox_requests,
    store_app_credentials,
)

LOCATION = "Sbx7LocQ2mK9fT4wR1pZ"


@dataclass
class RecordedEvents:
    """Stands in for the EventBridge publisher; keeps what was published."""

    published: list[PlatformEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, *events: PlatformEvent) -> None:
        with self.lock:
            self.published.extend(events)


def seed_connection(
    services: Container, provider: str, grant: dict[str, Any], *, expired: bool
) -> Connection:
    """A connection holding a real sandbox grant whose access token is (or is not) past its expiry."""
    from infra.local.sandbox import APP_CREDENTIALS
    from tests.integration.oauth.conftest import APP_OF

    now = datetime.now(UTC)
    expires_at = now - timedelta(minutes=1) if expired else now + timedelta(hours=1)
    connection = Connection(
        id=uuid.uuid4().hex,
        provider=provider,
        level=Level.CLIENT,
        agency_id="agency-1",
        client_id="client-a",
        account=ExternalAccount(id=LOCATION, label="Sandbox location"),
        token_expires_at=expires_at,
    )
    services.connections.create(connection)
    services.vault.put(
        credential_ref(connection),
        Credentials(
            access_token=SecretStr(grant["access_token"]),
            refresh_token=SecretStr(grant["refresh_token"]),
            expires_at=expires_at,
            extra={"app_client_id": APP_CREDENTIALS[APP_OF[provider]]["client_id"]},
        ),
    )
    return connection


def token_manager(services: Container, events: RecordedEvents, **policy: Any) -> TokenManager:
    settings = services.settings
    return TokenManager(
        catalog=services.catalog,
        connections=services.connections,
        vault=services.vault,
        events=events,  # type: ignore[arg-type]
        apps=AppCredentialStore(
            SecretsManagerAppSecrets(
                aws_clients.secretsmanager(), settings.app_secret_prefix, settings.agency_app_secret_prefix
            )
        ),
        leases=DynamoLeases(aws_clients.dynamodb(), settings.state_table_name),
        policy=RefreshPolicy(**policy),
    )


def ghl_location_works(base: str, access_token: str) -> bool:
    answer = requests.get(
        f"{base}/ghl/locations/{LOCATION}",
        headers={"Authorization": f"Bearer {access_token}", "Version": "2021-07-28"},
        timeout=5,
    )
    return answer.status_code == 200


# --- 20 instances at once, against a real HTTP DynamoDB (moto server) ----------------------------


@pytest.fixture
def moto_server(sandbox: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    """template.yaml's resources in a moto server on loopback; boto3 reaches it over HTTP.

    moto's in-process mock is not thread-safe, so concurrency is tested through the server.
    """
    from moto.server import ThreadedMotoServer

    from infra.local.resources import create_resources, load_template

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    aws_clients.reset_clients()
    try:
        resources = create_resources(load_template(), stage="test")
        for name, value in resources.environment().items():
            monkeypatch.setenv(name, value)
        point_catalog_at(sandbox, tmp_path, monkeypatch)
        store_app_credentials(resources.environment()["APP_SECRET_PREFIX"])
        yield Container(Settings.from_env())
    finally:
        aws_clients.reset_clients()
        server.stop()


def test_twenty_instances_refresh_a_rotating_token_exactly_once(moto_server: Container, sandbox: str) -> None:
    # Given a GHL connection (single-use rotating refresh tokens) whose access token has expired
    services = moto_server
    grant = sandbox_grant("ghl", account=LOCATION)
    connection = seed_connection(services, "ghl", grant, expired=True)
    events = RecordedEvents()
    instances = [token_manager(services, events, wait_seconds=20.0, poll_seconds=0.05) for _ in range(20)]
    barrier = threading.Barrier(len(instances))
    tokens: list[str] = []
    failures: list[BaseException] = []

    def use(manager: TokenManager) -> None:
        barrier.wait()
        try:
            token = manager.access_token(connection)
        except BaseException as exc:
            failures.append(exc)
            return
        tokens.append(token)

    # When 20 Lambda instances need a token at the same moment
    threads = [threading.Thread(target=use, args=(m,)) for m in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then exactly one refresh reached GHL, and everyone got its (working) access token
    assert failures == []
    refreshes = sandbox_requests(sandbox, app="ghl", grant_type="refresh_token")
    assert len(refreshes) == 1
    assert len(tokens) == 20 and len(set(tokens)) == 1
    assert tokens[0] != grant["access_token"]
    assert ghl_location_works(sandbox, tokens[0])
    # And the rotated refresh token was stored: the connection keeps working on the next refresh
    stored = services.vault.get(credential_ref(connection))
    assert stored is not None and stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() != grant["refresh_token"]
    renewed = instances[0].refresh_now(connection)
    assert renewed.access_token is not None
    assert ghl_location_works(sandbox, renewed.access_token.get_secret_value())
    after = services.connections.get(connection.id)
    assert after is not None and after.status is PortalStatus.CONNECTED
    assert events.published == []


# --- single instance behaviour (moto in-process) --------------------------------------------------


@pytest.fixture
def services(oauth_env: dict[str, str]) -> Container:
    return Container(Settings.from_env())


def test_fresh_token_is_used_without_refreshing(services: Container, sandbox: str) -> None:
    connection = seed_connection(services, "ghl", sandbox_grant("ghl", account=LOCATION), expired=False)
    manager = token_manager(services, RecordedEvents())
    token = manager.access_token(connection)
    assert ghl_location_works(sandbox, token)
    assert sandbox_requests(sandbox, app="ghl", grant_type="refresh_token") == []


def test_invalid_grant_means_reauth_required_and_an_errored_event(services: Container, sandbox: str) -> None:
    connection = seed_connection(services, "calendly", sandbox_grant("calendly"), expired=True)
    # The user removed the app at Calendly: every grant is dead
    requests.post(
        f"{sandbox}/_sandbox/faults", json={"app": "calendly", "kind": "revoke_grants"}, timeout=5
    ).raise_for_status()
    events = RecordedEvents()
    manager = token_manager(services, events)

    with pytest.raises(ReauthRequired):
        manager.access_token(connection)

    after = services.connections.get(connection.id)
    assert after is not None
    assert after.status is PortalStatus.ERROR
    assert after.error is not None and after.error.code == "reauth_required"
    assert [type(e) for e in events.published] == [IntegrationErrored]
    # And a later caller does not hit the provider again with the dead grant
    with pytest.raises(ReauthRequired):
        manager.access_token(after)
    assert len(sandbox_requests(sandbox, app="calendly", grant_type="refresh_token")) == 1


def test_provider_outage_backs_off_without_flipping_the_status(services: Container, sandbox: str) -> None:
    connection = seed_connection(services, "ghl", sandbox_grant("ghl", account=LOCATION), expired=True)
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"app": "ghl", "kind": "server_error", "endpoint": "token", "status": 503},
        timeout=5,
    ).raise_for_status()
    events = RecordedEvents()
    manager = token_manager(services, events, backoff_base_seconds=30.0)

    with pytest.raises(ProviderUnavailable):
        manager.access_token(connection)

    after = services.connections.get(connection.id)
    assert after is not None
    assert after.status is PortalStatus.CONNECTED
    assert after.consecutive_failures == 1
    assert events.published == []
    # During the backoff nobody calls the provider again
    with pytest.raises(ProviderUnavailable):
        token_manager(services, events).access_token(connection)
    assert len(sandbox_requests(sandbox, app="ghl", grant_type="refresh_token")) == 1


def test_sustained_outage_errors_then_success_recovers(services: Container, sandbox: str) -> None:
    connection = seed_connection(services, "ghl", sandbox_grant("ghl", account=LOCATION), expired=True)
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"app": "ghl", "kind": "server_error", "endpoint": "token", "count": 3},
        timeout=5,
    ).raise_for_status()
    events = RecordedEvents()
    manager = token_manager(
        services, events, failure_threshold=3, backoff_base_seconds=0.01, backoff_max_seconds=0.02
    )
    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            manager.access_token(connection)
        threading.Event().wait(0.05)  # let the short backoff pass
    broken = services.connections.get(connection.id)
    assert broken is not None
    assert broken.auth_health is AuthHealth.PROVIDER_UNAVAILABLE
    assert broken.error is not None and broken.error.code == "provider_unavailable"
    assert [type(e) for e in events.published] == [IntegrationErrored]

    token = manager.access_token(broken)

    assert ghl_location_works(sandbox, token)
    healed = services.connections.get(connection.id)
    assert healed is not None and healed.status is PortalStatus.CONNECTED
    assert [type(e) for e in events.published] == [IntegrationErrored, IntegrationRecovered]


def test_a_token_still_valid_is_used_when_the_early_refresh_fails(services: Container, sandbox: str) -> None:
    grant = sandbox_grant("hubspot")
    connection = seed_connection(services, "hubspot", grant, expired=False)
    # Two minutes left: inside the five-minute refresh margin, but still usable
    stored = services.vault.get(credential_ref(connection))
    assert stored is not None
    services.vault.put(
        credential_ref(connection),
        stored.model_copy(update={"expires_at": datetime.now(UTC) + timedelta(minutes=2)}),
    )
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"app": "hubspot", "kind": "rate_limit", "endpoint": "token", "retry_after": 7},
        timeout=5,
    ).raise_for_status()

    token = token_manager(services, RecordedEvents()).access_token(connection)

    assert token == grant["access_token"]


def test_the_container_hands_out_credentials_through_the_token_manager(
    services: Container, sandbox: str
) -> None:
    # Given a GHL connection whose access token has expired
    grant = sandbox_grant("ghl", account=LOCATION)
    connection = seed_connection(services, "ghl", grant, expired=True)
    services.app_credentials(services.catalog.get("ghl"), "agency-1")
    assert "token_manager" not in vars(services)  # the app store alone does not build the token stack

    # When the portal or a disconnect asks the container for the connection's credentials
    credentials = services.fresh_credentials(connection)

    # Then the token manager refreshed them once, and it shares the container's app store
    assert credentials.access_token is not None
    assert credentials.access_token.get_secret_value() != grant["access_token"]
    assert ghl_location_works(sandbox, credentials.access_token.get_secret_value())
    assert len(sandbox_requests(sandbox, app="ghl", grant_type="refresh_token")) == 1
    assert services.token_manager.apps is services.apps


@pytest.mark.timeout(60)
def test_a_token_endpoint_answering_in_twelve_seconds_keeps_a_rotating_grant(
    services: Container, sandbox: str
) -> None:
    # Given a HighLevel connection (single-use, rotating refresh tokens) whose access token expired,
    # and a token endpoint that rotates at once but answers 12 s later
    grant = sandbox_grant("ghl", account=LOCATION)
    connection = seed_connection(services, "ghl", grant, expired=True)
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"app": "ghl", "kind": "slow_answer", "endpoint": "token"},
        timeout=5,
    ).raise_for_status()
    events = RecordedEvents()

    # When the connection's token is needed
    started = time.monotonic()
    token = token_manager(services, events).access_token(connection)

    # Then the answer was waited for, and the rotated refresh token stored and usable again
    assert time.monotonic() - started >= 12
    assert ghl_location_works(sandbox, token)
    stored = services.vault.get(credential_ref(connection))
    assert stored is not None and stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() != grant["refresh_token"]
    again = token_manager(services, events).refresh_now(connection)
    assert again.access_token is not None
    assert ghl_location_works(sandbox, again.access_token.get_secret_value())
    after = services.connections.get(connection.id)
    assert after is not None and after.status is PortalStatus.CONNECTED
    assert events.published == []
