"""Reading a Google calendar: events.list pages (full and incremental), events.instances, free/busy.

What each query returns follows the events.list reference: `syncToken` returns every change since the
token, deleted ones included as `status: "cancelled"`; without it, cancelled items come back only with
`showDeleted=true` or `updatedMin`, except that cancelled exceptions of a series are listed whenever
`singleEvents` and `showDeleted` are both false; `singleEvents=true` expands series into instances and
omits the masters. A page walks the calendar's change log from a cursor, so it costs O(page).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from infra.local.sandbox import gcal_time
from infra.local.sandbox.core import Reply
from infra.local.sandbox.errors import google_error
from infra.local.sandbox.gcal_store import Calendar, Cursor

# A page stops after walking this many log entries even if short (Google pages may be short or empty
# while nextPageToken is present; clients must keep paging).
_SCAN_BUDGET_MIN = 5000
_SCAN_BUDGET_PER_ITEM = 20


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The parsed events.list parameters that decide what an entry yields."""

    since: int | None
    show_deleted: bool
    single_events: bool
    time_min: datetime | None
    time_max: datetime | None
    updated_min: str | None
    text: str | None
    private: tuple[tuple[str, str], ...]
    shared: tuple[tuple[str, str], ...]
    ical_uid: str | None
    event_types: tuple[str, ...]
    order_by: str | None
    now: datetime

    @property
    def incremental(self) -> bool:
        return self.since is not None

    @property
    def deleted_wanted(self) -> bool:
        return self.incremental or self.show_deleted or self.updated_min is not None


def _flag(args: MultiDict[str, str], name: str) -> bool:
    value = args.get(name, "false").lower()
    if value not in ("true", "false"):
        raise Reply(google_error(400, "invalid", f"Invalid value for: {name}"))
    return value == "true"


def _properties(args: MultiDict[str, str], name: str) -> tuple[tuple[str, str], ...]:
    out = []
    for spec in args.getlist(name):
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise Reply(google_error(400, "invalid", f"Invalid value for: {name}"))
        out.append((key, value))
    return tuple(out)


def parse_query(args: MultiDict[str, str], since: int | None, now: float) -> ListQuery:
    """The list parameters, or Google's 400 for a malformed or contradictory one."""
    time_min = gcal_time.query_instant(args.get("timeMin"), "timeMin")
    time_max = gcal_time.query_instant(args.get("timeMax"), "timeMax")
    if time_min is not None and time_max is not None and time_min >= time_max:
        raise Reply(google_error(400, "timeRangeEmpty", "The specified time range is empty.", "calendar"))
    updated = gcal_time.query_instant(args.get("updatedMin"), "updatedMin")
    single = _flag(args, "singleEvents")
    order = args.get("orderBy")
    if order not in (None, "startTime", "updated"):
        raise Reply(google_error(400, "invalid", "Invalid value for: orderBy"))
    if order == "startTime" and not single:
        raise Reply(
            google_error(
                400, "badRequest", "The requested ordering is not available for the particular query."
            )
        )
    return ListQuery(
        since=since,
        show_deleted=_flag(args, "showDeleted"),
        single_events=single,
        time_min=time_min,
        time_max=time_max,
        updated_min=None if updated is None else gcal_time.rfc3339(updated.timestamp()),
        text=(args.get("q") or "").lower() or None,
        private=_properties(args, "privateExtendedProperty"),
        shared=_properties(args, "sharedExtendedProperty"),
        ical_uid=args.get("iCalUID"),
        event_types=tuple(args.getlist("eventTypes")),
        order_by=order,
        now=datetime.fromtimestamp(now, UTC),
    )


def fingerprint(args: MultiDict[str, str]) -> str:
    """The query a page token belongs to (every parameter but pageToken and maxResults)."""
    pairs = sorted(
        (k, v) for k, values in args.lists() for v in values if k not in ("pageToken", "maxResults")
    )
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:24]


def visible(event: dict[str, Any]) -> dict[str, Any]:
    """How an event appears in a list: a deleted one shows only what Google guarantees."""
    if event["status"] != "cancelled":
        return event
    out = {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled"}
    if event.get("recurringEventId"):
        # A cancelled exception hides one instance: it keeps what identifies that instance.
        out["recurringEventId"] = event["recurringEventId"]
        out["originalStartTime"] = event["originalStartTime"]
    return out


def _text_of(event: dict[str, Any]) -> str:
    people = [event.get("organizer") or {}, *(event.get("attendees") or [])]
    parts = [str(event.get(k, "")) for k in ("summary", "description", "location")]
    parts += [f"{p.get('email', '')} {p.get('displayName', '')}" for p in people if isinstance(p, dict)]
    return " ".join(parts).lower()


def _filters_pass(event: dict[str, Any], q: ListQuery) -> bool:
    """Every filter except the time window (which depends on the instance)."""
    if q.updated_min is not None and str(event.get("updated", "")) < q.updated_min:
        return False
    if q.ical_uid is not None and event.get("iCalUID") != q.ical_uid:
        return False
    if q.event_types and event.get("eventType", "default") not in q.event_types:
        return False
    props = event.get("extendedProperties") or {}
    for scope, wanted in (("private", q.private), ("shared", q.shared)):
        have = props.get(scope) or {}
        if any(have.get(k) != v for k, v in wanted):
            return False
    return q.text is None or all(term in _text_of(event) for term in q.text.split())


def _in_window(start: datetime, end: datetime, q: ListQuery) -> bool:
    # timeMin bounds an event's end, timeMax its start, both exclusive.
    return (q.time_min is None or end > q.time_min) and (q.time_max is None or start < q.time_max)


def _instances(cal: Calendar, master: dict[str, Any], q: ListQuery) -> Iterator[dict[str, Any]]:
    """Generated instances of a series in the query's window, minus those an exception replaces."""
    for original, start, end in gcal_time.instance_spans(master, cal.time_zone, q.now, q.time_max):
        if not _in_window(start, end, q):
            continue
        item = gcal_time.instance(master, original, cal.time_zone)
        if item["id"] not in cal.events:
            yield item


def expand(cal: Calendar, event_id: str, q: ListQuery) -> list[dict[str, Any]]:
    """The list items one stored event yields for this query (none, itself, or its instances)."""
    event = cal.events[event_id]
    cancelled = event["status"] == "cancelled"
    is_master = bool(event.get("recurrence"))
    if not q.incremental and not _filters_pass(event, q):
        return []
    if q.single_events and is_master:
        if cancelled and not q.deleted_wanted:
            return []
        # An incremental sync returns every instance of a changed series: windows do not apply.
        window = replace(q, time_min=None, time_max=None) if q.incremental else q
        items = list(_instances(cal, event, window))
        return [visible({**item, "status": "cancelled"}) for item in items] if cancelled else items
    # Cancelled exceptions are listed anyway when neither showDeleted nor singleEvents is set.
    if cancelled and not q.deleted_wanted and (q.single_events or not event.get("recurringEventId")):
        return []
    if not q.incremental and (q.time_min is not None or q.time_max is not None):
        if is_master:
            if not any(
                _in_window(s, e, q)
                for _, s, e in gcal_time.instance_spans(event, cal.time_zone, q.now, q.time_max)
            ):
                return []
        elif not _in_window(*gcal_time.span(event, cal.time_zone), q):
            return []
    return [visible(event)]


def page(
    cal: Calendar, q: ListQuery, cursor: Cursor, max_results: int
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """One page of items from `cursor`, and the cursor of the next page (None on the last page)."""
    if q.order_by == "startTime":
        return _ordered_page(cal, q, cursor, max_results)
    items: list[dict[str, Any]] = []
    budget = max(_SCAN_BUDGET_MIN, _SCAN_BUDGET_PER_ITEM * max_results)
    for scanned, (seq, event_id) in enumerate(cal.entries_from(cursor.seq, cursor.upto), start=1):
        produced = expand(cal, event_id, q)
        first = cursor.skip if seq == cursor.seq else 0
        for index in range(first, len(produced)):
            if len(items) == max_results:
                return items, Cursor(cal.key, seq, index, cursor.upto, cursor.query)
            items.append(produced[index])
        if scanned >= budget:
            return items, Cursor(cal.key, seq + 1, 0, cursor.upto, cursor.query)
    return items, None


def _start_key(cal: Calendar, item: dict[str, Any]) -> tuple[datetime, str]:
    return gcal_time.instant(item.get("start"), "start", cal.time_zone), item["id"]


def _ordered_page(
    cal: Calendar, q: ListQuery, cursor: Cursor, max_results: int
) -> tuple[list[dict[str, Any]], Cursor | None]:
    # orderBy=startTime needs the whole result sorted: O(calendar) per page, as no sync client uses it.
    matched = [
        item
        for _, event_id in cal.entries_from(0, cursor.upto)
        for item in expand(cal, event_id, q)
        if item["status"] != "cancelled" or q.deleted_wanted
    ]
    matched.sort(key=lambda item: _start_key(cal, item) if "start" in item else (q.now, item["id"]))
    end = cursor.offset + max_results
    chunk = matched[cursor.offset : end]
    if end < len(matched):
        return chunk, Cursor(cal.key, 0, 0, cursor.upto, cursor.query, offset=end)
    return chunk, None


def instances_of(
    cal: Calendar, master: dict[str, Any], q: ListQuery, original_start: str | None
) -> list[dict[str, Any]]:
    """events.instances: the series' instances in order, exceptions in place of generated ones."""
    all_day = gcal_time.is_all_day(master["start"])
    wanted = None
    if original_start is not None:
        if all_day:
            wanted = original_start.replace("-", "")
        else:
            moment = gcal_time.query_instant(original_start, "originalStart")
            wanted = None if moment is None else gcal_time.stamp(moment, all_day=False)
    out = []
    for original, start, end in gcal_time.instance_spans(master, cal.time_zone, q.now, q.time_max):
        suffix = gcal_time.stamp(original, all_day)
        if wanted is not None and suffix != wanted:
            continue
        stored = cal.events.get(f"{master['id']}_{suffix}")
        if stored is None:
            item, begins, ends = gcal_time.instance(master, original, cal.time_zone), start, end
        elif stored["status"] == "cancelled" and not q.show_deleted:
            continue
        else:
            item = visible(stored)
            begins, ends = gcal_time.span(stored, cal.time_zone)
        if _in_window(begins, ends, q):
            out.append(item)
    return out


# --- Free/busy ---------------------------------------------------------------------------------------


def _declined(event: dict[str, Any]) -> bool:
    return any(
        isinstance(a, dict) and a.get("self") and a.get("responseStatus") == "declined"
        for a in event.get("attendees") or []
    )


def _blocks(event: dict[str, Any]) -> bool:
    """Whether an event makes its calendar busy: confirmed or tentative, opaque, not declined."""
    return (
        event["status"] != "cancelled"
        and event.get("transparency", "opaque") != "transparent"
        and not _declined(event)
    )


def busy(
    cal: Calendar, time_min: datetime, time_max: datetime, now: datetime
) -> list[tuple[datetime, datetime]]:
    """Merged busy periods of `cal` inside [time_min, time_max), clipped to it."""
    periods: list[tuple[datetime, datetime]] = []
    window = ListQuery(None, False, True, time_min, time_max, None, None, (), (), None, (), None, now)
    for event in cal.events.values():
        if event.get("recurrence"):
            if event["status"] == "cancelled":
                continue
            # Instances replaced by an exception (moved or cancelled) count through the exception.
            periods += [
                gcal_time.span(item, cal.time_zone)
                for item in _instances(cal, event, window)
                if _blocks(item)
            ]
        elif _blocks(event):
            start, end = gcal_time.span(event, cal.time_zone)
            if _in_window(start, end, window):
                periods.append((start, end))
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((max(s, time_min), min(e, time_max)) for s, e in periods):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
