"""Outlook Calendar's calendar adapter (Microsoft Graph): calendarView delta, tagged writes, free/busy.

Protocol facts (calendar-email.md §4):

- Changes come from `calendarView/delta` on the synced calendar. A round starts with a window
  (`startDateTime`/`endDateTime`, 30 days back to 365 ahead) that lives on in its tokens; pages
  follow `@odata.nextLink` verbatim and the round ends with `@odata.deltaLink`, stored whole as the
  cursor (with the window's end, so the window slides: once less than 300 days are left ahead, the
  cursor is dropped and a new full round starts). 410 (`syncStateNotFound`, `resyncRequired`) expires
  the cursor. Links are only followed to the catalog's Graph base URL: a stored cursor never sends the
  token anywhere else. `Prefer: outlook.timezone="UTC"` makes every time a UTC wall time;
  `odata.maxpagesize` sets the page size.
- Recurring series: calendarView delta expands series within the window, so the mirror holds no
  master. Each occurrence and each exception (an edited occurrence) is one item naming its series
  (`series_id` = `seriesMasterId`) and the instance it stands for (`original_start` = `originalStart`,
  UTC `YYYY-MM-DDTHH:MM:SSZ`); nothing needs expanding downstream. An occurrence the person deletes
  arrives as `@removed`, a deletion of that item; an occurrence whose meeting the organizer cancelled
  (`isCancelled`) is kept as a cancelled exception. Series masters that a round may carry are skipped:
  their instances are the truth.
- All-day events (`isAllDay`) keep their dates (exclusive end); `showAs` free or workingElsewhere is
  not busy; `responseStatus.response == "declined"` marks a declined invitation.
- Writes tag the event with our appointment id twice: a single-value extended property (a fixed
  GUID-named property, the durable tag, read with `$expand`), and the `transactionId` of the create
  (per calendar), which makes a retried create answer the first event instead of a second one, while a
  copy on a newly chosen calendar is a new event. Delta refuses `$expand`,
  so the id read back in sync comes from the `transactionId` (Graph returns it on every event).
  Updates send `If-Match` with the etag we wrote; 412 means the person edited it since, and the
  platform's version is written again. Deleting an event already gone (404) counts as deleted.
- `video: true` asks for a Teams meeting (`isOnlineMeeting`, `teamsForBusiness`) when the calendar
  allows it (`allowedOnlineMeetingProviders`); personal accounts get no link, and no failure.
- 429 with Retry-After is `http.RateLimited` (the engine waits); 401/403 lose the grant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from integrations import http
from integrations.providers.outlook_calendar.events import (
    APPOINTMENT_PROPERTY,
    iana,
    instant,
    to_event,
    transaction_id,
    zone,
)
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

# The calendar id that means the mailbox's default calendar (`/me/calendar`) until one is chosen.
DEFAULT_CALENDAR = "default"
PAGE_SIZE = 100
# The delta window: a full round reads from this far back to this far ahead...
WINDOW_BEHIND = timedelta(days=30)
WINDOW_AHEAD = timedelta(days=365)
# ...and a new round starts once less than this is left ahead (the window is fixed per round).
WINDOW_RENEW_BELOW = timedelta(days=300)


class OutlookCalendarAdapter:
    """One connection's Outlook calendars through Microsoft Graph v1.0."""

    def __init__(
        self,
        spec: ProviderSpec,
        connection_id: str,
        access_token: Callable[[], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lookback: timedelta = WINDOW_BEHIND,
    ) -> None:
        self._spec = spec
        self._connection_id = connection_id
        self._token = access_token
        self._clock = clock
        # How far back a delta round's window starts: the sync window's past side.
        self._lookback = lookback
        self._base = api_url(spec, "")
        self._teams: dict[str, bool] = {}

    # --- pull ---

    def pull(self, calendar_id: str, cursor: str | None, page: str | None) -> ChangePage:
        """One page of the calendar's calendarView delta round."""
        scope = f"calendar:{calendar_id}"
        if page:
            link, until = _link_of(page, "next")
            answer = self._follow(link, scope)
        elif cursor:
            link, until = _link_of(cursor, "delta")
            if until is None or until - self._clock() < WINDOW_RENEW_BELOW:
                # The window is fixed per round: slide it by starting a new one.
                raise CursorExpired(scope, "The sync window moved on; a full resync starts a new one.")
            answer = self._follow(link, scope)
        else:
            now = self._clock().astimezone(UTC)
            until = now + WINDOW_AHEAD
            answer = self._call(
                "GET",
                self._calendar_url(calendar_id, "calendarView/delta"),
                params={"startDateTime": _iso(now - self._lookback), "endDateTime": _iso(until)},
                expired_scope=scope,
            )
        found: dict[str, Any] = answer if isinstance(answer, dict) else {}
        items = found.get("value") if isinstance(found.get("value"), list) else []
        events = [e for e in (to_event(calendar_id, item) for item in items or ()) if e is not None]
        next_link = text(found.get("@odata.nextLink"))
        delta_link = text(found.get("@odata.deltaLink"))
        if not next_link and not delta_link:
            raise http.ProviderApiError(502, {"error": "a delta page without nextLink or deltaLink"})
        return ChangePage(
            events=events,
            next_page=_link_text("next", next_link, until) if next_link else None,
            cursor=None if next_link else _link_text("delta", delta_link, until),
            full=cursor is None,
        )

    # --- writes ---

    def write(self, calendar_id: str, event: OutboundEvent, existing: PushedEvent | None) -> PushedEvent:
        """Create (idempotent by transactionId) or update the appointment's event."""
        body = self._body(calendar_id, event)
        answer: Any = None
        if existing is not None and existing.calendar_id == calendar_id:
            answer = self._update(existing.external_id, body, existing.etag)
        if answer is None:
            created = self._call(
                "POST",
                self._calendar_url(calendar_id, "events"),
                params=_EXPAND,
                json={**body, "transactionId": transaction_id(calendar_id, event.appointment_id)},
            )
            answer = created
            if isinstance(created, dict) and not _matches(created, body):
                # A retried create answered the first event: bring it up to this version.
                answer = self._update(text(created.get("id")), body, None)
        return self._pushed(calendar_id, event, answer)

    def delete(self, pushed: PushedEvent) -> None:
        """Delete without If-Match (the appointment is gone, whatever the person edited); gone is fine."""
        try:
            self._call("DELETE", api_url(self._spec, f"me/events/{quote(pushed.external_id, safe='')}"))
        except http.ProviderApiError as exc:
            if exc.status not in (404, 410):
                raise

    # --- free/busy ---

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> FreeBusy:
        """Busy blocks from calendarView (works for personal accounts too, unlike getSchedule)."""
        result = FreeBusy()
        for calendar_id in calendar_ids:
            try:
                blocks = [
                    BusyBlock(start=e.start, end=e.end)
                    for e in self._view(calendar_id, start, end)
                    if e.busy
                    and not e.declined
                    and e.status is not EventStatus.CANCELLED
                    and e.start is not None
                    and e.end is not None
                ]
            except http.ProviderApiError as exc:
                result.errors[calendar_id] = exc.error or f"http_{exc.status}"
                continue
            result.busy[calendar_id] = sorted(blocks, key=lambda b: b.start)
        return result

    def calendar_name(self, calendar_id: str) -> str:
        answer = self._call("GET", self._calendar_url(calendar_id, ""))
        name = text(answer.get("name")) if isinstance(answer, dict) else ""
        return name or calendar_id

    # --- helpers ---

    def _view(self, calendar_id: str, start: datetime, end: datetime) -> Iterator[CalendarEvent]:
        answer = self._call(
            "GET",
            self._calendar_url(calendar_id, "calendarView"),
            params={"startDateTime": _iso(start), "endDateTime": _iso(end)},
        )
        while isinstance(answer, dict):
            for item in answer.get("value") or ():
                found = to_event(calendar_id, item)
                if found is None or found.is_deletion:
                    continue
                yield _timed(found)
            link = text(answer.get("@odata.nextLink"))
            if not link:
                return
            answer = self._follow(link, None)

    def _calendar_url(self, calendar_id: str, rest: str) -> str:
        where = (
            "me/calendar"
            if calendar_id == DEFAULT_CALENDAR
            else f"me/calendars/{quote(calendar_id, safe='')}"
        )
        return api_url(self._spec, f"{where}/{rest}".rstrip("/"))

    def _update(self, event_id: str, body: dict[str, Any], etag: str | None) -> Any:
        """PATCH the event (If-Match our etag); None when it is gone, so the caller creates it again."""
        url = api_url(self._spec, f"me/events/{quote(event_id, safe='')}")
        try:
            try:
                return self._call(
                    "PATCH", url, params=_EXPAND, json=body, headers={"If-Match": etag} if etag else None
                )
            except http.ProviderApiError as exc:
                if exc.status != 412:
                    raise
                # Edited in Outlook since our last write: the platform owns the appointment, write again.
                return self._call("PATCH", url, params=_EXPAND, json=body)
        except http.ProviderApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _body(self, calendar_id: str, event: OutboundEvent) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subject": event.title,
            "body": {"contentType": "text", "content": event.description},
            "start": _wall(event.start, event.time_zone),
            "end": _wall(event.end, event.time_zone),
            "location": {"displayName": event.location},
            "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in event.attendees],
            "singleValueExtendedProperties": [{"id": APPOINTMENT_PROPERTY, "value": event.appointment_id}],
        }
        if event.video and self._allows_teams(calendar_id):
            body.update({"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"})
        return body

    def _allows_teams(self, calendar_id: str) -> bool:
        if calendar_id not in self._teams:
            answer = self._call("GET", self._calendar_url(calendar_id, ""))
            allowed = answer.get("allowedOnlineMeetingProviders") if isinstance(answer, dict) else None
            self._teams[calendar_id] = isinstance(allowed, list) and "teamsForBusiness" in allowed
        return self._teams[calendar_id]

    def _pushed(self, calendar_id: str, event: OutboundEvent, answer: Any) -> PushedEvent:
        if not isinstance(answer, dict) or not answer.get("id"):
            raise http.ProviderApiError(502, {"error": "no event in the answer"})
        written = to_event(calendar_id, answer)
        meeting = answer.get("onlineMeeting") if isinstance(answer.get("onlineMeeting"), dict) else {}
        return PushedEvent(
            appointment_id=event.appointment_id,
            connection_id=self._connection_id,
            calendar_id=calendar_id,
            external_id=text(answer.get("id")),
            etag=text(answer.get("@odata.etag")) or None,
            video_url=text((meeting or {}).get("joinUrl")) or None,
            written_hash=written.change_hash() if written is not None else None,
        )

    def _follow(self, link: str, expired_scope: str | None) -> Any:
        """GET a nextLink / deltaLink verbatim, only ever on the catalog's Graph base URL."""
        if not link.startswith(self._base):
            if expired_scope is None:
                raise http.ProviderApiError(502, {"error": "a link outside the Graph base URL"})
            raise CursorExpired(expired_scope, "A stored link does not point to Microsoft Graph.")
        return self._call("GET", link, expired_scope=expired_scope)

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
            headers={
                "Prefer": f'outlook.timezone="UTC", odata.maxpagesize={PAGE_SIZE}',
                **(headers or {}),
            },
        )


_EXPAND = {"$expand": f"singleValueExtendedProperties($filter=id eq '{APPOINTMENT_PROPERTY}')"}


def _translated(exc: http.ProviderApiError, expired_scope: str | None) -> Exception:
    """Graph's errors in the engine's words (calendar-email.md §4.3, §4.7)."""
    if expired_scope is None:
        return exc
    if exc.status == 410:
        return CursorExpired(expired_scope)
    if exc.status == 404:
        return ConfigRequired(
            "The chosen Outlook calendar no longer exists or is no longer shared with this account."
        )
    return exc


def _matches(answer: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether an event Graph answered already says what `body` writes (subject and times)."""
    if text(answer.get("subject")) != body["subject"]:
        return False
    try:
        return all(instant(answer.get(k) or {}) == instant(body[k]) for k in ("start", "end"))
    except ValueError:
        return False


def _timed(event: CalendarEvent) -> CalendarEvent:
    """An all-day event as UTC midnights (free/busy blocks are instants)."""
    if event.start_date is None or event.end_date is None:
        return event
    first = datetime.combine(event.start_date, datetime.min.time(), UTC)
    last = datetime.combine(event.end_date, datetime.min.time(), UTC)
    return event.model_copy(update={"start": first, "end": last})


def _wall(moment: datetime, zone_name: str) -> dict[str, str]:
    """An instant as Graph's dateTimeTimeZone in the appointment's own zone."""
    local = moment.astimezone(zone(zone_name)).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": iana(zone_name) or "UTC"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _link_text(kind: str, link: str, until: datetime | None) -> str:
    return json.dumps({kind: link, "until": until.isoformat() if until else None}, separators=(",", ":"))


def _link_of(stored: str, kind: str) -> tuple[str, datetime | None]:
    """A stored page or cursor: the link and the end of the round's window."""
    try:
        found = json.loads(stored)
    except ValueError:
        return stored, None
    if not isinstance(found, dict):
        return stored, None
    until = found.get("until")
    return text(found.get(kind)), datetime.fromisoformat(until) if isinstance(until, str) else None


def _configured(connection: Connection) -> str:
    chosen = connection.config.get("calendar_id")
    return chosen if isinstance(chosen, str) and chosen else DEFAULT_CALENDAR


def calendars(connection: Connection) -> list[str]:
    """The calendar a connection is linked to: the chosen one (the default calendar until chosen).
    Its change-notification subscriptions watch it and each conflict calendar."""
    return [_configured(connection)]


def push_calendar(connection: Connection) -> str:
    """Where appointments are written: the configured calendar, or the default one."""
    return _configured(connection)


def ADAPTER(
    spec: ProviderSpec,
    connection_id: str,
    credentials: Callable[[], Credentials],
    clock: Callable[[], datetime],
    lookback: timedelta = WINDOW_BEHIND,
) -> OutlookCalendarAdapter:
    """The adapter for one connection, reading its OAuth access token from the credentials; a delta
    round's window starts `lookback` ago (the sync window's past side)."""
    return OutlookCalendarAdapter(spec, connection_id, bearer(credentials), clock, lookback)
