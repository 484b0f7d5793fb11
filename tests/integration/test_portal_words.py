"""What the portal API says to people: the plan only to agency admins, words and advice for every
error code, consent-screen labels, conflicts before the click, and the agency's health view."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.domain.access import Level, Tier
from integrations.domain.connection import Connection, ErrorCode
from tests.support import seed
from tests.support.events import body_of, claims, http_event

Call = Callable[[dict[str, Any]], dict[str, Any]]
ADMIN = claims(sub="admin-1", agency_id="agency-1", client_id=None, role="agency_admin", permissions="[]")
MANAGER = claims(sub="user-1", agency_id="agency-1", client_id="client-a")
STAFF = claims(sub="staff-1", agency_id="agency-1", client_id=None, role="agency_staff")
PLAN_WORDS = ("starter", "growth", "enterprise", "plan", "tier")
GOOGLE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
GOOGLE_READ = "https://www.googleapis.com/auth/calendar.readonly"


def cards(call: Call, who: dict[str, Any], level: str, client_id: str | None = None) -> dict[str, Any]:
    query = {"level": level, **({"client_id": client_id} if client_id else {})}
    answer = call(http_event("GET", "/integrations", claims=who, query=query))
    assert answer["statusCode"] == 200, answer
    return {c["provider"]: c for c in body_of(answer)["integrations"]}


def change(connection: Connection, transition: Callable[[Connection], object]) -> Connection:
    """Apply a domain transition to a stored connection and save it."""
    connections, _ = seed.repositories()
    stored = connections.get(connection.id)
    assert stored is not None
    transition(stored)
    return connections.save(stored)


# --- the plan stays between the agency and the platform ---


def test_a_client_user_never_sees_the_agencys_plan_on_a_tier_gated_card(call: Call) -> None:
    seed.agency("agency-1", Tier.STARTER)

    hubspot = cards(call, MANAGER, "client")["hubspot"]

    assert hubspot["available"] is False
    assert hubspot["unavailable_code"] == "not_available"
    assert hubspot["unavailable_reason"] == "Not available. Ask your agency if you need it."
    assert hubspot["min_tier"] is None
    values = json.dumps([value for key, value in hubspot.items() if key != "min_tier"]).lower()
    assert not [word for word in PLAN_WORDS if word in values]


def test_no_card_of_a_client_user_carries_a_tier(call: Call) -> None:
    seed.agency("agency-1", Tier.STARTER)

    for level in ("client", "user"):
        for card in cards(call, MANAGER, level).values():
            assert card["min_tier"] is None
            assert card["unavailable_code"] in (None, "not_available")


def test_a_provider_the_agency_switched_off_reads_the_same_to_a_client(call: Call) -> None:
    seed.agency("agency-1", Tier.ENTERPRISE, enabled_providers=["ghl"])

    slack = cards(call, MANAGER, "client")["slack"]

    assert slack["unavailable_code"] == "not_available"
    assert slack["unavailable_reason"] == "Not available. Ask your agency if you need it."


def test_agency_staff_do_not_see_the_plan_either(call: Call) -> None:
    seed.agency("agency-1", Tier.STARTER, staff_personal_connections=True)

    for card in cards(call, STAFF, "user").values():
        assert card["min_tier"] is None


def test_an_agency_admin_sees_the_plan_that_would_unlock_a_card(call: Call) -> None:
    seed.agency("agency-1", Tier.STARTER)

    hubspot = cards(call, ADMIN, "client", client_id="client-a")["hubspot"]

    assert hubspot["available"] is False
    assert hubspot["unavailable_code"] == "tier_too_low"
    assert hubspot["unavailable_reason"] == "Available on the growth plan and above."
    assert hubspot["min_tier"] == "growth"


# --- status labels and errors in plain words ---


def test_cards_and_connections_carry_the_promised_status_labels(call: Call) -> None:
    seed.agency("agency-1")
    broken = seed.connection(provider="ghl")
    change(broken, lambda c: c.auth_failed(ErrorCode.REAUTH_REQUIRED, "invalid_grant", datetime.now(UTC)))
    syncing = seed.connection(provider="slack")
    change(syncing, lambda c: c.sync_started(datetime.now(UTC), datetime.now(UTC)))
    seed.connection(provider="calendly")

    shown = cards(call, MANAGER, "client")

    assert (shown["ghl"]["status"], shown["ghl"]["status_label"]) == ("error", "Error")
    assert shown["slack"]["status_label"] == "Syncing"
    assert shown["calendly"]["status_label"] == "Connected"
    assert shown["hubspot"]["status_label"] == "Not connected"
    assert shown["ghl"]["connections"][0]["status_label"] == "Error"


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_is_explained_in_words_with_advice(call: Call, code: ErrorCode) -> None:
    seed.agency("agency-1")
    conn = seed.connection(provider="ghl")
    now = datetime.now(UTC)
    transitions: dict[ErrorCode, Callable[[Connection], object]] = {
        ErrorCode.REAUTH_REQUIRED: lambda c: c.auth_failed(code, "invalid_grant (HTTP 400)", now),
        ErrorCode.MISSING_SCOPES: lambda c: c.auth_failed(code, "scopes withdrawn", now),
        ErrorCode.PROVIDER_UNAVAILABLE: lambda c: c.provider_failed("HTTP 503 from token endpoint", now, 1),
        ErrorCode.CONFIG_REQUIRED: lambda c: c.config_needed("Choose: pipeline_id", now),
        ErrorCode.SYNC_FAILED: lambda c: c.sync_failed("KeyError: 'contacts'", now),
    }
    change(conn, transitions[code])

    error = cards(call, MANAGER, "client")["ghl"]["connections"][0]["error"]

    assert error["code"] == code.value
    assert error["message"] and error["advice"]
    words = f"{error['message']} {error['advice']}"
    assert code.value not in words
    assert "_" not in words, "no code-like words in text for people"
    assert "HTTP" not in words and "KeyError" not in words


@pytest.mark.parametrize("code", [ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.SYNC_FAILED])
def test_failures_on_the_provider_side_advise_to_retry_then_ask_the_agency(
    call: Call, code: ErrorCode
) -> None:
    seed.agency("agency-1")
    conn = seed.connection(provider="ghl")
    now = datetime.now(UTC)
    if code is ErrorCode.SYNC_FAILED:
        change(conn, lambda c: c.sync_failed("boom", now))
    else:
        change(conn, lambda c: c.provider_failed("boom", now, 1))

    client_error = cards(call, MANAGER, "client")["ghl"]["connections"][0]["error"]
    admin_error = cards(call, ADMIN, "client", client_id="client-a")["ghl"]["connections"][0]["error"]

    assert "try again" in client_error["advice"].lower()
    assert client_error["advice"].endswith("if it keeps failing, contact your agency.")
    assert "contact your agency" not in admin_error["advice"]


def test_missing_scopes_name_the_consent_screens_boxes_not_scope_urls(call: Call) -> None:
    seed.agency("agency-1")
    conn = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1")

    def withdrawn(c: Connection) -> None:
        c.oauth_scopes = ["openid", GOOGLE_READ]
        c.auth_failed(ErrorCode.MISSING_SCOPES, "scopes withdrawn", datetime.now(UTC))

    change(conn, withdrawn)

    error = cards(call, MANAGER, "user")["google_calendar"]["connections"][0]["error"]

    assert error["missing"] == ["View and edit events on all your calendars"]
    assert "View and edit events on all your calendars" in error["message"]
    assert "googleapis" not in f"{error['message']} {error['advice']}"


def test_config_required_names_the_settings_by_their_labels(call: Call) -> None:
    seed.agency("agency-1")
    conn = seed.connection(provider="ghl")
    change(conn, lambda c: c.config_needed("Choose: pipeline_id, stage_id.", datetime.now(UTC)))

    error = cards(call, MANAGER, "client")["ghl"]["connections"][0]["error"]
    single = body_of(call(http_event("GET", f"/connections/{conn.id}", claims=MANAGER)))

    assert error["missing"] == ["Pipeline", "Stage"]
    assert error["message"] == "Settings needed before this works: Pipeline, Stage."
    assert single["error"] == error
    assert single["status_label"] == "Error"


def test_a_card_lists_the_consent_screens_labels_for_its_scopes(call: Call) -> None:
    seed.agency("agency-1")

    permissions = cards(call, MANAGER, "user")["google_calendar"]["permissions"]

    by_scope = {p["scope"]: p for p in permissions}
    assert by_scope[GOOGLE_EVENTS] == {
        "scope": GOOGLE_EVENTS,
        "label": "View and edit events on all your calendars",
        "required": True,
    }
    assert by_scope["openid"]["required"] is False


def test_a_conflicting_card_says_why_before_the_click(call: Call) -> None:
    seed.agency("agency-1")
    two_way = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1")

    shown = cards(call, MANAGER, "user")

    conflict = shown["google_calendar_oneway"]["conflict"]
    assert conflict["provider"] == "google_calendar"
    assert conflict["connection_id"] == two_way.id
    assert conflict["message"] == (
        "Google Calendar (one-way) cannot be used together with Google Calendar, which is connected. "
        "Disconnect Google Calendar first to use this one."
    )
    assert shown["google_calendar"]["conflict"] is None


def test_a_conflict_of_another_person_does_not_show_on_my_card(call: Call) -> None:
    seed.agency("agency-1")
    seed.connection(provider="google_calendar", level=Level.USER, user_id="someone-else")

    assert cards(call, MANAGER, "user")["google_calendar_oneway"]["conflict"] is None


# --- the agency's health view ---


def health(call: Call, **query: str) -> list[dict[str, Any]]:
    answer = call(http_event("GET", "/agency/health", claims=ADMIN, query=query))
    assert answer["statusCode"] == 200, answer
    items: list[dict[str, Any]] = body_of(answer)["items"]
    return items


def test_health_names_the_owner_and_separates_personal_connections(call: Call) -> None:
    client = seed.connection(provider="ghl", client_id="client-a")
    agency = seed.connection(provider="ghl", level=Level.AGENCY)
    contact = seed.connection(provider="gmail", level=Level.USER, client_id="client-a", user_id="user-1")
    staff = seed.connection(provider="gmail", level=Level.USER, client_id=None, user_id="staff-1")

    rows = {i["connection_id"]: i for i in health(call)}

    assert rows[client.id]["personal"] is False
    assert rows[client.id]["owner"] == {
        "kind": "client",
        "client_id": "client-a",
        "user_id": None,
        "group": None,
        "label": "Client client-a",
    }
    assert rows[agency.id]["personal"] is False
    assert rows[agency.id]["owner"]["kind"] == "agency"
    assert rows[contact.id]["personal"] is True
    assert rows[contact.id]["owner"]["group"] == "contact"
    assert rows[contact.id]["owner"]["label"] == "user-1 (contact at client-a)"
    assert rows[staff.id]["personal"] is True
    assert rows[staff.id]["owner"]["group"] == "staff"
    assert rows[staff.id]["owner"]["label"] == "staff-1 (agency staff)"
    assert rows[staff.id]["provider_name"] == "Gmail"


def test_health_warns_when_a_grant_is_about_to_lapse(call: Call) -> None:
    now = datetime.now(UTC)
    fresh = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1")
    stale = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-2")
    # Last renewed 170 days ago: Google ends grants unused for 180 days.
    change(stale, lambda c: setattr(c, "token_expires_at", now - timedelta(days=170)))

    rows = {i["connection_id"]: i for i in health(call)}

    assert rows[fresh.id]["grant"]["lapses_soon"] is False
    warned = rows[stale.id]["grant"]
    assert warned["lapses_soon"] is True
    lapses_at = datetime.fromisoformat(warned["lapses_at"])
    assert timedelta(days=9) < lapses_at - now <= timedelta(days=10)
    assert "Google Calendar ends access on" in warned["message"]


def test_health_says_a_grant_long_unrenewed_has_probably_lapsed(call: Call) -> None:
    conn = seed.connection(provider="ghl")
    change(conn, lambda c: setattr(c, "token_expires_at", datetime.now(UTC) - timedelta(days=400)))

    row = next(i for i in health(call) if i["connection_id"] == conn.id)

    assert row["grant"]["lapses_soon"] is True
    assert "probably ended access" in row["grant"]["message"]


def test_an_hourly_access_token_expiring_is_no_lapse_warning(call: Call) -> None:
    conn = seed.connection(provider="outlook_calendar", level=Level.USER, user_id="user-1")
    change(conn, lambda c: setattr(c, "token_expires_at", datetime.now(UTC) - timedelta(minutes=5)))

    row = next(i for i in health(call) if i["connection_id"] == conn.id)

    assert row["grant"]["lapses_soon"] is False


def test_grants_that_do_not_lapse_by_time_carry_no_lapse(call: Call) -> None:
    conn = seed.connection(provider="hubspot")
    change(conn, lambda c: setattr(c, "token_expires_at", datetime.now(UTC) - timedelta(days=900)))

    row = next(i for i in health(call) if i["connection_id"] == conn.id)

    assert row["grant"] is None


def test_health_explains_errors_in_words(call: Call) -> None:
    conn = seed.connection(provider="slack")
    change(conn, lambda c: c.auth_failed(ErrorCode.REAUTH_REQUIRED, "token_revoked", datetime.now(UTC)))

    row = next(i for i in health(call) if i["connection_id"] == conn.id)

    assert row["status_label"] == "Error"
    assert row["error"]["code"] == "reauth_required"
    assert row["error"]["message"].startswith("Slack no longer accepts this connection")
    assert "token_revoked" not in row["error"]["message"]
