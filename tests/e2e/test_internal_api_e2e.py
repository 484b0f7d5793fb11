"""The platform's internal API through the whole local stack: SigV4 signed with the dev credentials,
as the platform would call it; a person's Google calendar (the sandbox) blocks availability and takes
the booking."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.local.stack import FAKE_CREDENTIALS, LocalStack
from tests.e2e.conftest import Api
from tests.e2e.test_sync_e2e import Person, eventually, later

pytestmark = pytest.mark.e2e


def signed_post(api: Api, stack: LocalStack, path: str, body: dict[str, Any]) -> requests.Response:
    """A POST signed as the platform signs it: SigV4, service execute-api, the dev credentials."""
    assert stack.resources is not None
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST", url=f"{api.base}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    credentials = Credentials(
        FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    SigV4Auth(credentials, "execute-api", stack.resources.region).add_auth(request)
    return api.http.post(f"{api.base}{path}", data=data, headers=dict(request.headers.items()), timeout=20)


@pytest.fixture
def person(api: Api, stack: LocalStack) -> Person:
    return Person(api, stack)


def _window(person: Person) -> dict[str, Any]:
    return {
        "agency_id": "demo-agency",
        "owners": [person.owner],
        "start": later(2, 0).isoformat(),
        "end": later(3, 0).isoformat(),
        "slot_minutes": 30,
        "time_zone": "UTC",
    }


def test_a_signed_platform_call_sees_the_persons_calendar_and_books_once(
    person: Person, api: Api, stack: LocalStack
) -> None:
    person.connect()
    eventually(lambda: person.view()["sync"]["last_sync_at"])
    dentist = person.creates_in_google("Dentist", later(2, 14))

    def busy_at_two() -> Any:
        answer = signed_post(api, stack, "/internal/availability", _window(person))
        assert answer.status_code == 200, answer.text
        return [b for b in answer.json()["busy"] if b["start"].startswith(later(2, 14).isoformat()[:16])]

    assert eventually(busy_at_two), "the Google event never blocked availability"
    available = signed_post(api, stack, "/internal/availability", _window(person)).json()
    assert available["state"] == "ok"
    assert later(2, 14).isoformat()[:16] not in [s["start"][:16] for s in available["free"]]

    booking = {
        "agency_id": "demo-agency",
        "owner": person.owner,
        "start": later(2, 16).isoformat(),
        "end": (later(2, 16) + timedelta(minutes=30)).isoformat(),
        "title": "Booked during a call",
        "time_zone": "America/New_York",
        "video": True,
        "idempotency_key": uuid.uuid4().hex,
    }
    booked = signed_post(api, stack, "/internal/bookings", booking)
    assert booked.status_code == 201, booked.text
    assert booked.json()["video_url"]
    again = signed_post(api, stack, "/internal/bookings", booking)
    assert (again.status_code, again.json()) == (200, booked.json())
    taken = signed_post(api, stack, "/internal/bookings", {**booking, "idempotency_key": uuid.uuid4().hex})
    assert taken.status_code == 409 and taken.json()["code"] == "slot_taken"
    on_dentist = {**booking, "start": later(2, 14).isoformat(), "idempotency_key": uuid.uuid4().hex}
    on_dentist["end"] = (later(2, 14) + timedelta(minutes=30)).isoformat()
    refused = signed_post(api, stack, "/internal/bookings", on_dentist)
    assert refused.status_code == 409 and refused.json()["details"]["conflict"]["start"].startswith(
        dentist["start"]["dateTime"][:16]
    )
    titles = [e.get("summary") for e in person.google_truth()]
    assert titles.count("Booked during a call") == 1 and titles.count("Dentist") == 1


@pytest.mark.parametrize("path", ["/internal/availability", "/internal/bookings"])
def test_internal_routes_refuse_a_portal_jwt_and_unsigned_calls_before_any_function_runs(
    api: Api, stack: LocalStack, path: str
) -> None:
    assert stack.lambdas is not None
    hosted = stack.lambdas.functions["InternalFunction"]
    before = hosted.invocations

    with_jwt = api.call("POST", path, identity="agency-admin", json={"agency_id": "demo-agency"})
    unsigned = api.call("POST", path, json={"agency_id": "demo-agency"})

    assert (with_jwt.status_code, with_jwt.json()) == (403, {"message": "Forbidden"})
    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})
    assert hosted.invocations == before


def test_a_signature_by_other_credentials_is_refused(api: Api, stack: LocalStack) -> None:
    assert stack.resources is not None
    data = b"{}"
    request = AWSRequest(method="POST", url=f"{api.base}/internal/availability", data=data)
    SigV4Auth(Credentials("AKIDSOMEONE", "guessed"), "execute-api", stack.resources.region).add_auth(request)

    answer = api.http.post(
        f"{api.base}/internal/availability", data=data, headers=dict(request.headers.items()), timeout=20
    )

    assert answer.status_code == 403
    assert answer.json() == {"message": "The security token included in the request is invalid."}
