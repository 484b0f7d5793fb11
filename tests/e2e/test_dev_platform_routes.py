"""Acting as the platform through the local stack: `POST /dev/platform-events` and `GET /dev/events`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def sample_detail(name: str) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))["detail"]
    return detail


def listed(api: Api, **query: Any) -> list[dict[str, Any]]:
    answer = api.call("GET", "/dev/events", params=query)
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def publish(api: Api, detail_type: Any, detail: Any) -> Any:
    return api.call("POST", "/dev/platform-events", json={"detail_type": detail_type, "detail": detail})


def test_a_published_appointment_is_accepted_and_listed_as_sent_by_the_dev_route(api: Api) -> None:
    # Given an appointment as the platform would publish it
    detail = {**sample_detail("event_appointment_upserted.json"), "appointment_id": f"apt-{uuid.uuid4().hex}"}

    # When it is published through the dev route
    answer = publish(api, "Appointment Upserted", detail)

    # Then it is accepted with the bus's event id and listed, newest first, as an inbound platform event
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["id"]
    assert answer.json() == {"id": event_id, "detail_type": "Appointment Upserted", "source": "platform"}
    [first] = listed(api, limit=1)
    assert first["id"] == event_id
    assert first["origin"] == "dev_route"
    assert first["direction"] == "in"
    assert first["source"] == "platform"
    assert first["detail"] == detail


def test_a_published_platform_event_reaches_the_worker_through_the_templates_rule(api: Api) -> None:
    # Given a new agency (on the default plan) and its admin
    agency = f"dev-plan-{uuid.uuid4().hex[:8]}"
    admin = {
        "sub": f"{agency}-admin",
        "agency_id": agency,
        "role": "agency_admin",
        "permissions": [VIEW, MANAGE],
    }

    # When the plan change is published through the dev route
    answer = publish(api, "Agency Plan Changed", {"agency_id": agency, "tier": "enterprise"})

    # Then the sync worker applied it, as it would an event from the platform
    assert answer.status_code == 202, answer.text

    def tier() -> str | None:
        settings = api.call("GET", "/agency/settings", identity=admin)
        value = settings.json().get("tier") if settings.status_code == 200 else None
        return value if value == "enterprise" else None

    assert eventually(tier) == "enterprise"


def test_an_event_the_service_publishes_is_listed_as_outbound(api: Api) -> None:
    # Given a client user of a fresh client
    client = f"client-{uuid.uuid4().hex[:8]}"
    person = {
        "sub": f"{client}-manager",
        "agency_id": "demo-agency",
        "client_id": client,
        "role": "client_user",
        "permissions": [VIEW, MANAGE],
    }

    # When they reserve a BCC logging address (the service announces the new connection on the bus)
    connected = api.call("POST", "/integrations/bcc_email/connect", identity=person, json={"level": "client"})
    assert connected.status_code == 201, connected.text
    connection_id = connected.json()["id"]

    # Then the service's own event shows up in the list, captured from the bus
    def announced() -> dict[str, Any] | None:
        for event in listed(api, detail_type="Integration Connected", limit=500):
            if event["detail"].get("connection_id") == connection_id:
                return event
        return None

    event = eventually(announced)
    assert event is not None, "Integration Connected never reached GET /dev/events"
    assert event["source"] == "integrations"
    assert event["origin"] == "service"
    assert event["direction"] == "out"
    assert event["detail"]["client_id"] == client
    assert event["id"] and event["time"]


def test_the_list_filters_by_detail_type_and_honours_the_limit(api: Api) -> None:
    agency = f"dev-filter-{uuid.uuid4().hex[:8]}"
    for tier in ("growth", "enterprise", "starter"):
        assert publish(api, "Agency Plan Changed", {"agency_id": agency, "tier": tier}).status_code == 202
    publish(api, "Appointment Deleted", sample_detail("event_appointment_deleted.json"))

    plans = listed(api, detail_type="Agency Plan Changed", limit=2)

    assert [e["detail"]["tier"] for e in plans] == ["starter", "enterprise"]
    deletions = listed(api, detail_type="Appointment Deleted")
    assert deletions
    assert {e["detail_type"] for e in deletions} == {"Appointment Deleted"}


def test_an_email_send_request_without_a_body_is_refused_naming_why(api: Api) -> None:
    detail = sample_detail("event_email_send_requested.json")
    detail["text"] = detail["html"] = ""

    answer = publish(api, "Email Send Requested", detail)

    assert answer.status_code == 422, answer.text
    assert "a mail needs a text or an HTML body" in answer.text


def test_a_call_completed_without_its_start_time_is_refused_naming_it(api: Api) -> None:
    detail = sample_detail("event_call_completed.json")
    del detail["started_at"]

    answer = publish(api, "Call Completed", detail)

    assert answer.status_code == 422
    assert answer.json()["details"] == [{"field": "detail.started_at", "message": "is required"}]


def test_an_unknown_event_type_names_the_accepted_ones(api: Api) -> None:
    answer = publish(api, "Appointment Moved", {"appointment_id": "a"})

    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "unknown_event_type"
    assert "Appointment Moved" in body["message"]
    assert body["details"]["accepted"] == [
        "Agency Plan Changed",
        "Appointment Deleted",
        "Appointment Upserted",
        "Call Completed",
        "Contact Deleted",
        "Contact Upserted",
        "Email Send Requested",
    ]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"end": "2026-12-03T14:00:00+01:00"}, "detail", "end must be after start"),
        ({"time_zone": "Mars/Olympus"}, "detail.time_zone", "unknown time zone"),
        ({"start": "2026-12-03T15:00:00"}, "detail.start", "should have timezone info"),
        ({"version": -1}, "detail.version", "greater than or equal to 0"),
        ({"colour": "red"}, "detail.colour", "is not an accepted field"),
        ({"owner": {"kind": "staff", "agency_id": "demo-agency"}}, "detail.owner", "names the user"),
    ],
)
def test_an_invalid_appointment_is_refused_with_the_field_and_the_reason(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    appointment_id = f"apt-{uuid.uuid4().hex}"
    detail = {**sample_detail("event_appointment_upserted.json"), "appointment_id": appointment_id, **change}

    answer = publish(api, "Appointment Upserted", detail)

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "invalid_detail"
    assert any(d["field"] == field and words in d["message"] for d in body["details"]), body
    assert words in body["message"]
    # Nothing was published.
    assert not [e for e in listed(api, limit=500) if e["detail"].get("appointment_id") == appointment_id]


def test_a_missing_field_is_named(api: Api) -> None:
    detail = sample_detail("event_appointment_deleted.json")
    del detail["version"]

    answer = publish(api, "Appointment Deleted", detail)

    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_detail"
    assert {"field": "detail.version", "message": "is required"} in answer.json()["details"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 422, "invalid_request"),
        (b"[]", 422, "invalid_request"),
        (b'{"detail": {}}', 422, "invalid_request"),
        (b'{"detail_type": "Agency Plan Changed", "detail": "growth"}', 422, "invalid_request"),
        (b'{"detail_type": "Agency Plan Changed", "detail": {}, "source": "me"}', 422, "invalid_request"),
    ],
)
def test_a_malformed_request_gets_a_stable_code(api: Api, body: bytes, status: int, code: str) -> None:
    answer = api.call("POST", "/dev/platform-events", data=body, headers={"Content-Type": "application/json"})

    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert answer.json()["message"]


@pytest.mark.parametrize("limit", ["0", "501", "ten", "-1", "²", "9" * 5000])
def test_a_bad_limit_is_refused(api: Api, limit: str) -> None:
    answer = api.call("GET", "/dev/events", params={"limit": limit})

    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_request"
    assert answer.json()["details"][0]["field"] == "limit"


def test_each_dev_route_takes_one_method(api: Api) -> None:
    posted = api.call("POST", "/dev/events")
    fetched = api.call("GET", "/dev/platform-events")

    assert (posted.status_code, posted.headers["Allow"]) == (405, "GET")
    assert (fetched.status_code, fetched.headers["Allow"]) == (405, "POST")
