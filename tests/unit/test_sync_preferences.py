"""Sync preferences: read from the config with the catalog's defaults, validated by the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.catalog import load_catalog
from integrations.catalog.config_validation import validate_config
from integrations.domain.access import Level, Role
from integrations.domain.agency import AgencySettings, personal_group
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.errors import ValidationFailed
from integrations.sync.preferences import SyncPreferences, preferences_of

TWO_WAY = ("google_calendar", "outlook_calendar", "icloud_calendar")


def _connection(config: dict[str, Any] | None = None, client_id: str | None = "client-a") -> Connection:
    return Connection(
        id="c1",
        provider="google_calendar",
        level=Level.USER,
        agency_id="agency-1",
        client_id=client_id,
        user_id="user-1",
        account=ExternalAccount(id="a", label="a"),
        config=config or {},
    )


def test_an_empty_config_keeps_todays_behaviour() -> None:
    prefs = preferences_of(_connection())

    assert prefs == SyncPreferences()
    assert prefs.read_set("primary") == ["primary"]
    assert prefs.conflict_set("primary") == ["primary"]
    assert all(prefs.pushes_type(kind) for kind in ("appointment", "task", "blocked_time"))


@pytest.mark.parametrize("provider", TWO_WAY)
def test_the_catalog_defaults_are_the_engines_defaults(provider: str) -> None:
    fields = {f.name: f for f in load_catalog().get(provider).config_schema}
    defaults = SyncPreferences()

    assert fields["push"].default is defaults.push
    assert fields["fetch"].default is defaults.fetch
    assert fields["conflict"].default is defaults.conflict
    assert fields["show_as"].default == defaults.show_as
    push_types = fields["push_types"].default
    assert isinstance(push_types, list) and set(push_types) == defaults.push_types
    assert fields["window_past_days"].default == defaults.past_days
    assert fields["window_future_days"].default == defaults.future_days
    assert all(fields[name].advanced for name in fields if name not in ("calendar_id", "calendar_url"))


def test_conflict_calendars_replace_the_synced_calendar_and_are_read_with_it() -> None:
    prefs = preferences_of(_connection({"conflict_calendars": ["team@example.com", "primary"]}))

    assert prefs.conflict_set("primary") == ["team@example.com", "primary"]
    assert prefs.read_set("primary") == ["primary", "team@example.com"]


def test_fetch_off_still_reads_the_conflict_calendars_and_both_off_read_nothing() -> None:
    assert preferences_of(_connection({"fetch": False})).read_set("primary") == ["primary"]
    assert preferences_of(_connection({"fetch": False, "conflict": False})).read_set("primary") == []


def test_push_off_or_an_unchosen_type_pushes_nothing() -> None:
    assert not preferences_of(_connection({"push": False})).pushes_type("appointment")
    chosen = preferences_of(_connection({"push_types": ["task"]}))
    assert chosen.pushes_type("task") and not chosen.pushes_type("appointment")


def test_the_window_is_days_around_now() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    low, high = preferences_of(_connection({"window_past_days": 0, "window_future_days": 7})).window(now)
    assert (low, high) == (now, now + timedelta(days=7))


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"push": "yes"}, "push"),
        ({"push_types": ["meeting"]}, "push_types"),
        ({"push_types": "task"}, "push_types"),
        ({"show_as": "private"}, "show_as"),
        ({"window_future_days": 366}, "window_future_days"),
        ({"window_past_days": -1}, "window_past_days"),
        ({"window_past_days": True}, "window_past_days"),
        ({"conflict_calendars": ["a", "a"]}, "conflict_calendars"),
        ({"conflict_calendars": [""]}, "conflict_calendars"),
    ],
)
def test_bad_preferences_are_refused_naming_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_config(load_catalog().get("google_calendar"), config)
    assert [p["field"] for p in refused.value.details or []] == [field]


def test_good_preferences_are_kept() -> None:
    config = {
        "push": False,
        "fetch": True,
        "conflict": True,
        "conflict_calendars": ["primary", "team@example.com"],
        "push_types": ["appointment"],
        "show_as": "busy",
        "window_past_days": 7,
        "window_future_days": 90,
    }
    assert validate_config(load_catalog().get("google_calendar"), config) == config


def test_the_one_way_calendar_takes_only_push_preferences() -> None:
    names = [f.name for f in load_catalog().get("google_calendar_oneway").config_schema]
    assert names == ["calendar_id", "push", "push_types"]


@pytest.mark.parametrize(
    ("client_id", "settings", "stopped"),
    [
        (None, {"staff_personal_connections": False}, True),
        (None, {"contact_personal_connections": False}, False),
        ("client-a", {"contact_personal_connections": False}, True),
        ("client-a", {"staff_personal_connections": False}, False),
        ("client-a", {}, False),
    ],
)
def test_the_agency_switch_stops_its_own_group(
    client_id: str | None, settings: dict[str, bool], stopped: bool
) -> None:
    agency = AgencySettings(agency_id="agency-1", **settings)
    assert agency.stops(_connection(client_id=client_id)) is stopped


@pytest.mark.parametrize(
    ("role", "switch"),
    [
        (Role.AGENCY_ADMIN, "staff_personal_connections"),
        (Role.AGENCY_STAFF, "staff_personal_connections"),
        (Role.CLIENT_USER, "contact_personal_connections"),
        (Role.PROSPECT, "contact_personal_connections"),
    ],
)
def test_the_recorded_role_says_which_switch_stops_a_connection(role: Role, switch: str) -> None:
    # The role decides, whatever client the connection was stored under.
    for client_id in (None, "client-a"):
        mine = _connection(client_id=client_id).model_copy(update={"owner_role": role})
        for name in ("staff_personal_connections", "contact_personal_connections"):
            off = AgencySettings(agency_id="agency-1", **{name: False})
            assert off.stops(mine) is (name == switch), (client_id, name)


def test_a_connection_without_a_role_keeps_the_grouping_by_client() -> None:
    assert personal_group(_connection(client_id=None)) == "staff"
    assert personal_group(_connection(client_id="client-a")) == "contact"


def test_no_agency_switch_touches_client_calendars() -> None:
    shared = _connection().model_copy(update={"level": Level.CLIENT, "user_id": None})
    off = AgencySettings(
        agency_id="agency-1", staff_personal_connections=False, contact_personal_connections=False
    )
    assert not off.stops(shared)
