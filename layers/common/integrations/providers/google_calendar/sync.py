"""Google Calendar's calendar adapter: events.list with sync tokens, writes tagged with our id, freeBusy.

Protocol facts (calendar-email.md §2): one query shape for every call of a sync token's life
(`singleEvents=false`, `showDeleted=true`, the same `timeMin` as the full pass that issued it), so
masters, exceptions and cancelled exceptions arrive as Google keeps them; 410 `fullSyncRequired`
expires the token; 403 `rateLimitExceeded` / `userRateLimitExceeded` / `quotaExceeded` are rate
limits, not lost grants; inserts use an id derived from the appointment, so a retried insert answers
409 `duplicate` instead of making a second event; Meet links need `conferenceDataVersion=1` on every
write, and a `requestId` that stays the same for one appointment.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.providers.google_calendar.subscriptions import PRIMARY, calendars_to_watch
from integrations.providers.support import api_url, text, translated_call
from integrations.sync.calendar import (
    BusyBlock,
    CalendarEvent,
    ChangePage,
    EventStatus,
    FreeBusy,
    OutboundEvent,
    PushedEvent,
)
from integrations.sync.errors import ConfigRequired, CursorExpired
from integrations.sync.sources import bearer

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials

# Our id in `extendedProperties.private`: only this calendar's copy carries it (not attendees').
APPOINTMENT_PROPERTY = "integrations_appointment_id"
# Google allows 2500; 1000 keeps a worker's memory at one modest page (tests/bench/RESULTS.md).
PAGE_SIZE = 1000
# A full pass reads from this far back unless the connection's sync window says less
# (`window_past_days`): older events cannot conflict with anything we book.
FULL_SYNC_LOOKBACK = timedelta(days=30)
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})


def event_id_for(connection_id: str, appointment_id: str) -> str:
    """A client-chosen event id (base32hex, 5-1024 chars): the same appointment always maps to it."""
    digest = hashlib.sha256(f"{connection_id}\0{appointment_id}".encode()).digest()[:20]
    return base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()


class GoogleCalendarAdapter:
    """One connection's calendars through the Calendar API v3."""

    def __init__(
        self,
        spec: ProviderSpec,
        connection_id: str,
        access_token: Callable[[], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lookback: timedelta = FULL_SYNC_LOOKBACK,
    ) -> None:
        self._spec = spec
        self._connection_id = connection_id
        self._token = access_token
        self._clock = clock
        # How far back a full pass asks Google for (timeMin): the sync window's past side.
        self._lookback = lookback

    # --- pull ---

    def pull(self, calendar_id: str, cursor: str | None, page: str | None) -> ChangePage:
        """One page of events.list; the page token carries the full pass's timeMin along with it."""
        params: dict[str, Any] = {"singleEvents": "false", "showDeleted": "true", "maxResults": PAGE_SIZE}
        time_min, page_token = _split_page(page)
        if cursor:
            params["syncToken"] = cursor
        else:
            time_min = time_min or (self._clock() - self._lookback).astimezone(UTC).isoformat()
            params["timeMin"] = time_min
        if page_token:
            params["pageToken"] = page_token
        answer = self._call("GET", self._events_url(calendar_id), params=params, expired_scope=calendar_id)
        items = answer.get("items", []) if isinstance(answer, dict) else []
        next_page = text(answer.get("nextPageToken")) if isinstance(answer, dict) else ""
        return ChangePage(
            events=[e for e in (to_event(calendar_id, item) for item in items) if e is not None],
            next_page=_join_page(time_min if not cursor else None, next_page) if next_page else None,
            cursor=None if next_page else (text(answer.get("nextSyncToken")) or None),
            full=cursor is None,
        )

    # --- writes ---

    def write(self, calendar_id: str, event: OutboundEvent, existing: PushedEvent | None) -> PushedEvent:
        """Insert (idempotent by id) or patch the appointment's event; the platform's version wins."""
        body = self._body(event)
        params = {"conferenceDataVersion": "1", "sendUpdates": "none"}
        if existing is not None and existing.calendar_id == calendar_id:
            answer = self._patch(calendar_id, existing.external_id, body, params, existing.etag)
        else:
            event_id = event_id_for(self._connection_id, event.appointment_id)
            try:
                answer = self._call(
                    "POST", self._events_url(calendar_id), params=params, json={**body, "id": event_id}
                )
            except http.ProviderApiError as exc:
                if exc.status != 409:
                    raise
                # Our earlier insert landed but its answer was lost: update that event instead.
                answer = self._patch(calendar_id, event_id, body, params, None)
        return self._pushed(calendar_id, event, answer)

    def delete(self, pushed: PushedEvent) -> None:
        """Delete without If-Match (the appointment is gone, whatever the person edited); gone is fine."""
        url = f"{self._events_url(pushed.calendar_id)}/{quote(pushed.external_id, safe='')}"
        try:
            self._call("DELETE", url, params={"sendUpdates": "none"})
        except http.ProviderApiError as exc:
            if exc.status not in (404, 410):
                raise

    # --- free/busy ---

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> FreeBusy:
        answer = self._call(
            "POST",
            api_url(self._spec, "freeBusy"),
            json={
                "timeMin": start.astimezone(UTC).isoformat(),
                "timeMax": end.astimezone(UTC).isoformat(),
                "items": [{"id": c} for c in calendar_ids],
            },
        )
        result = FreeBusy()
        calendars = answer.get("calendars", {}) if isinstance(answer, dict) else {}
        for calendar_id in calendar_ids:
            found = calendars.get(calendar_id) or {}
            errors = found.get("errors") or []
            if errors:
                result.errors[calendar_id] = text(errors[0].get("reason")) or "unknown"
                continue
            result.busy[calendar_id] = [
                BusyBlock(start=_instant(b.get("start")), end=_instant(b.get("end")))
                for b in found.get("busy") or []
                if b.get("start") and b.get("end")
            ]
        return result

    def calendar_name(self, calendar_id: str) -> str:
        answer = self._call("GET", api_url(self._spec, f"calendars/{quote(calendar_id, safe='')}"))
        name = text(answer.get("summary")) if isinstance(answer, dict) else ""
        return name or calendar_id

    # --- helpers ---

    def _events_url(self, calendar_id: str) -> str:
        return api_url(self._spec, f"calendars/{quote(calendar_id, safe='')}/events")

    def _patch(
        self, calendar_id: str, event_id: str, body: dict[str, Any], params: dict[str, str], etag: str | None
    ) -> Any:
        url = f"{self._events_url(calendar_id)}/{quote(event_id, safe='')}"
        try:
            return self._call(
                "PATCH", url, params=params, json=body, headers={"If-Match": etag} if etag else None
            )
        except http.ProviderApiError as exc:
            if exc.status != 412:
                raise
            # Edited at Google since our last write: the platform owns the appointment, so write again.
            return self._call("PATCH", url, params=params, json=body)

    def _body(self, event: OutboundEvent) -> dict[str, Any]:
        body: dict[str, Any] = {
            "summary": event.title,
            "description": event.description,
            "location": event.location,
            "start": {"dateTime": event.start.isoformat(), "timeZone": event.time_zone},
            "end": {"dateTime": event.end.isoformat(), "timeZone": event.time_zone},
            "attendees": [{"email": a} for a in event.attendees],
            "extendedProperties": {"private": {APPOINTMENT_PROPERTY: event.appointment_id}},
        }
        if event.video:
            body["conferenceData"] = {
                "createRequest": {
                    "requestId": f"meet-{event_id_for(self._connection_id, event.appointment_id)}",
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            }
        return body

    def _pushed(self, calendar_id: str, event: OutboundEvent, answer: Any) -> PushedEvent:
        if not isinstance(answer, dict) or not answer.get("id"):
            raise http.ProviderApiError(502, {"error": "no event in the answer"})
        written = to_event(calendar_id, answer)
        return PushedEvent(
            appointment_id=event.appointment_id,
            connection_id=self._connection_id,
            calendar_id=calendar_id,
            external_id=text(answer.get("id")),
            etag=text(answer.get("etag")) or None,
            video_url=_meet_link(answer),
            written_hash=written.change_hash() if written is not None else None,
        )

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        expired_scope: str | None = None,
    ) -> Any:
        return translated_call(
            method,
            url,
            access_token=self._token(),
            translate=lambda exc: _translated(exc, expired_scope),
            params=params,
            json=json,
            headers=headers,
        )


def _translated(exc: http.ProviderApiError, expired_scope: str | None) -> Exception:
    """Google's error bodies in the engine's words (calendar-email.md §2.10)."""
    if exc.status in (403, 429) and _RATE_LIMIT_REASONS.intersection(exc.reasons):
        return http.RateLimited("Google Calendar is rate limiting requests.")
    if exc.status == 410 and expired_scope is not None:
        return CursorExpired(f"calendar:{expired_scope}")
    if exc.status == 404 and expired_scope is not None:
        return ConfigRequired(
            "The chosen Google calendar no longer exists or is no longer shared with this account."
        )
    return exc


def to_event(calendar_id: str, item: Any) -> CalendarEvent | None:
    """Google's Event resource as the mirror's model; None for an item without an id."""
    if not isinstance(item, dict) or not text(item.get("id")):
        return None
    start, end = item.get("start") or {}, item.get("end") or {}
    private = (item.get("extendedProperties") or {}).get("private") or {}
    original = item.get("originalStartTime") or {}
    status = text(item.get("status")) or EventStatus.CONFIRMED.value
    return CalendarEvent(
        calendar_id=calendar_id,
        external_id=text(item.get("id")),
        status=EventStatus(status) if status in EventStatus.__members__.values() else EventStatus.CONFIRMED,
        start=_instant(start.get("dateTime")) if start.get("dateTime") else None,
        end=_instant(end.get("dateTime")) if end.get("dateTime") else None,
        start_date=date.fromisoformat(start["date"]) if start.get("date") else None,
        end_date=date.fromisoformat(end["date"]) if end.get("date") else None,
        time_zone=text(start.get("timeZone")) or None,
        busy=text(item.get("transparency")) != "transparent",
        title=text(item.get("summary")),
        recurrence=tuple(r for r in item.get("recurrence") or () if isinstance(r, str)),
        series_id=text(item.get("recurringEventId")) or None,
        original_start=text(original.get("dateTime") or original.get("date")) or None,
        declined=any(
            a.get("self") and a.get("responseStatus") == "declined"
            for a in item.get("attendees") or ()
            if isinstance(a, dict)
        ),
        etag=text(item.get("etag")) or None,
        updated=_instant(item.get("updated")) if item.get("updated") else None,
        appointment_id=text(private.get(APPOINTMENT_PROPERTY)) or None,
    )


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _meet_link(answer: dict[str, Any]) -> str | None:
    link = text(answer.get("hangoutLink"))
    if link:
        return link
    for entry in (answer.get("conferenceData") or {}).get("entryPoints") or ():
        if isinstance(entry, dict) and entry.get("entryPointType") == "video" and entry.get("uri"):
            return text(entry.get("uri"))
    return None


def _split_page(page: str | None) -> tuple[str | None, str | None]:
    if not page:
        return None, None
    try:
        stored = json.loads(page)
    except ValueError:
        return None, page
    return (stored.get("time_min"), stored.get("page")) if isinstance(stored, dict) else (None, page)


def _join_page(time_min: str | None, page_token: str) -> str:
    return json.dumps({"time_min": time_min, "page": page_token}, separators=(",", ":"))


def calendars(connection: Connection) -> list[str]:
    """The calendars a two-way connection reads: the chosen one (primary until chosen) and any extra
    conflict calendars, the same set its watch channels cover."""
    return calendars_to_watch(connection)


def push_calendar(connection: Connection) -> str:
    """Where appointments are written: the configured calendar, or the primary one."""
    chosen = connection.config.get("calendar_id")
    return chosen if isinstance(chosen, str) and chosen else PRIMARY


def ADAPTER(
    spec: ProviderSpec,
    connection_id: str,
    credentials: Callable[[], Credentials],
    clock: Callable[[], datetime],
    lookback: timedelta = FULL_SYNC_LOOKBACK,
) -> GoogleCalendarAdapter:
    """The adapter for one connection, reading its OAuth access token from the credentials; a full
    pass reads from `lookback` ago (the sync window's past side)."""
    return GoogleCalendarAdapter(spec, connection_id, bearer(credentials), clock, lookback)
