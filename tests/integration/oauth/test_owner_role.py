"""A person's own connection records its owner's verified role at connect time, and the agency
switch that gates the connect button is the one that pauses its sync (README "The agency's switches")."""

from __future__ import annotations

from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.domain.access import Level, Role, Tier
from integrations.domain.agency import AgencySettings
from integrations.domain.authorization import Scope
from integrations.domain.connection import Connection
from integrations.store.connections import ConnectionRepository
from tests.integration.oauth.conftest import AGENCY_ADMIN, CLIENT_USER, Browser
from tests.support import seed
from tests.support.events import claims, http_event

pytestmark = pytest.mark.usefixtures("oauth_env")

PROSPECT = claims(sub="lead-1", agency_id="agency-1", client_id="client-a", role="prospect", permissions=[])
STAFF = claims(sub="staff-1", agency_id="agency-1", client_id=None, role="agency_staff", permissions=[])
APPLE_ID = "alex@icloud.example"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


def personal(who: dict[str, Any], provider: str) -> Connection:
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    scope = Scope(who["agency_id"], Level.USER, who.get("client_id"), who["sub"])
    [connection] = [c for c in repo.list_for_scope(scope) if c.provider == provider]
    return connection


@pytest.mark.parametrize(
    ("who", "role"),
    [(CLIENT_USER, Role.CLIENT_USER), (PROSPECT, Role.PROSPECT), (STAFF, Role.AGENCY_STAFF)],
)
def test_an_oauth_connect_records_the_role_through_the_session(
    browser: Browser, who: dict[str, Any], role: Role
) -> None:
    # Given a person who connects their own Google calendar (the callback carries no JWT)
    done = browser.connect("google_calendar", who=who, level="user")

    # Then the connection knows the role their verified claims had when they started
    assert done.result()["result"] == "connected"
    assert personal(who, "google_calendar").owner_role is role


def test_an_icloud_connect_records_the_callers_role(browser: Browser) -> None:
    body = {"apple_id": APPLE_ID, "app_password": APP_PASSWORD}
    answer = browser.call(
        http_event("POST", "/integrations/icloud_calendar/connect", claims=PROSPECT, body=body)
    )

    assert answer.status == 201
    assert personal(PROSPECT, "icloud_calendar").owner_role is Role.PROSPECT


def test_reconnecting_a_connection_made_before_roles_records_the_role(browser: Browser) -> None:
    # Given an iCloud connection stored without a role (made before roles were recorded)
    body = {"apple_id": APPLE_ID, "app_password": APP_PASSWORD}
    event = http_event("POST", "/integrations/icloud_calendar/connect", claims=PROSPECT, body=body)
    browser.call(event)
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    old = personal(PROSPECT, "icloud_calendar")
    old.owner_role = None
    repo.save(old)
    assert personal(PROSPECT, "icloud_calendar").owner_role is None

    # When its owner connects the same account again, the same connection learns the role
    again = browser.call(event)

    assert again.status == 200, again.body
    reconnected = personal(PROSPECT, "icloud_calendar")
    assert reconnected.id == old.id
    assert reconnected.owner_role is Role.PROSPECT


def test_a_bcc_address_records_the_callers_role(browser: Browser) -> None:
    answer = browser.call(
        http_event("POST", "/integrations/bcc_email/connect", claims=STAFF, body={"level": "user"})
    )

    assert answer.status == 201, answer.body
    assert personal(STAFF, "bcc_email").owner_role is Role.AGENCY_STAFF


def test_a_client_connection_records_no_role(browser: Browser) -> None:
    # The agency admin connects for the client: nobody in particular owns it, no switch covers it.
    done = browser.connect("slack", who=AGENCY_ADMIN, level="client", client_id="client-a")

    assert done.result()["result"] == "connected"
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    [slack] = [
        c
        for c in repo.list_for_scope(Scope("agency-1", Level.CLIENT, "client-a", None))
        if c.provider == "slack"
    ]
    assert slack.owner_role is None


@pytest.mark.parametrize(
    ("who", "switch"),
    [
        (CLIENT_USER, "contact_personal_connections"),
        (PROSPECT, "contact_personal_connections"),
        (STAFF, "staff_personal_connections"),
    ],
)
def test_the_switch_that_hides_the_button_is_the_one_that_pauses_sync(
    browser: Browser, who: dict[str, Any], switch: str
) -> None:
    # Given a person's connection made while every switch is on
    browser.connect("google_calendar", who=who, level="user")
    connection = personal(who, "google_calendar")

    # When the agency turns one switch off, the button and the sync both follow that switch only
    for name in ("staff_personal_connections", "contact_personal_connections"):
        off = AgencySettings(agency_id="agency-1", **{name: False})
        assert off.stops(connection) is (name == switch)
    seed.agency("agency-1", Tier.GROWTH, **{switch: False})
    refused = browser.start("google_calendar", who=who, level="user")
    assert refused.status == 403
    assert refused.body["code"] == switch.replace("personal_connections", "personal_connections_disabled")
