"""Act as the iCloud account's owner: create, edit and delete events as Apple Calendar would (plain
CalDAV PUT / DELETE on the account's CalDAV server, so every change gets a new etag and comes back in
the next sync-collection), and expire the sync-tokens given out so far."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import icalendar
from werkzeug.wrappers import Request, Response

from infra.local.sandbox import icloud
from infra.local.sandbox.core import Route, Sandbox, json_response, read_json

DEFAULT_ACCOUNT = "alex@icloud.example"
BASE = "/_sandbox/icloud"
_TIMEOUT = 10


def routes() -> list[Route]:
    events = f"{BASE}/calendars/<calendar>/events"
    return [
        Route(BASE, ("GET",), overview, "control", None),
        Route(events, ("GET", "POST"), events_collection, "control", None),
        Route(f"{events}/<event_id>", ("PUT", "DELETE"), event_item, "control", None),
        Route(f"{events}/<event_id>/instances", ("POST",), instance, "control", None),
        Route(f"{BASE}/sync-tokens/expire", ("POST",), expire_sync_tokens, "control", None),
    ]


def overview(sb: Sandbox, request: Request) -> Response:
    """Where iCloud's CalDAV server is, for any CalDAV client (Apple Calendar, Thunderbird, curl).

    The product connects to `<sandbox>/icloud/` with any Apple ID and an app-specific password of the
    form abcd-efgh-ijkl-mnop; a CalDAV client pointed at that URL with the same credentials sees
    and edits the very same calendars (Home, Work, Family) at /icloud/<dsid>/calendars/<name>/.
    `radicale_url` is the CalDAV server behind it (no password check there, loopback only)."""
    server = icloud.server_for(sb)
    base = request.host_url.rstrip("/")
    return json_response(
        {
            "caldav_url": f"{base}{icloud.BASE}/",
            "radicale_url": server.url,
            "calendars": icloud.CALENDARS,
            "app_password_pattern": icloud.APP_PASSWORD.pattern,
        }
    )


def events_collection(sb: Sandbox, request: Request, calendar: str) -> Response:
    """GET lists the calendar's events (`?account=`); POST creates one as the person.

    POST {"account", "summary", "start", "end" (RFC 3339, or dates YYYY-MM-DD for all-day), "time_zone"
    (IANA, the zone the times are written in; default UTC), "rrule" ("FREQ=WEEKLY;COUNT=5"),
    "transparent" (true: free), "status"} or {"account", "ics"} (a whole VCALENDAR). Answers 201 with
    {"id", "uid", "etag"}; `id` is the resource name the adapter's external id is."""
    body = read_json(request) or {}
    account = str(request.args.get("account") or body.get("account") or DEFAULT_ACCOUNT)
    server, dsid = icloud.account_server(sb, account)
    if calendar not in icloud.CALENDARS and not _exists(server, dsid, calendar):
        return json_response({"error": "unknown_calendar", "calendar": calendar}, 404)
    if request.method == "GET":
        return json_response({"events": _list(server, dsid, calendar)})
    uid = str(body.get("uid") or uuid.uuid4())
    name = f"{uid}.ics"
    try:
        ics = _ics(uid, body)
    except (KeyError, ValueError) as exc:
        return json_response({"error": "invalid_request", "message": str(exc)}, 400)
    etag = _put(server, dsid, calendar, name, ics)
    return json_response({"id": name, "uid": uid, "etag": etag}, 201)


def event_item(sb: Sandbox, request: Request, calendar: str, event_id: str) -> Response:
    """PUT replaces the event as the person edits it (same body as POST, `?account=`); DELETE deletes it.
    No etag is needed: the person's own edit always lands, and gets a new etag."""
    body = read_json(request) or {}
    account = str(request.args.get("account") or body.get("account") or DEFAULT_ACCOUNT)
    server, dsid = icloud.account_server(sb, account)
    url = _url(server, dsid, calendar, event_id)
    if request.method == "DELETE":
        answer = server.http.delete(url, auth=(dsid, ""), timeout=_TIMEOUT)
        return Response("", 204 if answer.status_code in (200, 204) else answer.status_code)
    current = server.http.get(url, auth=(dsid, ""), timeout=_TIMEOUT)
    if current.status_code == 404:
        return json_response({"error": "not_found", "id": event_id}, 404)
    uid = str(icalendar.Calendar.from_ical(current.text).walk("VEVENT")[0]["UID"])
    try:
        ics = _ics(uid, body)
    except (KeyError, ValueError) as exc:
        return json_response({"error": "invalid_request", "message": str(exc)}, 400)
    etag = _put(server, dsid, calendar, event_id, ics)
    return json_response({"id": event_id, "uid": uid, "etag": etag})


def instance(sb: Sandbox, request: Request, calendar: str, event_id: str) -> Response:
    """Edit or cancel one instance of a recurring event, as the person would in Apple Calendar.

    {"account", "original_start" (the instance's start as RFC 3339), "cancel": true} adds an EXDATE;
    {"account", "original_start", "summary", "start", "end"} adds (or replaces) a RECURRENCE-ID
    override in the same resource."""
    body = read_json(request) or {}
    account = str(body.get("account") or DEFAULT_ACCOUNT)
    server, dsid = icloud.account_server(sb, account)
    url = _url(server, dsid, calendar, event_id)
    current = server.http.get(url, auth=(dsid, ""), timeout=_TIMEOUT)
    if current.status_code == 404:
        return json_response({"error": "not_found", "id": event_id}, 404)
    try:
        original = _moment(str(body["original_start"]))
    except (KeyError, ValueError):
        return json_response({"error": "invalid_request", "message": "original_start is required"}, 400)
    cal = icalendar.Calendar.from_ical(current.text)
    master = next(e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e)
    zone = master.decoded("DTSTART").tzinfo or UTC
    original_local = original.astimezone(zone) if isinstance(original, datetime) else original
    # Drop an earlier override of this instance: the new edit or the cancellation replaces it.
    cal.subcomponents = [
        c
        for c in cal.subcomponents
        if not (c.name == "VEVENT" and "RECURRENCE-ID" in c and c.decoded("RECURRENCE-ID") == original_local)
    ]
    if body.get("cancel"):
        master.add("EXDATE", original_local)
    else:
        override = icalendar.Event()
        override.add("UID", master["UID"])
        override.add("DTSTAMP", datetime.now(UTC))
        override.add("RECURRENCE-ID", original_local)
        override.add("DTSTART", _moment(str(body["start"])))
        override.add("DTEND", _moment(str(body["end"])))
        override.add("SUMMARY", str(body.get("summary") or master.get("SUMMARY", "")))
        cal.add_component(override)
    etag = _put(server, dsid, calendar, event_id, cal.to_ical().decode())
    return json_response({"id": event_id, "etag": etag})


def expire_sync_tokens(sb: Sandbox, request: Request) -> Response:
    """Fault switch: every sync-token given out so far (for any account) becomes unknown, so the next
    sync-collection with it answers 403 with the DAV:valid-sync-token precondition, as when iCloud
    expires a token. A token of a calendar that has not changed since stays valid (it names the
    calendar's current state)."""
    return json_response({"expired": icloud.server_for(sb).expire_sync_tokens()})


# --- helpers ---


def _exists(server: Any, dsid: str, calendar: str) -> bool:
    answer = server.http.request(
        "PROPFIND", f"{server.url}/{dsid}/{quote(calendar)}/", auth=(dsid, ""), timeout=_TIMEOUT
    )
    return bool(answer.status_code == 207)


def _url(server: Any, dsid: str, calendar: str, event_id: str) -> str:
    return f"{server.url}/{dsid}/{quote(calendar)}/{quote(event_id)}"


def _put(server: Any, dsid: str, calendar: str, name: str, ics: str) -> str:
    answer = server.http.put(
        _url(server, dsid, calendar, name),
        data=ics.encode(),
        auth=(dsid, ""),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
        timeout=_TIMEOUT,
    )
    answer.raise_for_status()
    return str(answer.headers.get("ETag", ""))


def _list(server: Any, dsid: str, calendar: str) -> list[dict[str, Any]]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"/></c:filter></c:calendar-query>'
    )
    answer = server.http.request(
        "REPORT",
        f"{server.url}/{dsid}/{quote(calendar)}/",
        data=body.encode(),
        auth=(dsid, ""),
        headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
        timeout=_TIMEOUT,
    )
    from caldav.davclient import DAVResponse

    found = DAVResponse(answer).find_objects_and_props()
    events = []
    for href, props in sorted(found.items()):
        data = props.get("{urn:ietf:params:xml:ns:caldav}calendar-data")
        etag = props.get("{DAV:}getetag")
        if data is None or not data.text:
            continue
        master = next(
            (e for e in icalendar.Calendar.from_ical(data.text).walk("VEVENT") if "RECURRENCE-ID" not in e),
            None,
        )
        events.append(
            {
                "id": href.rstrip("/").rsplit("/", 1)[-1],
                "uid": str(master["UID"]) if master is not None else "",
                "summary": str(master.get("SUMMARY", "")) if master is not None else "",
                "etag": etag.text if etag is not None else "",
            }
        )
    return events


def _ics(uid: str, body: dict[str, Any]) -> str:
    if body.get("ics"):
        return str(body["ics"])
    zone = ZoneInfo(str(body.get("time_zone") or "UTC"))
    start, end = _moment(str(body["start"])), _moment(str(body["end"]))
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//sandbox person//Apple Calendar stand-in//EN")
    cal.add("VERSION", "2.0")
    event = icalendar.Event()
    event.add("UID", uid)
    event.add("DTSTAMP", datetime.now(UTC))
    event.add("DTSTART", start.astimezone(zone) if isinstance(start, datetime) else start)
    event.add("DTEND", end.astimezone(zone) if isinstance(end, datetime) else end)
    event.add("SUMMARY", str(body.get("summary") or ""))
    if body.get("rrule"):
        event.add("RRULE", icalendar.vRecur.from_ical(str(body["rrule"])))
    if body.get("transparent"):
        event.add("TRANSP", "TRANSPARENT")
    if body.get("status"):
        event.add("STATUS", str(body["status"]).upper())
    cal.add_component(event)
    if zone.key != "UTC":
        cal.add_missing_timezones()
    return str(cal.to_ical().decode())


def _moment(value: str) -> datetime | date:
    if len(value) == 10:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
