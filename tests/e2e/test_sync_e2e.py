"""Two-way Google Calendar sync through the whole local stack, as a person and the platform use it:
the portal's routes, the dev routes that act as the platform, and the sandbox acting as the person
in Google's own UI."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from infra.local.stack import LocalStack
from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.e2e.test_oauth_flow import card, consent
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


class Person:
    """A client user with a personal Google Calendar, connected through the portal."""

    def __init__(self, api: Api, stack: LocalStack) -> None:
        assert stack.urls is not None
        self.api = api
        self.sandbox = stack.urls.sandbox
        self.http = requests.Session()
        self.http.trust_env = False
        tag = uuid.uuid4().hex[:8]
        self.account = f"sync-{tag}@example.com"
        self.identity = {
            "sub": f"user-{tag}",
            "agency_id": "demo-agency",
            "client_id": f"client-{tag}",
            "role": "client_user",
            "permissions": [VIEW, MANAGE],
        }
        self.owner = {
            "kind": "client_user",
            "agency_id": "demo-agency",
            "client_id": self.identity["client_id"],
            "user_id": self.identity["sub"],
        }
        self.connection_id = ""

    def connect(self) -> None:
        start = self.api.call(
            "POST",
            "/oauth/google_calendar/start",
            identity=self.identity,
            json={"level": "user", "return_to": f"{self.api.base}/portal/"},
        )
        assert start.status_code == 200, start.text
        assert consent(self.api, start.json()["redirect_url"], account=self.account).status_code == 302
        [listed] = card(self.api, self.identity, "google_calendar", level="user")["connections"]
        self.connection_id = listed["id"]

    def view(self) -> dict[str, Any]:
        answer = self.api.call("GET", f"/connections/{self.connection_id}", identity=self.identity)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.api.call(
            "POST", f"/connections/{self.connection_id}{path}", identity=self.identity, **kwargs
        )

    # --- as the person, in Google's UI ---

    def creates_in_google(self, summary: str, start: datetime) -> dict[str, Any]:
        answer = self.http.post(
            f"{self.sandbox}/_sandbox/google/calendars/primary/events",
            json={
                "account": self.account,
                "summary": summary,
                "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def google_truth(self) -> list[dict[str, Any]]:
        answer = self.http.get(
            f"{self.sandbox}/_sandbox/google/calendars/primary/events",
            params={"account": self.account},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        events: list[dict[str, Any]] = answer.json()["events"]
        return events

    def ours_in_google(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for event in self.google_truth():
            private = (event.get("extendedProperties") or {}).get("private") or {}
            if "integrations_appointment_id" in private:
                found[private["integrations_appointment_id"]] = event
        return found

    # --- as the platform ---

    def publishes_appointment(
        self, appointment_id: str, title: str, start: datetime, version: int = 1
    ) -> None:
        detail = {
            "appointment_id": appointment_id,
            "owner": self.owner,
            "title": title,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=45)).isoformat(),
            "time_zone": "America/New_York",
            "video": False,
            "version": version,
        }
        answer = self.api.call(
            "POST", "/dev/platform-events", json={"detail_type": "Appointment Upserted", "detail": detail}
        )
        assert answer.status_code == 202, answer.text

    def bus(self, detail_type: str) -> list[dict[str, Any]]:
        answer = self.api.call("GET", "/dev/events", params={"detail_type": detail_type, "limit": 500})
        assert answer.status_code == 200, answer.text
        return [
            e
            for e in answer.json()["events"]
            if (e.get("detail") or {}).get("connection_id") == self.connection_id
        ]


@pytest.fixture
def person(api: Api, stack: LocalStack) -> Person:
    return Person(api, stack)


def later(days: int = 2, hour: int = 14) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def test_connecting_syncs_and_a_change_in_google_reaches_the_bus(person: Person) -> None:
    person.connect()
    # The first sync runs by itself and the card says when.
    synced = eventually(lambda: person.view()["sync"]["last_sync_at"])
    assert synced
    view = person.view()
    assert view["status"] == "connected"
    assert view["sync"]["next_sync_at"] > view["sync"]["last_sync_at"]

    created = person.creates_in_google("Dentist", later())

    changed = eventually(
        lambda: [e for e in person.bus("Calendar Event Changed") if e["detail"]["event_id"] == created["id"]]
    )
    assert [e["detail"]["change"] for e in changed] == ["added"]
    assert changed[0]["detail"]["appointment_id"] is None


def test_a_published_appointment_lands_in_the_google_calendar_once(person: Person, api: Api) -> None:
    person.connect()
    eventually(lambda: person.view()["sync"]["last_sync_at"])
    appointment_id = f"apt-{uuid.uuid4().hex[:8]}"

    for _ in range(3):  # the bus delivers at least once
        person.publishes_appointment(appointment_id, "Strategy call", later(3))

    landed = eventually(lambda: person.ours_in_google().get(appointment_id))
    assert landed and landed["summary"] == "Strategy call"
    assert eventually(lambda: person.bus("Appointment Pushed"))
    time.sleep(2)
    assert len([e for e in person.google_truth() if e.get("summary") == "Strategy call"]) == 1
    # Our own write comes back through sync without being reported as someone's change.
    assert person.post("/sync").status_code == 202
    time.sleep(3)
    echoed = [
        e for e in person.bus("Calendar Event Changed") if e["detail"]["appointment_id"] == appointment_id
    ]
    assert echoed == []


def test_push_existing_data_shows_progress_and_never_duplicates(person: Person) -> None:
    # Appointments the platform had before the calendar was connected
    ids = [f"apt-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for n, appointment_id in enumerate(ids):
        person.publishes_appointment(appointment_id, f"Session {n}", later(4, 9 + n))
    time.sleep(1)
    person.connect()
    eventually(lambda: person.view()["sync"]["last_sync_at"])
    assert person.ours_in_google() == {}

    started = person.post("/push-existing")
    assert started.status_code == 202, started.text
    assert started.json()["total"] == 3
    assert started.json()["state"] in ("pushing", "done")

    done = eventually(
        lambda: (p := person.view()["sync"]["push_existing"]) is not None and p["state"] == "done" and p
    )
    assert done["pushed"] == 3 and done["failed"] == 0
    assert done["message"].startswith("Pushed 3 appointments to ")
    assert set(person.ours_in_google()) == set(ids)

    again = person.post("/push-existing")
    assert again.status_code == 202
    eventually(lambda: person.view()["sync"]["push_existing"]["state"] == "done")
    titles = sorted(
        e["summary"] for e in person.google_truth() if str(e.get("summary")).startswith("Session")
    )
    assert titles == ["Session 0", "Session 1", "Session 2"]


def test_pause_resume_and_interval_are_the_owners_to_set(person: Person) -> None:
    person.connect()
    eventually(lambda: person.view()["sync"]["last_sync_at"])

    paused = person.api.call(
        "PATCH",
        f"/connections/{person.connection_id}/sync",
        identity=person.identity,
        json={"paused": True, "interval_minutes": 30},
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["sync"]["paused"] is True
    assert paused.json()["sync"]["interval_minutes"] == 30
    refused = person.post("/sync")
    assert refused.status_code == 409 and refused.json()["code"] == "connection_paused"

    out_of_range = person.api.call(
        "PATCH",
        f"/connections/{person.connection_id}/sync",
        identity=person.identity,
        json={"interval_minutes": 1},
    )
    assert out_of_range.status_code == 422 and out_of_range.json()["code"] == "interval_out_of_range"

    # Someone else's personal calendar does not exist for them.
    other = {**person.identity, "sub": "someone-else"}
    hidden = person.api.call(
        "PATCH", f"/connections/{person.connection_id}/sync", identity=other, json={"paused": False}
    )
    assert hidden.status_code == 404
    assert (
        person.api.call("POST", f"/connections/{person.connection_id}/sync", identity=other).status_code
        == 404
    )

    resumed = person.api.call(
        "PATCH", f"/connections/{person.connection_id}/sync", identity=person.identity, json={"paused": False}
    )
    assert resumed.status_code == 200 and resumed.json()["sync"]["paused"] is False
    assert person.post("/sync").status_code == 202
