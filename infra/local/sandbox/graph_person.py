"""Acting as the person in Outlook, and the Graph switches for tests and people.

Every change made here goes through the API's own write path (`graph_writes`), so it gets a new
changeKey and etag, shows up in the next calendarView delta round, and sends a change notification to
every live subscription on the calendar, as Outlook does when someone edits their calendar. No access
token is needed: these are control routes. `calendar_id` is `default` or an id from `/me/calendars`;
`account` defaults to `alex@example.com`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import graph_delta, graph_notify, graph_time, graph_writes
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.graph_events import chosen_calendar
from infra.local.sandbox.graph_store import find, instances, store_of, writable_calendars

DEFAULT_ACCOUNT = "alex@example.com"
# The window the truth route shows by default: the same one the product's Outlook sync reads.
TRUTH_LOOKBACK = timedelta(days=30)
TRUTH_LOOKAHEAD = timedelta(days=365)
_MAX_SEED = 20_000


def _account(request: Request, body: dict[str, Any]) -> str:
    return str(body.get("account") or request.args.get("account") or DEFAULT_ACCOUNT)


def _when(value: Any, zone_name: str) -> tuple[Any, bool]:
    """`2030-01-05T10:00:00Z` (UTC), `2030-01-05T10:00:00` (in `time_zone`), `2030-01-05` (all-day),
    or a dateTimeTimeZone; the second value says whether it was a date."""
    if value is None or isinstance(value, dict):
        return value, False
    text = str(value)
    if "T" not in text:
        return {"dateTime": f"{text}T00:00:00", "timeZone": zone_name}, True
    if text.endswith("Z"):
        return {"dateTime": text.removesuffix("Z"), "timeZone": "UTC"}, False
    return {"dateTime": text, "timeZone": zone_name}, False


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = {k: body[k] for k in graph_writes.WRITABLE + graph_writes.PERSON_ONLY if k in body}
    zone_name = str(body.get("time_zone") or "UTC")
    for key in ("start", "end"):
        if key in fields:
            fields[key], is_date = _when(fields[key], zone_name)
            if is_date:
                fields["isAllDay"] = True
    return fields


def _calendar(account: str, calendar_id: str) -> str:
    chosen = chosen_calendar(account, None if calendar_id == "default" else calendar_id)
    if not writable_calendars(account)[chosen]:
        raise Reply(json_response({"error": f"{account} cannot write to {chosen}"}, 403))
    return chosen


def person_create(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """Create an event as the person: {account?, subject, start, end, time_zone?, recurrence?, showAs?,
    responseStatus?, isOrganizer?, …}.

    `start`/`end` take `2030-01-05T10:00:00Z` (UTC), `2030-01-05T10:00:00` (wall time in `time_zone`),
    `2030-01-05` (all-day) or a dateTimeTimeZone. `recurrence` is Graph's patternedRecurrence
    (daily, weekly, absoluteMonthly). `responseStatus: {"response": "declined"}` with `isOrganizer:
    false` makes a declined invitation. Notifies subscriptions.
    """
    body = read_json(request) or {}
    account = _account(request, body)
    with sb.state.lock:
        event = graph_writes.create(sb, account, _calendar(account, calendar_id), _fields(body), person=True)
        return json_response(graph_writes.present(event, "UTC"), 201)


def calendar_truth(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """What a calendar view shows now (`?account=&start=&end=`, in UTC), to compare a mirror against.

    The window defaults to 30 days back and 365 days ahead of the sandbox clock: the one the product's
    Outlook sync reads. Singles, occurrences and exceptions, as calendarView expands them.
    """
    account = _account(request, {})
    now = datetime.fromtimestamp(sb.now(), UTC)
    start = (
        graph_time.query_instant(request.args.get("start"), "start")
        if request.args.get("start")
        else now - TRUTH_LOOKBACK
    )
    end = (
        graph_time.query_instant(request.args.get("end"), "end")
        if request.args.get("end")
        else now + TRUTH_LOOKAHEAD
    )
    with sb.state.lock:
        chosen = chosen_calendar(account, None if calendar_id == "default" else calendar_id)
        events = [
            graph_writes.present(e, "UTC", "singleValueExtendedProperties")
            for e in instances(store_of(sb), account, chosen, start, end)
        ]
    return json_response({"calendar": chosen, "count": len(events), "events": events})


def _shifted(value: dict[str, Any], minutes: int) -> dict[str, Any]:
    moment, zone_name = graph_time.wall(value, "start")
    return {"dateTime": graph_time.graph_text(moment + timedelta(minutes=minutes)), "timeZone": zone_name}


def person_edit(sb: Sandbox, request: Request, event_id: str) -> Response:
    """Edit an event as the person: {account?, subject?, start?, end?, showAs?, shift_minutes?, …}.

    `shift_minutes` moves start and end together. An occurrence id edits that one occurrence, which
    Outlook keeps as an exception of its series. Notifies subscriptions.
    """
    body = read_json(request) or {}
    account = _account(request, body)
    fields = _fields(body)
    with sb.state.lock:
        shift = body.get("shift_minutes")
        if shift is not None:
            if not isinstance(shift, int):
                return json_response({"error": "shift_minutes must be an integer"}, 400)
            current = find(store_of(sb), account, event_id)
            fields["start"] = _shifted(current["start"], shift)
            fields["end"] = _shifted(current["end"], shift)
        event = graph_writes.update(sb, account, event_id, fields, None, person=True)
        return json_response(graph_writes.present(event, "UTC"))


def person_delete(sb: Sandbox, request: Request, event_id: str) -> Response:
    """Delete an event as the person (`?account=`); an occurrence id cancels that one occurrence.
    Notifies subscriptions."""
    account = _account(request, {})
    with sb.state.lock:
        gone = graph_writes.delete(sb, account, event_id, None)
    return json_response({"id": gone["id"], "deleted": True})


def seed(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """Bulk-create events: {account?, count, start?, minutes?, every_minutes?, subject?}.

    Events start at `start` (default: tomorrow 09:00 UTC) and follow each other every `every_minutes`
    (default 60), each `minutes` long (default 30).
    """
    body = read_json(request) or {}
    try:
        count, minutes = int(body.get("count", 0)), int(body.get("minutes", 30))
        every = int(body.get("every_minutes", 60))
    except (TypeError, ValueError):
        return json_response({"error": "count, minutes and every_minutes must be integers"}, 400)
    if not 1 <= count <= _MAX_SEED or minutes < 1 or every < 1:
        return json_response({"error": f"1 <= count <= {_MAX_SEED}; minutes and every_minutes >= 1"}, 400)
    account = _account(request, body)
    subject = str(body.get("subject") or "Seeded event")
    tomorrow = datetime.fromtimestamp(sb.now(), UTC) + timedelta(days=1)
    first = (
        graph_time.query_instant(str(body["start"]), "start")
        if body.get("start")
        else tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)
    )
    with sb.state.lock:
        chosen = _calendar(account, calendar_id)
        for n in range(count):
            start = first + timedelta(minutes=n * every)
            fields = {
                "subject": f"{subject} {n + 1}",
                "start": {"dateTime": graph_time.graph_text(start.replace(tzinfo=None)), "timeZone": "UTC"},
                "end": {
                    "dateTime": graph_time.graph_text(
                        (start + timedelta(minutes=minutes)).replace(tzinfo=None)
                    ),
                    "timeZone": "UTC",
                },
            }
            graph_writes.create(sb, account, chosen, fields, person=True)
    return json_response({"created": count}, 201)


def expire_delta_tokens(sb: Sandbox, request: Request) -> Response:
    """Kill every deltaLink and nextLink of one mailbox ({account}) or of all ({}): the next call
    answers 410 `syncStateNotFound` and the client must start a new round."""
    body = read_json(request) or {}
    account = body.get("account")
    with sb.state.lock:
        expired = graph_delta.expire(store_of(sb), str(account) if account else None)
    return json_response({"expired_accounts": expired})


def lifecycle(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/outlook/lifecycle {account, event, subscription_id?}: Graph sends a lifecycle
    notification (`reauthorizationRequired`, `subscriptionRemoved` or `missed`) to the lifecycle URL of
    every live event subscription of the mailbox, or only of the one named. `subscriptionRemoved` also
    removes it at Graph, as Graph does (its change notifications stop)."""
    body = read_json(request) or {}
    account = _account(request, body)
    event = str(body.get("event") or "reauthorizationRequired")
    if event not in graph_notify.LIFECYCLE_EVENTS:
        allowed = ", ".join(graph_notify.LIFECYCLE_EVENTS)
        return json_response({"error": f"event must be one of {allowed}"}, 400)
    only = body.get("subscription_id")
    with sb.state.lock:
        chosen = [
            s
            for s in store_of(sb).subscriptions.values()
            if not s.deleted
            and s.account.lower() == account.lower()
            and not s.mail_folder
            and (only is None or s.id == only)
        ]
        sent = graph_notify.lifecycle(sb, chosen, event)
    return json_response({"sent": sent})


def routes() -> list[Route]:
    base = "/_sandbox/outlook"
    return [
        Route(f"{base}/calendars/<calendar_id>/events", ("POST",), person_create, "control", None),
        Route(f"{base}/calendars/<calendar_id>/events", ("GET",), calendar_truth, "control", None),
        Route(f"{base}/calendars/<calendar_id>/seed", ("POST",), seed, "control", None),
        Route(f"{base}/events/<event_id>", ("PATCH",), person_edit, "control", None),
        Route(f"{base}/events/<event_id>", ("DELETE",), person_delete, "control", None),
        Route(f"{base}/delta_tokens/expire", ("POST",), expire_delta_tokens, "control", None),
        Route(f"{base}/lifecycle", ("POST",), lifecycle, "control", None),
    ]
