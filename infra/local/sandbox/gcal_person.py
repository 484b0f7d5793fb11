"""Acting as the person in Google Calendar's own UI, and the calendar switches for tests and people.

Every change made here goes through the same write path as the API, so it gets a new etag, shows up
in the next incremental sync, and pushes `exists` to the calendar's live channels, as Google does when
someone edits their calendar in the browser. No access token is needed: these are control routes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import gcal_events, gcal_time
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.gcal_list import visible
from infra.local.sandbox.gcal_store import Calendar, CalendarStore, store_of

DEFAULT_ACCOUNT = "alex@example.com"
_MAX_SEED = 200_000


def _edt(value: Any) -> Any:
    """`2030-01-05` → all-day, `2030-01-05T10:00:00Z` → timed; EventDateTime objects pass through."""
    if value is None or isinstance(value, dict):
        return value
    text = str(value)
    return {"dateTime": text} if "T" in text else {"date": text}


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in body.items() if k in gcal_events.WRITABLE}
    for key in ("start", "end"):
        if key in fields:
            fields[key] = _edt(fields[key])
    return fields


def _writable(sb: Sandbox, account: str, calendar_id: str) -> tuple[CalendarStore, Calendar]:
    store = store_of(sb)
    cal = gcal_events.calendar(sb, store, account, calendar_id)
    if not cal.writable:
        raise Reply(json_response({"error": f"{account} cannot write to {cal.id}"}, 403))
    return store, cal


def _account(request: Request, body: dict[str, Any]) -> str:
    return str(body.get("account") or request.args.get("account") or DEFAULT_ACCOUNT)


def person_create(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """Create an event as the person: {account?, summary, start, end, recurrence?, transparency?, …}.

    `start`/`end` take `2030-01-05T10:00:00Z` (timed) or `2030-01-05` (all-day) or an EventDateTime.
    A series without a time zone is expanded in the calendar's zone. Pushes `exists`.
    """
    body = read_json(request) or {}
    fields = _fields(body)
    if "id" in body:
        fields["id"] = body["id"]
    with sb.state.lock:
        store, cal = _writable(sb, _account(request, body), calendar_id)
        start = fields.get("start")
        if fields.get("recurrence") and isinstance(start, dict) and "dateTime" in start:
            fields["start"] = {"timeZone": cal.time_zone, **start}
            fields["end"] = {"timeZone": cal.time_zone, **(fields.get("end") or {})}
        event = gcal_events.create(sb, store, cal, fields)
    return json_response(event, status=201)


def _shifted(value: dict[str, Any], minutes: int) -> dict[str, Any]:
    if gcal_time.is_all_day(value):
        day = datetime.fromisoformat(str(value["date"])) + timedelta(days=minutes // (24 * 60))
        return {**value, "date": day.strftime("%Y-%m-%d")}
    moment = datetime.fromisoformat(str(value["dateTime"])) + timedelta(minutes=minutes)
    return {**value, "dateTime": moment.isoformat(timespec="seconds")}


def person_edit(sb: Sandbox, request: Request, calendar_id: str, event_id: str) -> Response:
    """Move or edit an event as the person: {account?, start?, end?, summary?, shift_minutes?, …}.

    `shift_minutes` moves start and end together. An instance id (`<series>_20300105T150000Z`) edits
    one occurrence: Google stores it as an exception. Pushes `exists`.
    """
    body = read_json(request) or {}
    fields = _fields(body)
    with sb.state.lock:
        store, cal = _writable(sb, _account(request, body), calendar_id)
        shift = body.get("shift_minutes")
        if shift is not None:
            current = gcal_events.find(sb, cal, event_id)
            if current is None:
                return json_response({"error": f"no event {event_id}"}, 404)
            if not isinstance(shift, int):
                return json_response({"error": "shift_minutes must be an integer"}, 400)
            fields["start"] = _shifted(current["start"], shift)
            fields["end"] = _shifted(current["end"], shift)
        event = gcal_events.modify(sb, store, cal, event_id, fields, replace=False, if_match=None)
    return json_response(event)


def person_delete(sb: Sandbox, request: Request, calendar_id: str, event_id: str) -> Response:
    """Delete an event as the person (`?account=`); an instance id cancels one occurrence. Pushes."""
    with sb.state.lock:
        store, cal = _writable(sb, _account(request, {}), calendar_id)
        gcal_events.delete(sb, store, cal, event_id, None)
        return json_response(visible(cal.events[event_id]))


def calendar_truth(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """What the calendar holds now (`?account=&include_cancelled=1`), to compare a mirror against."""
    include_cancelled = request.args.get("include_cancelled") in ("1", "true")
    with sb.state.lock:
        cal = gcal_events.calendar(sb, store_of(sb), _account(request, {}), calendar_id)
        events = [e for e in cal.events.values() if include_cancelled or e["status"] != "cancelled"]
        body = {"calendar": cal.id, "timeZone": cal.time_zone, "count": len(events), "events": events}
    return json_response(body)


def seed(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """Bulk-create events for load tests: {account?, count, start?, minutes?, every_minutes?, summary?}.

    Events start at `start` (default: tomorrow 09:00 UTC) and follow each other every `every_minutes`
    (default 60). One push for the whole batch.
    """
    body = read_json(request) or {}
    try:
        count = int(body.get("count", 0))
        minutes = int(body.get("minutes", 30))
        every = int(body.get("every_minutes", 60))
    except (TypeError, ValueError):
        return json_response({"error": "count, minutes and every_minutes must be integers"}, 400)
    if not 1 <= count <= _MAX_SEED or minutes < 1 or every < 1:
        return json_response({"error": f"1 <= count <= {_MAX_SEED}; minutes and every_minutes >= 1"}, 400)
    summary = str(body.get("summary") or "Seeded event")
    with sb.state.lock:
        store, cal = _writable(sb, _account(request, body), calendar_id)
        tomorrow = datetime.fromtimestamp(sb.now(), UTC) + timedelta(days=1)
        first = gcal_time.query_instant(
            str(body["start"]) if body.get("start") else None, "start"
        ) or tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)
        for n in range(count):
            start = first + timedelta(minutes=n * every)
            gcal_events.create(
                sb,
                store,
                cal,
                {
                    "summary": f"{summary} {n + 1}",
                    "start": {"dateTime": gcal_time.utc_text(start)},
                    "end": {"dateTime": gcal_time.utc_text(start + timedelta(minutes=minutes))},
                },
                notify=False,
            )
        gcal_events.notify_channels(sb, store, cal)
        total = len(cal.events)
    return json_response({"created": count, "events": total}, status=201)


def expire_sync_tokens(sb: Sandbox, request: Request) -> Response:
    """Kill every sync token of an account or one calendar: {account?, calendar_id?}. Next sync: 410.

    Without `account`, every calendar's tokens die. Google does this on expiry and on ACL changes.
    """
    body = read_json(request) or {}
    account = body.get("account")
    calendar_id = body.get("calendar_id")
    with sb.state.lock:
        store = store_of(sb)
        if account is not None and calendar_id is not None:
            targets = [gcal_events.calendar(sb, store, str(account), str(calendar_id))]
        else:
            targets = [c for c in store.calendars.values() if account is None or c.account == account]
        for cal in targets:
            cal.token_epoch += 1
    return json_response({"expired_calendars": [f"{c.account}:{c.id}" for c in targets]})


def legacy_event(sb: Sandbox, request: Request) -> Response:
    """One route for all three acts: {account, calendar_id, summary, start, end[, id, status, delete]}.

    With the `id` of an existing event it edits it (or deletes it with `delete: true` or
    `status: "cancelled"`); otherwise it creates one.
    """
    body = read_json(request) or {}
    account = _account(request, body)
    calendar_id = str(body.get("calendar_id") or "primary")
    with sb.state.lock:
        store, cal = _writable(sb, account, calendar_id)
        event_id = body.get("id")
        if isinstance(event_id, str) and gcal_events.find(sb, cal, event_id) is not None:
            if body.get("delete") or body.get("status") == "cancelled":
                gcal_events.delete(sb, store, cal, event_id, None)
                return json_response(visible(cal.events[event_id]))
            return json_response(
                gcal_events.modify(sb, store, cal, event_id, _fields(body), replace=False, if_match=None)
            )
        fields = _fields(body)
        if isinstance(event_id, str):
            fields["id"] = event_id
        return json_response(gcal_events.create(sb, store, cal, fields), status=201)


def channels(sb: Sandbox, request: Request) -> Response:
    """The watch channels opened so far, with their expiry and last message number."""
    with sb.state.lock:
        return json_response({"channels": [c.public() for c in store_of(sb).channels.values()]})


def routes() -> list[Route]:
    base = "/_sandbox/google/calendars/<calendar_id>"
    return [
        Route(f"{base}/events", ("POST",), person_create, "control", None),
        Route(f"{base}/events", ("GET",), calendar_truth, "control", None),
        Route(f"{base}/events/<event_id>", ("PATCH",), person_edit, "control", None),
        Route(f"{base}/events/<event_id>", ("DELETE",), person_delete, "control", None),
        Route(f"{base}/seed", ("POST",), seed, "control", None),
        Route("/_sandbox/google/events", ("POST",), legacy_event, "control", None),
        Route("/_sandbox/google/sync_tokens/expire", ("POST",), expire_sync_tokens, "control", None),
        Route("/_sandbox/google/channels", ("GET",), channels, "control", None),
    ]
