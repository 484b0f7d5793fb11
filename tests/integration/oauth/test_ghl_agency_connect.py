"""An agency admin connecting GoHighLevel at agency level through the whole OAuth round trip gets a
Company token (the catalog's `token_params_by_level`), which lists the company's locations; a client
connecting gets a Location token as before."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.sandbox.ghl_agency import DEFAULT_LOCATIONS, SANDBOX_COMPANY
from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.container import Container, build_vault
from integrations.domain.access import Level, Permission, Role
from integrations.domain.authorization import Scope
from integrations.domain.principal import Principal
from integrations.observability import get_logger
from integrations.providers.support import answer_fact
from integrations.store.connections import ConnectionRepository
from integrations.store.vault import credential_ref
from tests.integration.oauth.conftest import AGENCY_ADMIN, Browser, sandbox_requests

pytestmark = pytest.mark.usefixtures("oauth_env")

ADMIN = Principal(
    sub="admin-1",
    agency_id="agency-1",
    role=Role.AGENCY_ADMIN,
    permissions=frozenset({Permission.VIEW, Permission.MANAGE}),
)


def _ghl_at(level: Level, client_id: str | None = None) -> Any:
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    [connection] = [
        c for c in repo.list_for_scope(Scope("agency-1", level, client_id, None)) if c.provider == "ghl"
    ]
    return connection


def _user_types_sent(sandbox: str, grant_type: str) -> list[str]:
    found = sandbox_requests(sandbox, app="ghl", grant_type=grant_type)
    return [str((entry.get("form") or {}).get("user_type")) for entry in found]


def test_an_agency_level_connect_gets_a_company_token_that_lists_locations(
    browser: Browser, oauth_env: dict[str, str]
) -> None:
    # Given an agency admin, when they connect GoHighLevel for the agency through the portal
    done = browser.connect("ghl", who=AGENCY_ADMIN, level="agency")

    # Then GHL was asked for a Company token and the connection is the company
    assert done.result() == {"integration": "ghl", "result": "connected"}
    assert _user_types_sent(oauth_env["sandbox"], "authorization_code") == ["Company"]
    connection = _ghl_at(Level.AGENCY)
    assert connection.account.id == f"company:{SANDBOX_COMPANY}"
    stored = build_vault(Settings.from_env()).get(credential_ref(connection))
    assert stored is not None
    assert answer_fact(stored, "userType") == "Company"
    assert answer_fact(stored, "companyId") == SANDBOX_COMPANY
    assert not answer_fact(stored, "locationId")

    # and the company token lists the company's locations (another agency's are not among them)
    portal = Container(Settings.from_env()).portal_service(get_logger("test"))
    listed = {a.id for a in portal.sub_accounts(ADMIN, connection.id).sub_accounts}
    assert listed == {k for k, (company, _) in DEFAULT_LOCATIONS.items() if company == SANDBOX_COMPANY}


def test_a_company_token_refreshes_as_a_company_token(browser: Browser, oauth_env: dict[str, str]) -> None:
    browser.connect("ghl", who=AGENCY_ADMIN, level="agency")
    connection = _ghl_at(Level.AGENCY)
    container = Container(Settings.from_env())

    container.token_manager.refresh_now(connection)

    assert _user_types_sent(oauth_env["sandbox"], "refresh_token") == ["Company"]
    stored = build_vault(Settings.from_env()).get(credential_ref(connection))
    assert stored is not None and answer_fact(stored, "userType") == "Company"


def test_a_client_level_connect_still_gets_a_location_token(
    browser: Browser, oauth_env: dict[str, str]
) -> None:
    browser.connect("ghl")

    assert _user_types_sent(oauth_env["sandbox"], "authorization_code") == ["Location"]
    connection = _ghl_at(Level.CLIENT, "client-a")
    stored = build_vault(Settings.from_env()).get(credential_ref(connection))
    assert stored is not None and answer_fact(stored, "userType") == "Location"
    assert answer_fact(stored, "locationId") == connection.account.id
