"""The internal function's routes as API Gateway hands them over: the IAM identity checked, bodies
validated, answers shaped (DynamoDB in moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.sync.calendar import CalendarEvent, MirrorEntry
from tests.support.events import body_of, claims, http_event
from tests.support.functions import load_handler
from tests.support.lambda_context import LambdaContextStub

EVENTS = Path(__file__).resolve().parents[2] / "events"
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
OWNER = {"kind": "client_user", "agency_id": "agency-1", "client_id": "client-a", "user_id": "user-1"}
IAM = {
    "iam": {
        "accessKey": "AKIDPLATFORM",
        "accountId": "123456789012",
        "callerId": "AIDAPLATFORM",
        "principalOrgId": None,
        "userArn": "arn:aws:iam::123456789012:user/platform",
        "userId": "AIDAPLATFORM",
    }
}


@pytest.fixture
def internal(aws: Any) -> ModuleType:
    return load_handler("internal")


def _call(module: ModuleType, path: str, body: Any, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    event = http_event("POST", path, body=body)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    answer: dict[str, Any] = module.handler(event, LambdaContextStub())
    return answer


def _availability(**changes: Any) -> dict[str, Any]:
    return {
        "agency_id": "agency-1",
        "owners": [OWNER],
        "start": START.isoformat(),
        "end": (START + timedelta(hours=4)).isoformat(),
        "slot_minutes": 60,
        "time_zone": "UTC",
        **changes,
    }


def _seed_busy(owner: dict[str, Any], connection_id: str) -> None:
    container = Container(Settings.from_env())
    container.connections.create(
        Connection(
            id=connection_id,
            provider="google_calendar",
            level=Level.USER,
            agency_id=owner["agency_id"],
            client_id=owner["client_id"],
            user_id=owner["user_id"],
            account=ExternalAccount(id=f"acct-{connection_id}", label="x"),
            last_sync_at=datetime.now(UTC),
        )
    )
    event = CalendarEvent(
        calendar_id="primary", external_id="e1", start=START, end=START + timedelta(hours=1)
    )
    container.mirror.put_many(connection_id, [MirrorEntry(event=event, change_hash=event.change_hash())])


def test_availability_answers_the_platform_with_busy_free_and_state(internal: ModuleType) -> None:
    _seed_busy(OWNER, "conn-1")

    answer = _call(internal, "/internal/availability", _availability(), {**IAM})

    assert answer["statusCode"] == 200, answer
    body = body_of(answer)
    assert body["state"] == "ok" and body["reasons"] == []
    assert [datetime.fromisoformat(b["start"]) for b in body["busy"]] == [START]
    assert [datetime.fromisoformat(s["start"]) for s in body["free"]] == [
        START + timedelta(hours=h) for h in (1, 2, 3)
    ]
    assert body["owners"][0]["owner"] == OWNER


@pytest.mark.parametrize(
    "authorizer",
    [None, {"jwt": {"claims": claims(agency_id="agency-1"), "scopes": None}}, {"iam": {"accessKey": ""}}],
    ids=["no identity", "a portal JWT", "an empty IAM identity"],
)
@pytest.mark.parametrize("path", ["/internal/availability", "/internal/bookings"])
def test_internal_routes_never_answer_without_an_iam_identity(
    internal: ModuleType, authorizer: dict[str, Any] | None, path: str
) -> None:
    answer = _call(internal, path, _availability(), authorizer)

    assert answer["statusCode"] == 403
    assert body_of(answer)["code"] == "internal_only"


def test_an_owner_of_another_agency_is_refused_before_anything_is_read(internal: ModuleType) -> None:
    stranger = {**OWNER, "agency_id": "agency-2"}
    _seed_busy(stranger, "conn-2")

    answer = _call(internal, "/internal/availability", _availability(owners=[stranger]), IAM)

    assert answer["statusCode"] == 422
    assert "agency_id" in body_of(answer)["message"]


@pytest.mark.parametrize(
    "changes",
    [
        {"end": (START + timedelta(days=63)).isoformat()},
        {"time_zone": "Mars/Olympus"},
        {"start": "2026-12-01T09:00:00"},
        {"working_hours": [{"day": "funday", "start": "09:00", "end": "17:00"}]},
        {"slot_minutes": 1},
    ],
    ids=["window too long", "unknown zone", "no offset", "bad weekday", "slot too short"],
)
def test_a_bad_availability_request_is_a_422_with_a_code(
    internal: ModuleType, changes: dict[str, Any]
) -> None:
    answer = _call(internal, "/internal/availability", _availability(**changes), IAM)

    assert answer["statusCode"] == 422
    assert body_of(answer)["code"] in ("invalid_request", "malformed_body", "validation_failed")


def test_a_booking_without_a_calendar_says_so(internal: ModuleType) -> None:
    body = {
        "agency_id": "agency-1",
        "owner": OWNER,
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=30)).isoformat(),
        "title": "Call",
        "time_zone": "UTC",
        "idempotency_key": "key-00000001",
    }

    answer = _call(internal, "/internal/bookings", body, IAM)

    assert answer["statusCode"] == 409
    assert body_of(answer)["code"] == "no_calendar"


def test_the_availability_sample_event_is_answered(internal: ModuleType) -> None:
    event = json.loads((EVENTS / "internal_availability.json").read_text())

    answer: dict[str, Any] = internal.handler(event, LambdaContextStub())

    assert answer["statusCode"] == 200, answer
    # 09:00-17:00 New York on a day with nothing booked: sixteen half-hour slots.
    assert len(body_of(answer)["free"]) == 16


def test_the_booking_sample_event_reaches_the_booking_rules(internal: ModuleType) -> None:
    event = json.loads((EVENTS / "internal_booking.json").read_text())

    answer: dict[str, Any] = internal.handler(event, LambdaContextStub())

    # No calendar is linked in an empty world: the sample's body passed validation.
    assert (answer["statusCode"], body_of(answer)["code"]) == (409, "no_calendar")


def test_a_scheduling_link_for_another_tenants_connection_is_not_found(internal: ModuleType) -> None:
    _seed_busy({**OWNER, "agency_id": "agency-2"}, "conn-other")

    answer = _call(
        internal,
        "/internal/scheduling-links",
        {"agency_id": "agency-1", "connection_id": "conn-other"},
        {**IAM},
    )

    assert answer["statusCode"] == 404, answer
    assert body_of(answer)["code"] == "connection_not_found"


def test_a_scheduling_link_needs_an_iam_identity_and_a_valid_body(internal: ModuleType) -> None:
    refused = _call(internal, "/internal/scheduling-links", {"agency_id": "agency-1"}, None)
    invalid = _call(internal, "/internal/scheduling-links", {"agency_id": "agency-1", "extra": 1}, {**IAM})

    assert refused["statusCode"] == 403
    assert invalid["statusCode"] == 422 and body_of(invalid)["code"] == "invalid_request"
