"""Engine results as bus events: tenant and owner from the connection, declined events not busy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.sync.announcements import calendar_event_changed
from integrations.sync.calendar import CalendarEvent, MirrorChange
from integrations.sync.calendar_sync import EventChange, change_id

START = datetime(2026, 12, 1, 9, tzinfo=UTC)
CONNECTION = Connection(
    id="c1",
    provider="google_calendar",
    level=Level.USER,
    agency_id="a1",
    client_id="client-a",
    user_id="u1",
    account=ExternalAccount(id="g", label="g@example.com"),
)


def test_a_change_carries_the_tenant_the_appointment_and_a_stable_id() -> None:
    event = CalendarEvent(
        calendar_id="primary",
        external_id="e1",
        start=START,
        end=START + timedelta(hours=1),
        appointment_id="apt-7",
    )
    change = EventChange(MirrorChange.UPDATED, event, change_id("c1", MirrorChange.UPDATED, event))
    detail = calendar_event_changed(CONNECTION, change)
    assert (detail.agency_id, detail.client_id, detail.user_id) == ("a1", "client-a", "u1")
    assert (detail.change, detail.appointment_id, detail.change_id) == ("updated", "apt-7", change.change_id)


def test_a_declined_invitation_is_not_busy() -> None:
    event = CalendarEvent(
        calendar_id="primary", external_id="e2", start=START, end=START + timedelta(hours=1), declined=True
    )
    change = EventChange(MirrorChange.ADDED, event, change_id("c1", MirrorChange.ADDED, event))
    assert calendar_event_changed(CONNECTION, change).busy is False
