"""Calendly bookings onto the bus: `invitee.created` → Booking Created, `invitee.canceled` → Booking
Canceled (a reschedule is a cancel naming the new invitee plus a create naming the old one).

A webhook is a hint: the step re-reads the invitee and its scheduled event from API v2. Every booking
event is published once (`publish_once`, keyed by the invitee and what happened to it), so a
redelivered webhook, a catch-up pass and the webhook racing it publish nothing twice.

A scheduled run (no webhook hint) checks the subscription: one Calendly disabled after a day of failed
deliveries is recreated, and the step catches up from `GET /scheduled_events`: every event updated
since the last pass is read with its invitees, so no booking made while nothing was delivered is lost.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from integrations import http
from integrations.events import BookingCanceled, BookingCreated, BookingEvent, BookingInvitee
from integrations.providers.support import api_url, paging_of, text

if TYPE_CHECKING:
    from integrations.sync.steps import StepContext

CREATED, CANCELED = "invitee.created", "invitee.canceled"
# Where the catch-up pass keeps the time it last read up to.
CURSOR = "bookings:updated_since"
# Overlap between passes: an event updated while the last pass ran is read again (once-only keys make
# that harmless).
OVERLAP = timedelta(minutes=5)
# A first pass (or one after a long outage) reads events updated within this window.
FIRST_WINDOW = timedelta(days=2)
# Bookings whose meeting ended this long ago are not looked at by a catch-up pass.
PAST_WINDOW = timedelta(days=1)


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _uuid_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _resource(found: Any) -> dict[str, Any]:
    resource = found.get("resource") if isinstance(found, dict) else None
    return resource if isinstance(resource, dict) else {}


def _answers(invitee: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"question": text(item.get("question")), "answer": text(item.get("answer"))}
        for item in invitee.get("questions_and_answers") or []
        if isinstance(item, dict)
    ]


def _location(event: dict[str, Any]) -> tuple[str | None, str | None]:
    location = event.get("location") if isinstance(event.get("location"), dict) else {}
    assert isinstance(location, dict)
    join_url = text(location.get("join_url")) or None
    where = text(location.get("location")) or None
    if where is None and location.get("type"):
        where = text(location.get("type"))
    return where, join_url


def _tracking(invitee: dict[str, Any]) -> dict[str, str]:
    tracking = invitee.get("tracking") if isinstance(invitee.get("tracking"), dict) else {}
    assert isinstance(tracking, dict)
    return {key: text(value) for key, value in tracking.items() if value}


def event_key(invitee_uri: str, what: str) -> str:
    """The once-only key (and bus event id) of one thing that happened to one invitee."""
    return hashlib.sha256(f"{_uuid_of(invitee_uri)}|{what}".encode()).hexdigest()


def booking_event(context: StepContext, invitee: dict[str, Any], event: dict[str, Any]) -> BookingEvent:
    """The bus event an invitee in its current state means (created, or canceled)."""
    connection = context.connection
    invitee_uri = text(invitee.get("uri"))
    where, join_url = _location(event)
    canceled = text(invitee.get("status")) == "canceled"
    what = CANCELED if canceled else CREATED
    common: dict[str, Any] = {
        "event_id": event_key(invitee_uri, what),
        "booking_id": invitee_uri,
        "connection_id": connection.id,
        "provider": connection.provider,
        "agency_id": connection.agency_id,
        "client_id": connection.client_id,
        "user_id": connection.user_id,
        "invitee": BookingInvitee(
            name=text(invitee.get("name")),
            email=text(invitee.get("email")),
            phone=text(invitee.get("text_reminder_number")) or None,
            time_zone=text(invitee.get("timezone")) or None,
            answers=_answers(invitee),
        ),
        "event_type_id": text(event.get("event_type")) or None,
        "event_type_name": text(event.get("name")),
        "scheduled_event_id": text(event.get("uri")),
        "start": _time(event.get("start_time")),
        "end": _time(event.get("end_time")),
        "time_zone": text(invitee.get("timezone")) or None,
        "location": where,
        "join_url": join_url,
        "cancel_url": text(invitee.get("cancel_url")) or None,
        "reschedule_url": text(invitee.get("reschedule_url")) or None,
        "tracking": _tracking(invitee),
    }
    if canceled:
        cancellation = invitee.get("cancellation") if isinstance(invitee.get("cancellation"), dict) else {}
        assert isinstance(cancellation, dict)
        return BookingCanceled(
            **common,
            rescheduled=bool(invitee.get("rescheduled")),
            rescheduled_to=text(invitee.get("new_invitee")) or None,
            reason=text(cancellation.get("reason")) or None,
            canceled_by=text(cancellation.get("canceler_type")) or None,
        )
    return BookingCreated(**common, rescheduled_from=text(invitee.get("old_invitee")) or None)


class CalendlyBookings:
    """The provider step (`STEP`) for Calendly connections."""

    def run(self, context: StepContext) -> int:
        hint = context.job.hint
        invitee_uri = text(hint.get("resource_uri"))
        if hint.get("source") == "webhook" and hint.get("event_type") in (CREATED, CANCELED) and invitee_uri:
            return self._one(context, invitee_uri)
        if hint.get("source") == "webhook":
            return 0  # no-show and other events publish nothing yet
        replaced = context.replace_stale_subscriptions()
        return self._catch_up(context, full=replaced > 0)

    def _one(self, context: StepContext, invitee_uri: str) -> int:
        token = context.access_token()
        invitee = _resource(http.api_call("GET", self._url(context, invitee_uri), access_token=token))
        event_uri = text(invitee.get("event")) or invitee_uri.split("/invitees/", maxsplit=1)[0]
        event = _resource(http.api_call("GET", self._url(context, event_uri), access_token=token))
        return self._publish(context, invitee, event)

    def _publish(self, context: StepContext, invitee: dict[str, Any], event: dict[str, Any]) -> int:
        published = 0
        if text(invitee.get("status")) == "canceled":
            # The booking existed before it was canceled: a cancel seen first still announces it, so
            # consumers never get a cancel for a booking they never heard of.
            created = booking_event(context, {**invitee, "status": "active"}, event)
            published += context.publish_once(created.event_id, [created])
        found = booking_event(context, invitee, event)
        published += context.publish_once(found.event_id, [found])
        return published

    def _catch_up(self, context: StepContext, *, full: bool) -> int:
        now = context.clock()
        stored = context.connection.cursors.get(CURSOR)
        since = now - FIRST_WINDOW if full or not stored else _time(stored) - OVERLAP
        token = context.access_token()
        events = http.paginate(
            paging_of(context.spec),
            api_url(context.spec, "scheduled_events"),
            params={
                "user": context.connection.account.id,
                "min_start_time": (now - PAST_WINDOW).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "sort": "start_time:asc",
            },
            access_token=token,
        )
        published = 0
        for event in events:
            if _time(event.get("updated_at") or event.get("created_at")) < since:
                continue
            invitees = http.paginate(
                paging_of(context.spec),
                self._url(context, f"{text(event.get('uri'))}/invitees"),
                access_token=token,
            )
            for invitee in invitees:
                published += self._publish(context, invitee, event)
        context.save_cursor(CURSOR, now.isoformat())
        return published

    @staticmethod
    def _url(context: StepContext, uri: str) -> str:
        """An API resource URI, read through the configured API base (a sandbox or a proxy)."""
        base = (context.spec.api_base_url or "").rstrip("/")
        path = uri.split("://", 1)[-1].split("/", 1)[-1] if "://" in uri else uri.lstrip("/")
        if base and uri.startswith(base):
            return uri
        marker = "/scheduled_events/"
        return f"{base}{marker}{uri.split(marker, 1)[1]}" if marker in uri else f"{base}/{path}"


STEP = CalendlyBookings()
