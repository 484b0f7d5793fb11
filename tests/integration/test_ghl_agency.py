"""An agency-level GoHighLevel connection serving its clients' locations with location tokens minted
from the company token (sandbox `/oauth/locationToken`), and a client's own connection taking over."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import APP_CREDENTIALS, SandboxConfig, catalog_overrides
from infra.local.sandbox.ghl_agency import OTHER_COMPANY
from integrations import aws as aws_clients
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level, Permission, Role
from integrations.domain.authorization import Scope
from integrations.domain.connection import Connection, PortalStatus
from integrations.domain.credentials import AppCredentials
from integrations.domain.errors import Conflict, ValidationFailed
from integrations.domain.principal import Principal
from integrations.events import ContactFields, ContactUpserted, PlatformEvent
from integrations.observability import get_logger
from integrations.portal.views import ServeSubAccount
from integrations.store.vault import credential_ref
from integrations.sync.jobs import SyncJob
from tests.support import seed
from tests.support.sandbox import (
    GATEWAY,
    Sandbox,
    callback_params,
    catalog_scopes,
    decide,
    exchange,
    running_sandbox,
    start_authorization,
)
from tests.support.sync_world import queue_empty

AGENCY = "agency-1"
LOC_A, LOC_B, LOC_C = "Sbx7LocQ2mK9fT4wR1pZ", "SbxLocB8nW3kP5vT2qYa", "SbxLocC4hJ6mR9xL1sDe"
FOREIGN = "SbxLocZ0therAg3ncy00"
ADMIN = Principal(
    sub="admin-1",
    agency_id=AGENCY,
    role=Role.AGENCY_ADMIN,
    permissions=frozenset({Permission.VIEW, Permission.MANAGE}),
)


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


def _tokens(sb: Sandbox, user_type: str, account: str | None = None) -> dict[str, Any]:
    auth = start_authorization(sb, "ghl", scopes=catalog_scopes("ghl"), pkce=False)
    code = callback_params(decide(sb, auth, account=account))["code"]
    answer = exchange(sb, "ghl", code, verifier=None, extra={"user_type": user_type})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


class Agency:
    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sb = sb
        overrides = tmp_path / "overrides.json"
        overrides.write_text(json.dumps(catalog_overrides(sb.base)))
        monkeypatch.setenv("INTEGRATIONS_CATALOG_OVERRIDES", str(overrides))
        clear_cache()
        company = _tokens(sb, "Company")
        assert company["userType"] == "Company" and "locationId" not in company
        self.company_id = str(company["companyId"])
        self.connection = seed.connection(
            provider="ghl",
            agency_id=AGENCY,
            level=Level.AGENCY,
            account_id=f"company:{self.company_id}",
            access_token=str(company["access_token"]),
            refresh_token=str(company["refresh_token"]),
            extra={"token_answer": {"companyId": self.company_id, "userType": "Company"}},
        )
        self.container = Container(Settings.from_env())
        self.container.__dict__["events"] = _Quiet()
        self.portal = self.container.portal_service(get_logger("test"))
        self.worker = self.container.sync_worker(get_logger("test"))
        self.queue_url = Settings.from_env().sync_queue_url

    def serve(self, location_id: str, client_id: str) -> Connection:
        view = self.portal.serve_sub_account(
            ADMIN, self.connection.id, location_id, lambda: ServeSubAccount(client_id=client_id)
        )
        # The client's settings, chosen from the location's own pipelines (read with its minted token).
        pipeline = self.portal.options(ADMIN, view.id, "pipeline_id", None).options[0].value
        stage = self.portal.options(ADMIN, view.id, "stage_id", pipeline).options[0].value
        self.portal.update_config(ADMIN, view.id, lambda: {"pipeline_id": pipeline, "stage_id": stage})
        found = self.container.connections.get(view.id)
        assert found is not None
        return found

    def contact_upserted(self, client_id: str, contact_id: str, email: str) -> None:
        from tests.support.functions import load_handler

        event = ContactUpserted(
            contact_id=contact_id,
            agency_id=AGENCY,
            client_id=client_id,
            fields=ContactFields(first_name=contact_id, email=email),
            version=int(time.time() * 1000),
        )
        app = load_handler("sync_worker")
        app.container = self.container
        detail = {
            "detail-type": event.detail_type,
            "source": "platform",
            "detail": event.model_dump(mode="json"),
        }
        assert app.platform_event(detail)["status"] == "applied"

    def drain(self) -> None:
        sqs = aws_clients.sqs()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = answer.get("Messages", [])
            if not messages and queue_empty(self.queue_url):
                return
            for message in messages:
                job = SyncJob.model_validate_json(message["Body"])
                self.worker.handle(job, remaining_ms=lambda: 600_000)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        raise AssertionError("the queue did not drain")

    def emails_in(self, location_id: str) -> set[str]:
        answer = self.sb.http.get(self.sb.url("/_sandbox/ghl/contacts"), params={"location_id": location_id})
        return {str(c["email"]) for c in answer.json()["contacts"]}

    def mints(self) -> int:
        return len([r for r in self.sb.requests_log() if str(r["path"]).endswith("/oauth/locationToken")])


class _Quiet:
    def publish(self, *events: PlatformEvent) -> None:
        pass


@pytest.fixture
def agency(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agency]:
    server.reset()
    yield Agency(server, tmp_path, monkeypatch)
    clear_cache()


def test_the_agency_lists_its_company_locations_and_whom_each_serves(agency: Agency) -> None:
    agency.serve(LOC_A, "client-a")

    listed = {a.id: a for a in agency.portal.sub_accounts(ADMIN, agency.connection.id).sub_accounts}

    assert set(listed) == {LOC_A, LOC_B, LOC_C}
    assert (listed[LOC_A].client_id, listed[LOC_A].served_by_agency) == ("client-a", True)
    assert listed[LOC_B].client_id is None


def test_an_agency_connection_serves_two_clients_locations_with_minted_location_tokens(
    agency: Agency,
) -> None:
    served_a = agency.serve(LOC_A, "client-a")
    served_b = agency.serve(LOC_B, "client-b")
    assert (served_a.level, served_a.client_id, served_a.account.id) == (Level.CLIENT, "client-a", LOC_A)
    assert served_a.served_by == agency.connection.id and served_b.served_by == agency.connection.id

    agency.contact_upserted("client-a", "ct-a1", "ann@example.com")
    agency.contact_upserted("client-b", "ct-b1", "bob@example.com")
    agency.drain()

    assert agency.emails_in(LOC_A) == {"ann@example.com"}
    assert agency.emails_in(LOC_B) == {"bob@example.com"}
    # Each location's token was minted once at mapping time and then reused from the vault.
    mints = agency.mints()
    assert mints == 2
    agency.contact_upserted("client-a", "ct-a2", "amy@example.com")
    agency.drain()
    assert agency.mints() == mints

    # Due again (as after a day): minted again from the company token, single-flight, and used.
    vault = agency.container.vault
    held = vault.get(credential_ref(served_a))
    assert held is not None
    vault.put(
        credential_ref(served_a),
        held.model_copy(update={"expires_at": datetime.now(UTC) - timedelta(minutes=1)}),
    )
    agency.contact_upserted("client-a", "ct-a3", "abe@example.com")
    agency.drain()
    assert agency.mints() == mints + 1
    assert agency.emails_in(LOC_A) == {"ann@example.com", "amy@example.com", "abe@example.com"}
    assert agency.emails_in(LOC_B) == {"bob@example.com"}


def test_a_client_never_gets_a_token_for_another_clients_location(agency: Agency) -> None:
    served_b = agency.serve(LOC_B, "client-b")
    agency.serve(LOC_A, "client-a")

    # The location is taken: mapping it to a second client is refused.
    with pytest.raises(Conflict) as taken:
        agency.serve(LOC_A, "client-b")
    assert taken.value.code == "sub_account_taken"
    # A location outside the company is not offered, and the sandbox refuses to mint for it.
    with pytest.raises(ValidationFailed) as foreign:
        agency.serve(FOREIGN, "client-c")
    assert foreign.value.code == "unknown_sub_account"
    token = agency.container.fresh_credentials(agency.connection).access_token
    assert token is not None
    refused = agency.sb.http.post(
        agency.sb.url("/ghl/oauth/locationToken"),
        data={"companyId": OTHER_COMPANY, "locationId": FOREIGN},
        headers={"Authorization": f"Bearer {token.get_secret_value()}", "Version": "2021-07-28"},
    )
    assert refused.status_code == 403
    # Client B's minted token reads only client B's location.
    b_token = agency.container.fresh_credentials(served_b).access_token
    assert b_token is not None
    other = agency.sb.http.post(
        agency.sb.url("/ghl/contacts/search"),
        json={"locationId": LOC_A, "pageLimit": 10},
        headers={"Authorization": f"Bearer {b_token.get_secret_value()}", "Version": "2021-07-28"},
    )
    assert other.status_code == 403
    # And the client's own principal cannot reach the agency's connection (404, nothing about it).
    client_user = Principal(
        sub="u-b",
        agency_id=AGENCY,
        role=Role.CLIENT_USER,
        client_id="client-b",
        permissions=frozenset({Permission.VIEW, Permission.MANAGE}),
    )
    from integrations.domain.errors import NotFound

    with pytest.raises(NotFound):
        agency.portal.sub_accounts(client_user, agency.connection.id)


def test_a_client_connecting_its_own_ghl_takes_over_from_the_agency(agency: Agency) -> None:
    served = agency.serve(LOC_A, "client-a")
    agency.contact_upserted("client-a", "ct-a1", "ann@example.com")
    agency.drain()
    mints = agency.mints()

    own = _tokens(agency.sb, "Location", account=LOC_A)
    spec = agency.container.catalog.get("ghl")
    creds = APP_CREDENTIALS["ghl"]
    app = AppCredentials(client_id=creds["client_id"], client_secret=creds["client_secret"], extra={})
    result = agency.container.connector.connect_oauth(
        spec, Scope(AGENCY, Level.CLIENT, "client-a", None), own, app
    )

    assert result.connection.id == served.id and result.connection.served_by is None
    agency.contact_upserted("client-a", "ct-a2", "amy@example.com")
    agency.drain()
    assert agency.emails_in(LOC_A) == {"ann@example.com", "amy@example.com"}
    used = agency.container.fresh_credentials(result.connection).access_token
    assert used is not None and used.get_secret_value() == own["access_token"]
    assert agency.mints() == mints
    assert agency.container.connections.get(served.id).status is PortalStatus.CONNECTED  # type: ignore[union-attr]
    # Mapping the client again is refused: its own connection wins.
    with pytest.raises(Conflict) as refused:
        agency.serve(LOC_B, "client-a")
    assert refused.value.code == "client_has_own_connection"
