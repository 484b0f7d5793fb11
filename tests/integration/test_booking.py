"""Bookings during calls, against the Google sandbox and DynamoDB (moto), through the container."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig, catalog_overrides
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.container import Container
from integrations.domain.access import Level
from integrations.domain.errors import IntegrationError
from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.providers.google_calendar.sync import GoogleCalendarAdapter
from integrations.sync.booking import BookingRequest
from integrations.sync.calendar import FreeBusy
from tests.support import seed
from tests.support.events import body_of, http_event
from tests.support.functions import load_handler
from tests.support.lambda_context import LambdaContextStub
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox
from tests.support.sync_world import Recorder

ACCOUNT = "casey@example.com"
OWNER = AppointmentOwner(kind="client_user", agency_id="agency-1", client_id="client-a", user_id="user-1")
API = "/google/calendar/v3"
PERSON = "/_sandbox/google/calendars/primary/events"


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class World:
    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sb = sb
        overrides = tmp_path / "overrides.json"
        overrides.write_text(json.dumps(catalog_overrides(sb.base)))
        monkeypatch.setenv("INTEGRATIONS_CATALOG_OVERRIDES", str(overrides))
        clear_cache()
        tokens = connect(sb, "google", account=ACCOUNT)
        self.token = str(tokens["access_token"])
        self.connection_id = seed.connection(
            provider="google_calendar",
            agency_id=OWNER.agency_id,
            client_id=OWNER.client_id,
            level=Level.USER,
            user_id=OWNER.user_id,
            account_id="g-casey",
            access_token=self.token,
            refresh_token=str(tokens["refresh_token"]),
        ).id
        self.container = Container(Settings.from_env())
        self.bus = Recorder()
        self.container.__dict__["events"] = self.bus
        self.slot = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=3)

    def request(self, **changes: Any) -> BookingRequest:
        body: dict[str, Any] = {
            "agency_id": OWNER.agency_id,
            "owner": OWNER,
            "start": self.slot,
            "end": self.slot + timedelta(minutes=30),
            "title": "Discovery call",
            "time_zone": "America/New_York",
            "idempotency_key": uuid.uuid4().hex,
        }
        return BookingRequest.model_validate({**body, **changes})

    def events(self) -> list[dict[str, Any]]:
        answer = self.sb.http.get(
            self.sb.url(f"{API}/calendars/primary/events"),
            params={"timeMin": (self.slot - timedelta(days=1)).isoformat()},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        return [e for e in answer.json()["items"] if e.get("status") != "cancelled"]

    def person_creates(self, summary: str, start: datetime, minutes: int = 60) -> None:
        body = {
            "account": ACCOUNT,
            "summary": summary,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        answer = self.sb.http.post(self.sb.url(PERSON), json=body, timeout=5)
        assert answer.status_code == 201, answer.text


@pytest.fixture
def world(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    server.reset()
    return World(server, tmp_path, monkeypatch)


def _outcome(world: World, request: BookingRequest) -> tuple[int, str, Any]:
    try:
        booking, _ = world.container.bookings.book(request)
    except IntegrationError as exc:
        return exc.status, exc.code, exc.details
    return 201, booking.event_id, booking


def test_a_booking_writes_one_event_and_records_it_like_a_pushed_appointment(world: World) -> None:
    booking, fresh = world.container.bookings.book(world.request(video=True))

    [event] = world.events()
    assert fresh and booking.event_id == event["id"]
    assert event["summary"] == "Discovery call"
    assert event["extendedProperties"]["private"]["integrations_appointment_id"] == booking.appointment_id
    assert booking.video_url and booking.video_url == event.get("hangoutLink")
    [pushed] = world.container.mirror.pushed_for(OWNER.agency_id, booking.appointment_id)
    assert (pushed.connection_id, pushed.external_id) == (world.connection_id, event["id"])
    stored = world.container.appointments.get(OWNER, booking.appointment_id)
    assert stored is not None and isinstance(stored.appointment, AppointmentUpserted)


def test_twenty_concurrent_bookings_for_one_slot_make_one_event(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The widest race: every request that gets as far as the provider's free/busy waits there until
    # all twenty have (or two seconds pass), so all would see the slot free at once.
    requests = [world.request() for _ in range(20)]
    together = threading.Barrier(len(requests))
    asked = GoogleCalendarAdapter.free_busy

    def free_busy_together(adapter: GoogleCalendarAdapter, *args: Any) -> FreeBusy:
        answer = asked(adapter, *args)
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait(timeout=2)
        return answer

    monkeypatch.setattr(GoogleCalendarAdapter, "free_busy", free_busy_together)

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda r: _outcome(world, r), requests))

    statuses = sorted(status for status, _, _ in outcomes)
    assert statuses == [201] + [409] * 19
    assert {code for status, code, _ in outcomes if status == 409} == {"slot_taken"}
    assert len(world.events()) == 1


def test_concurrent_bookings_of_overlapping_slots_never_double_book(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Eight half-hour bookings starting ten minutes apart, all at once: each overlaps its neighbours.
    requests = [
        world.request(
            start=world.slot + timedelta(minutes=10 * n), end=world.slot + timedelta(minutes=10 * n + 30)
        )
        for n in range(8)
    ]
    together = threading.Barrier(len(requests))
    asked = GoogleCalendarAdapter.free_busy

    def free_busy_together(adapter: GoogleCalendarAdapter, *args: Any) -> FreeBusy:
        answer = asked(adapter, *args)
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait(timeout=0.3)
        return answer

    monkeypatch.setattr(GoogleCalendarAdapter, "free_busy", free_busy_together)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        outcomes = list(pool.map(lambda r: _outcome(world, r), requests))

    booked = sorted((o[2].start, o[2].end) for o in outcomes if o[0] == 201)
    assert booked, outcomes
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(booked))
    assert {(s, c) for s, c, _ in outcomes if s != 201} == {(409, "slot_taken")}
    assert len(world.events()) == len(booked)


def test_a_slot_the_person_filled_in_their_calendar_is_refused_with_the_block(world: World) -> None:
    world.person_creates("Dentist", world.slot - timedelta(minutes=15), minutes=60)

    status, code, details = _outcome(world, world.request())

    assert (status, code) == (409, "slot_taken")
    assert details == {
        "conflict": {
            "start": (world.slot - timedelta(minutes=15)).isoformat(),
            "end": (world.slot + timedelta(minutes=45)).isoformat(),
        }
    }
    assert [e["summary"] for e in world.events()] == ["Dentist"]


def test_a_slot_held_by_a_platform_appointment_is_refused(world: World) -> None:
    world.container.appointments.upsert(
        AppointmentUpserted(
            appointment_id="apt-9",
            owner=OWNER,
            start=world.slot,
            end=world.slot + timedelta(hours=1),
            time_zone="UTC",
            version=1,
        )
    )

    status, code, _ = _outcome(world, world.request())

    assert (status, code) == (409, "slot_taken")
    assert world.events() == []


def test_the_same_idempotency_key_answers_the_same_booking(world: World) -> None:
    request = world.request()
    first, first_fresh = world.container.bookings.book(request)
    again, again_fresh = world.container.bookings.book(request)

    assert (first_fresh, again_fresh) == (True, False)
    assert again == first
    assert len(world.events()) == 1


def test_the_same_key_for_another_slot_is_refused(world: World) -> None:
    request = world.request()
    world.container.bookings.book(request)
    other = request.model_copy(
        update={"start": world.slot + timedelta(hours=2), "end": world.slot + timedelta(hours=3)}
    )

    status, code, _ = _outcome(world, other)

    assert (status, code) == (422, "idempotency_key_reused")


def test_a_refused_booking_gives_its_slot_back_for_a_retry(world: World) -> None:
    world.container.appointments.upsert(
        AppointmentUpserted(
            appointment_id="apt-9",
            owner=OWNER,
            start=world.slot,
            end=world.slot + timedelta(hours=1),
            time_zone="UTC",
            version=1,
        )
    )
    request = world.request()
    assert _outcome(world, request)[:2] == (409, "slot_taken")
    world.container.appointments.delete(OWNER, "apt-9", 2, datetime.now(UTC))

    status, _, _ = _outcome(world, request)

    assert status == 201
    assert len(world.events()) == 1


def test_a_calendar_of_someone_else_is_not_found(world: World) -> None:
    stranger = seed.connection(
        provider="google_calendar", agency_id="agency-2", level=Level.USER, user_id="user-1"
    )

    status, code, _ = _outcome(world, world.request(calendar_connection_id=stranger.id))

    assert (status, code) == (404, "calendar_not_found")
    assert world.events() == []


# --- Booking Created ------------------------------------------------------------------------------


def test_a_booking_publishes_booking_created_once(world: World) -> None:
    request = world.request(video=True, attendees=["jordan@example.com"])

    booking, fresh = world.container.bookings.book(request)

    [created] = world.bus.of("Booking Created")
    assert fresh
    assert (created.booking_id, created.connection_id, created.provider) == (
        booking.booking_id,
        world.connection_id,
        "google_calendar",
    )
    assert (created.agency_id, created.client_id, created.user_id) == (
        OWNER.agency_id,
        OWNER.client_id,
        OWNER.user_id,
    )
    assert created.scheduled_event_id == booking.event_id == world.events()[0]["id"]
    assert (created.start, created.end, created.time_zone) == (request.start, request.end, "America/New_York")
    assert created.join_url == booking.video_url and created.invitee.email == "jordan@example.com"
    assert created.event_type_name == "Discovery call"

    # A retry with the same key answers the same booking and publishes nothing more.
    again, fresh_again = world.container.bookings.book(request)
    assert not fresh_again and again == booking
    assert len(world.bus.of("Booking Created")) == 1


def test_a_refused_booking_publishes_nothing(world: World) -> None:
    world.person_creates("Dentist", world.slot)

    assert _outcome(world, world.request())[:2] == (409, "slot_taken")
    assert world.bus.of("Booking Created") == []


class _BusDown(IntegrationError):
    status = 503
    code = "dependency_unavailable"


def test_an_announcement_the_bus_refused_goes_out_on_the_retry(world: World) -> None:
    # Given the bus refuses the first `Booking Created`: the booking is made, the caller hears 503
    request = world.request()

    publish = world.bus.publish

    def down(*events: Any) -> None:
        if any(e.detail_type == "Booking Created" for e in events):
            raise _BusDown("The event bus is unavailable.")
        publish(*events)

    world.bus.publish = down  # type: ignore[method-assign]
    status, code, _ = _outcome(world, request)
    assert (status, code) == (503, "dependency_unavailable")
    world.bus.publish = publish  # type: ignore[method-assign]
    [event] = world.events()

    # When the platform retries with the same key, the same booking is answered and announced once
    booking, fresh = world.container.bookings.book(request)
    world.container.bookings.book(request)

    assert not fresh and booking.event_id == event["id"]
    [created] = world.bus.of("Booking Created")
    assert created.booking_id == booking.booking_id
    assert len(world.events()) == 1


def test_booking_through_the_internal_api_publishes_once_per_key(world: World) -> None:
    internal = load_handler("internal")
    internal.container.__dict__["events"] = world.bus
    body = world.request().model_dump(mode="json")
    event = http_event("POST", "/internal/bookings", body=body)
    event["requestContext"]["authorizer"] = {
        "iam": {"accessKey": "AKIDPLATFORM", "accountId": "123456789012", "userArn": "arn:aws:iam::1:user/p"}
    }

    first = internal.handler(event, LambdaContextStub())
    retried = internal.handler(event, LambdaContextStub())

    assert (first["statusCode"], retried["statusCode"]) == (201, 200)
    [created] = world.bus.of("Booking Created")
    assert created.booking_id == body_of(first)["booking_id"] == body_of(retried)["booking_id"]
    assert created.provider == body_of(first)["provider"] == "google_calendar"
