"""The local event log behind `GET /dev/events`, and which platform events the dev route takes."""

from __future__ import annotations

from infra.local.dev_bus import EventLog, LoggedEvent, logged_from_bus, platform_detail_types
from infra.local.resources import functions, load_template


def event(number: int, detail_type: str = "Integration Connected") -> LoggedEvent:
    return LoggedEvent(
        id=f"e{number}", time="", source="integrations", detail_type=detail_type, detail={}, origin="service"
    )


def test_the_log_keeps_the_most_recent_events_newest_first() -> None:
    log = EventLog(capacity=3)

    for number in range(5):
        log.add(event(number))

    assert [e.id for e in log.recent(10)] == ["e4", "e3", "e2"]
    assert [e.id for e in log.recent(2)] == ["e4", "e3"]


def test_the_log_filters_before_it_limits() -> None:
    log = EventLog()
    log.add(event(1, "Integration Errored"))
    for number in range(2, 6):
        log.add(event(number))

    assert [e.id for e in log.recent(1, "Integration Errored")] == ["e1"]


def test_an_eventbridge_envelope_becomes_an_outbound_entry() -> None:
    envelope = {
        "id": "abc",
        "time": "2030-01-01T00:00:00Z",
        "source": "integrations",
        "detail-type": "Appointment Pushed",
        "detail": {"appointment_id": "a"},
    }

    entry = logged_from_bus(envelope).to_json()

    assert entry == {
        "id": "abc",
        "time": "2030-01-01T00:00:00Z",
        "source": "integrations",
        "detail_type": "Appointment Pushed",
        "direction": "out",
        "origin": "service",
        "detail": {"appointment_id": "a"},
    }


def test_the_accepted_platform_events_are_the_templates_rule() -> None:
    accepted = platform_detail_types(functions(load_template()).values())

    assert accepted == (
        "Agency Plan Changed",
        "Appointment Deleted",
        "Appointment Upserted",
        "Call Completed",
        "Contact Deleted",
        "Contact Upserted",
        "Email Send Requested",
    )
