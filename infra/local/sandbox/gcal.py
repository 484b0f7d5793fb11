"""Google Calendar API v3: calendarList, events (list with sync/page tokens, insert, get, patch, update,
delete), events.watch / channels.stop, and the push notifications a change sends to each channel.

Semantics follow /work/shared/providers/calendar-email.md §2: deleted events come back only to sync
queries, `nextSyncToken` only on the last page, 410 `fullSyncRequired` for a dead sync token, headers-only
notifications with message number 1 for `sync`.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.dialects import display_name, stable_alnum
from infra.local.sandbox.errors import google_error
from infra.local.sandbox.push import Delivery, is_loopback_url

WRITE_SCOPES = {"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/calendar.events"}
READ_SCOPES = WRITE_SCOPES | {
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events.readonly",
}
_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
_CHANNEL_ID = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")
_NOT_WITH_SYNC_TOKEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
_WRITABLE = (
    "summary",
    "description",
    "location",
    "start",
    "end",
    "status",
    "transparency",
    "visibility",
    "attendees",
    "recurrence",
    "extendedProperties",
    "reminders",
    "colorId",
    "guestsCanModify",
    "source",
)
DEFAULT_CHANNEL_TTL = 7 * 24 * 3600
MAX_CHANNEL_TTL = 30 * 24 * 3600


@dataclass
class Calendar:
    account: str
    id: str
    summary: str
    access_role: str
    primary: bool
    watchable: bool
    time_zone: str = "America/New_York"
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    # event id -> store sequence number of its last change
    changed_at: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.account}|{self.id}"

    @property
    def writable(self) -> bool:
        return self.access_role in ("owner", "writer")


@dataclass
class SyncTokenRecord:
    calendar_key: str
    seq: int
    issued_at: float
    valid: bool = True


@dataclass
class PageRecord:
    calendar_key: str
    fingerprint: str
    ids: list[str]
    offset: int
    snapshot_seq: int


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    token: str | None
    address: str
    expiration_ms: int
    client_id: str
    account: str
    calendar_key: str
    message_number: int = 1
    stopped: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
            "address": self.address,
            "expiration": str(self.expiration_ms),
            "account": self.account,
            "calendar": self.calendar_key.split("|", 1)[1],
            "stopped": self.stopped,
        }


@dataclass
class CalendarStore:
    calendars: dict[str, Calendar] = field(default_factory=dict)
    sync_tokens: dict[str, SyncTokenRecord] = field(default_factory=dict)
    page_tokens: dict[str, PageRecord] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    seq: int = 1000

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def store_of(sb: Sandbox) -> CalendarStore:
    """The calendar store (callers hold the state lock)."""
    store = sb.state.extensions.get("gcal")
    if not isinstance(store, CalendarStore):
        store = CalendarStore()
        sb.state.extensions["gcal"] = store
    return store


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _ensure_account(sb: Sandbox, store: CalendarStore, account: str) -> None:
    if any(c.account == account for c in store.calendars.values()):
        return
    team_id = f"c_{stable_alnum(26, 'gcal-team', account).lower()}@group.calendar.google.com"
    for cal in (
        Calendar(account, account, account, "owner", primary=True, watchable=True),
        Calendar(account, team_id, "Team bookings", "writer", primary=False, watchable=True),
        Calendar(
            account,
            "en.usa#holiday@group.v.calendar.google.com",
            "Holidays in United States",
            "reader",
            primary=False,
            watchable=False,
        ),
    ):
        store.calendars[cal.key] = cal
    # Two existing events, so a first full sync has something to read.
    primary = store.calendars[f"{account}|{account}"]
    day = datetime.fromtimestamp(sb.now(), UTC).strftime("%Y-%m-%d")
    for summary, start, end in (("Team standup", "15:00:00", "15:15:00"), ("Lunch", "17:00:00", "18:00:00")):
        _create(
            sb,
            store,
            primary,
            {
                "summary": summary,
                "start": {"dateTime": f"{day}T{start}Z"},
                "end": {"dateTime": f"{day}T{end}Z"},
            },
            notify=False,
        )


def _calendar(sb: Sandbox, store: CalendarStore, account: str, calendar_id: str) -> Calendar:
    _ensure_account(sb, store, account)
    cid = account if calendar_id == "primary" else calendar_id
    cal = store.calendars.get(f"{account}|{cid}")
    if cal is None:
        raise Reply(google_error(404, "notFound", "Not Found"))
    return cal


def _instant(value: Any, which: str) -> datetime:
    """A start/end EventDateTime as an aware datetime (all-day dates at midnight UTC)."""
    if not isinstance(value, dict) or not ("dateTime" in value or "date" in value):
        raise Reply(google_error(400, "required", f"Missing {which} time."))
    try:
        if "date" in value and "dateTime" not in value:
            return datetime.fromisoformat(str(value["date"])).replace(tzinfo=UTC)
        moment = datetime.fromisoformat(str(value["dateTime"]))
    except ValueError:
        raise Reply(google_error(400, "invalid", f"Invalid {which} time.")) from None
    if moment.tzinfo is None:
        zone = value.get("timeZone")
        if not zone:
            raise Reply(google_error(400, "invalid", f"Missing time zone definition for {which} time."))
        try:
            moment = moment.replace(tzinfo=ZoneInfo(str(zone)))
        except (ZoneInfoNotFoundError, ValueError):
            raise Reply(
                google_error(400, "timeZoneInvalid", f"Invalid time zone definition for {which} time.")
            ) from None
    return moment


def _check_times(event: dict[str, Any]) -> None:
    if _instant(event.get("end"), "end") < _instant(event.get("start"), "start"):
        raise Reply(google_error(400, "timeRangeEmpty", "The specified time range is empty.", "calendar"))


def _conference(event: dict[str, Any], body: dict[str, Any], version: str | None) -> None:
    """Meet links: honoured only with conferenceDataVersion=1, as at Google."""
    request = (
        (body.get("conferenceData") or {}).get("createRequest")
        if isinstance(body.get("conferenceData"), dict)
        else None
    )
    if version != "1" or not isinstance(request, dict):
        return
    code = "-".join(stable_alnum(n, "meet", event["id"], str(n)).lower() for n in (3, 4, 3))
    code = re.sub(r"[^a-z-]", "m", code)
    uri = f"https://meet.google.com/{code}"
    event["conferenceData"] = {
        "createRequest": {**request, "status": {"statusCode": "success"}},
        "entryPoints": [{"entryPointType": "video", "uri": uri, "label": uri.removeprefix("https://")}],
        "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
        "conferenceId": code,
    }
    event["hangoutLink"] = uri


def _stamp(sb: Sandbox, store: CalendarStore, cal: Calendar, event: dict[str, Any]) -> None:
    seq = store.next_seq()
    event["etag"] = f'"{seq}"'
    event["updated"] = _rfc3339(sb.now())
    cal.changed_at[event["id"]] = seq


def _create(
    sb: Sandbox,
    store: CalendarStore,
    cal: Calendar,
    body: dict[str, Any],
    *,
    notify: bool = True,
    conference_version: str | None = None,
) -> dict[str, Any]:
    event_id = body.get("id")
    if event_id is not None:
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise Reply(google_error(400, "invalid", "Invalid resource id value."))
        if event_id in cal.events:
            raise Reply(google_error(409, "duplicate", "The requested identifier already exists."))
    else:
        event_id = secrets.token_hex(13).translate(str.maketrans("abcdef", "ghijkl"))
    now = _rfc3339(sb.now())
    person = {"email": cal.account, "self": True, "displayName": display_name(cal.account)}
    event: dict[str, Any] = {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": now,
        "creator": person,
        "organizer": {**person, "email": cal.id} if not cal.primary else person,
        "iCalUID": body.get("iCalUID") or f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": body.get("eventType", "default"),
    }
    event.update({k: copy.deepcopy(body[k]) for k in _WRITABLE if k in body})
    if event["status"] not in ("confirmed", "tentative", "cancelled"):
        raise Reply(google_error(400, "invalid", "Invalid value for: status"))
    _check_times(event)
    _conference(event, body, conference_version)
    cal.events[event_id] = event
    _stamp(sb, store, cal, event)
    if notify:
        _notify(sb, store, cal)
    return event


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge key by key, arrays and scalars replace."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _modify(
    sb: Sandbox,
    store: CalendarStore,
    cal: Calendar,
    event_id: str,
    body: dict[str, Any],
    *,
    replace: bool,
    if_match: str | None,
    conference_version: str | None = None,
) -> dict[str, Any]:
    event = cal.events.get(event_id)
    if event is None:
        raise Reply(google_error(404, "notFound", "Not Found"))
    if if_match and if_match != "*" and if_match != event["etag"]:
        raise Reply(google_error(412, "conditionNotMet", "Precondition Failed", location="If-Match"))
    changes = {k: body[k] for k in _WRITABLE if k in body}
    if replace:
        updated = {k: v for k, v in event.items() if k not in _WRITABLE} | {"status": "confirmed"}
        updated.update(copy.deepcopy(changes))
    else:
        updated = _merge(event, changes)
    _check_times(updated)
    if updated.get("start") != event.get("start") or updated.get("end") != event.get("end"):
        updated["sequence"] = int(event.get("sequence", 0)) + 1
    _conference(updated, body, conference_version)
    cal.events[event_id] = updated
    _stamp(sb, store, cal, updated)
    _notify(sb, store, cal)
    return updated


def _delete(sb: Sandbox, store: CalendarStore, cal: Calendar, event_id: str, if_match: str | None) -> None:
    event = cal.events.get(event_id)
    if event is None:
        raise Reply(google_error(404, "notFound", "Not Found"))
    if event["status"] == "cancelled":
        raise Reply(google_error(410, "deleted", "Resource has been deleted"))
    if if_match and if_match != "*" and if_match != event["etag"]:
        raise Reply(google_error(412, "conditionNotMet", "Precondition Failed", location="If-Match"))
    event["status"] = "cancelled"
    _stamp(sb, store, cal, event)
    _notify(sb, store, cal)


# --- Push notifications ----------------------------------------------------------------------------


def _deliver(sb: Sandbox, channel: Channel, state: str) -> None:
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
        "X-Goog-Message-Number": str(channel.message_number),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": channel.resource_uri,
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    }
    if channel.token is not None:
        headers["X-Goog-Channel-Token"] = channel.token
    sb.pushes.submit(
        Delivery(url=channel.address, headers=headers, body=b"", label=f"google_calendar:{state}")
    )


def _notify(sb: Sandbox, store: CalendarStore, cal: Calendar) -> None:
    now_ms = int(sb.now() * 1000)
    for channel in store.channels.values():
        if channel.calendar_key == cal.key and not channel.stopped and channel.expiration_ms > now_ms:
            # Message numbers grow but not one by one (Google documents them as non-sequential).
            channel.message_number += 1 + secrets.randbelow(3)
            _deliver(sb, channel, "exists")


# --- HTTP handlers ---------------------------------------------------------------------------------


def calendar_list(sb: Sandbox, request: Request) -> Response:
    grant = require_token(sb, request, "google", READ_SCOPES)
    with sb.state.lock:
        store = store_of(sb)
        _ensure_account(sb, store, grant.account)
        items = [
            {
                "kind": "calendar#calendarListEntry",
                "etag": f'"{stable_alnum(10, "gcal-etag", c.key)}"',
                "id": c.id,
                "summary": c.summary,
                "timeZone": c.time_zone,
                "colorId": "14",
                "backgroundColor": "#9fe1e7",
                "foregroundColor": "#000000",
                "selected": True,
                "accessRole": c.access_role,
                "defaultReminders": [],
                **({"primary": True} if c.primary else {}),
            }
            for c in store.calendars.values()
            if c.account == grant.account
        ]
    return json_response(
        {
            "kind": "calendar#calendarList",
            "etag": f'"{store.seq}"',
            "items": items,
            "nextSyncToken": f"sbx-cl-{store.seq}",
        }
    )


def _fingerprint(request: Request) -> str:
    pairs = sorted(
        (k, v) for k, values in request.args.lists() for v in values if k not in ("pageToken", "maxResults")
    )
    return json.dumps(pairs)


def _matches(event: dict[str, Any], request: Request) -> bool:
    args = request.args
    if args.get("timeMin") or args.get("timeMax"):
        start, end = _instant(event["start"], "start"), _instant(event["end"], "end")
        for name in ("timeMin", "timeMax"):
            raw = args.get(name)
            if raw is None:
                continue
            try:
                bound = datetime.fromisoformat(raw)
            except ValueError:
                raise Reply(google_error(400, "badRequest", f"Bad Request: invalid {name}")) from None
            if bound.tzinfo is None:
                raise Reply(google_error(400, "badRequest", f"Bad Request: {name} needs a time zone offset"))
            # timeMin bounds an event's end, timeMax its start, both exclusive.
            if (name == "timeMin" and end <= bound) or (name == "timeMax" and start >= bound):
                return False
    q = args.get("q")
    if q and q.lower() not in f"{event.get('summary', '')} {event.get('description', '')}".lower():
        return False
    for spec in args.getlist("privateExtendedProperty"):
        key, _, value = spec.partition("=")
        if (event.get("extendedProperties") or {}).get("private", {}).get(key) != value:
            return False
    return not args.get("iCalUID") or event.get("iCalUID") == args.get("iCalUID")


def _visible(event: dict[str, Any]) -> dict[str, Any]:
    if event["status"] == "cancelled":
        # Only `id` is guaranteed on a deleted event: give no more, so clients cannot lean on more.
        return {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled"}
    return event


def events_list(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    grant = require_token(sb, request, "google", READ_SCOPES)
    args = request.args
    try:
        max_results = int(args.get("maxResults", "250"))
    except ValueError:
        return google_error(400, "invalid", "Invalid value for: maxResults")
    if not 1 <= max_results <= 2500:
        return google_error(400, "invalid", "Invalid value for: maxResults")
    if args.get("orderBy") == "startTime" and args.get("singleEvents") != "true":
        return google_error(
            400, "badRequest", "The requested ordering is not available for the particular query."
        )
    sync_token = args.get("syncToken")
    if sync_token is not None:
        clash = [name for name in _NOT_WITH_SYNC_TOKEN if name in args]
        if clash or args.get("showDeleted") == "false":
            return google_error(
                400,
                "invalid",
                "Sync token cannot be used with other query parameters: "
                + ", ".join(clash or ["showDeleted=false"]),
            )
    with sb.state.lock:
        store = store_of(sb)
        cal = _calendar(sb, store, grant.account, calendar_id)
        page_token = args.get("pageToken")
        if page_token is not None:
            page = store.page_tokens.get(page_token)
            if page is None or page.calendar_key != cal.key or page.fingerprint != _fingerprint(request):
                return google_error(400, "invalid", "Invalid page token value.", location="pageToken")
        else:
            since: int | None = None
            if sync_token is not None:
                record = store.sync_tokens.get(sync_token)
                expired = record is not None and sb.now() - record.issued_at > sb.config.sync_token_ttl
                if record is None or not record.valid or expired or record.calendar_key != cal.key:
                    return google_error(
                        410,
                        "fullSyncRequired",
                        "Sync token is no longer valid, a full sync is required.",
                        location="syncToken",
                        locationType="parameter",
                    )
                since = record.seq
            ids = []
            for event_id, event in cal.events.items():
                if since is not None:
                    if cal.changed_at[event_id] > since:
                        ids.append(event_id)
                elif (event["status"] != "cancelled" or args.get("showDeleted") == "true") and _matches(
                    event, request
                ):
                    ids.append(event_id)
            order = args.get("orderBy")
            if order == "startTime":
                ids.sort(key=lambda i: _instant(cal.events[i]["start"], "start"))
            elif order == "updated":
                ids.sort(key=lambda i: cal.changed_at[i])
            else:
                ids.sort(key=lambda i: cal.changed_at[i])
            page = PageRecord(cal.key, _fingerprint(request), ids, 0, store.seq)
        chunk = page.ids[page.offset : page.offset + max_results]
        items = [_visible(cal.events[i]) for i in chunk if i in cal.events]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{store.seq}"',
            "summary": cal.summary,
            "description": "",
            "updated": _rfc3339(sb.now()),
            "timeZone": cal.time_zone,
            "accessRole": cal.access_role,
            "defaultReminders": [],
            "items": items,
        }
        if page.offset + max_results < len(page.ids):
            token = "sbx-page-" + secrets.token_urlsafe(18)
            store.page_tokens[token] = PageRecord(
                page.calendar_key, page.fingerprint, page.ids, page.offset + max_results, page.snapshot_seq
            )
            body["nextPageToken"] = token
        else:
            token = "sbx-sync-" + secrets.token_urlsafe(18)
            store.sync_tokens[token] = SyncTokenRecord(cal.key, page.snapshot_seq, sb.now())
            body["nextSyncToken"] = token
    return json_response(body)


def _writable_calendar(sb: Sandbox, request: Request, calendar_id: str) -> tuple[CalendarStore, Calendar]:
    grant = require_token(sb, request, "google", WRITE_SCOPES)
    store = store_of(sb)
    cal = _calendar(sb, store, grant.account, calendar_id)
    if not cal.writable:
        raise Reply(
            google_error(
                403, "requiredAccessLevel", "You need to have writer access to this calendar.", "calendar"
            )
        )
    return store, cal


def _body(request: Request) -> dict[str, Any]:
    body = read_json(request)
    if body is None:
        raise Reply(google_error(400, "parseError", "Parse Error"))
    return body


def events_insert(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    body = _body(request)
    with sb.state.lock:
        store, cal = _writable_calendar(sb, request, calendar_id)
        event = _create(sb, store, cal, body, conference_version=request.args.get("conferenceDataVersion"))
        return json_response(event)


def event_item(sb: Sandbox, request: Request, calendar_id: str, event_id: str) -> Response:
    """GET (always returns cancelled events too), PATCH, PUT and DELETE on one event."""
    if request.method == "GET":
        grant = require_token(sb, request, "google", READ_SCOPES)
        with sb.state.lock:
            cal = _calendar(sb, store_of(sb), grant.account, calendar_id)
            event = cal.events.get(event_id)
            if event is None:
                return google_error(404, "notFound", "Not Found")
            if request.headers.get("If-None-Match") == event["etag"]:
                return Response(status=304)
            return json_response(event)
    if_match = request.headers.get("If-Match")
    if request.method == "DELETE":
        with sb.state.lock:
            store, cal = _writable_calendar(sb, request, calendar_id)
            _delete(sb, store, cal, event_id, if_match)
        return Response(status=204)
    body = _body(request)
    with sb.state.lock:
        store, cal = _writable_calendar(sb, request, calendar_id)
        event = _modify(
            sb,
            store,
            cal,
            event_id,
            body,
            replace=request.method == "PUT",
            if_match=if_match,
            conference_version=request.args.get("conferenceDataVersion"),
        )
        return json_response(event)


def events_watch(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """events.watch: open a web_hook channel on one calendar's events."""
    grant = require_token(sb, request, "google", READ_SCOPES)
    body = _body(request)
    channel_id, address, kind = body.get("id"), body.get("address"), body.get("type")
    token = body.get("token")
    if not isinstance(channel_id, str) or not _CHANNEL_ID.fullmatch(channel_id):
        return google_error(400, "required" if not channel_id else "invalid", "Invalid channel id.")
    if kind not in ("web_hook", "webhook"):
        return google_error(400, "invalid", f"Invalid value for: type ({kind}); expected web_hook.")
    if not isinstance(address, str) or not address:
        return google_error(400, "required", "Required: address")
    # Real Google demands HTTPS with a valid certificate; offline, only loopback receivers are allowed.
    if not is_loopback_url(address):
        return google_error(
            400, "push.webhookUrlUnauthorized", f"Unauthorized WebHook callback channel: {address}", "push"
        )
    if token is not None and (not isinstance(token, str) or len(token) > 256):
        return google_error(400, "invalid", "Channel token is longer than 256 characters.")
    now_ms = int(sb.now() * 1000)
    ttl = DEFAULT_CHANNEL_TTL
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    if params and "ttl" in params:
        try:
            ttl = min(int(params["ttl"]), MAX_CHANNEL_TTL)
        except (TypeError, ValueError):
            return google_error(400, "invalid", "Invalid value for: params.ttl")
    expiration = now_ms + ttl * 1000
    if body.get("expiration") is not None:
        try:
            requested = int(body["expiration"])
        except (TypeError, ValueError):
            return google_error(400, "invalid", "Invalid value for: expiration")
        if requested <= now_ms:
            return google_error(400, "invalid", "Channel expiration is in the past.")
        expiration = min(requested, now_ms + MAX_CHANNEL_TTL * 1000)
    with sb.state.lock:
        store = store_of(sb)
        cal = _calendar(sb, store, grant.account, calendar_id)
        if not cal.watchable:
            return google_error(
                400,
                "pushNotSupportedForRequestedResource",
                "Push notifications are not supported by this resource.",
            )
        existing = store.channels.get(channel_id)
        if existing is not None and not existing.stopped and existing.expiration_ms > now_ms:
            return google_error(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        base = request.host_url.rstrip("/")
        channel = Channel(
            id=channel_id,
            resource_id=stable_alnum(27, "gcal-resource", cal.key),
            resource_uri=f"{base}/google/calendar/v3/calendars/{quote(cal.id, safe='')}/events?alt=json",
            token=token,
            address=address,
            expiration_ms=expiration,
            client_id=grant.client_id,
            account=grant.account,
            calendar_key=cal.key,
        )
        store.channels[channel_id] = channel
        _deliver(sb, channel, "sync")
    answer: dict[str, Any] = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(channel.expiration_ms),
    }
    if token is not None:
        answer["token"] = token
    return json_response(answer)


def channels_stop(sb: Sandbox, request: Request) -> Response:
    """channels.stop: only the same user through the same OAuth client may stop a channel."""
    grant = require_token(sb, request, "google", READ_SCOPES)
    body = _body(request)
    with sb.state.lock:
        channel = store_of(sb).channels.get(str(body.get("id")))
        if (
            channel is None
            or channel.stopped
            or channel.resource_id != body.get("resourceId")
            or channel.client_id != grant.client_id
            or channel.account != grant.account
        ):
            return google_error(
                404, "notFound", f"Channel '{body.get('id')}' not found for project 'sandbox'"
            )
        channel.stopped = True
    return Response(status=204)


# --- Control: change a calendar as its user would ------------------------------------------------


def _edt(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    text = str(value)
    return {"dateTime": text} if "T" in text else {"date": text}


def control_event(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/google/events {account, calendar_id, summary, start, end[, id, status, delete]}."""
    body = read_json(request) or {}
    account = str(body.get("account") or "alex@example.com")
    calendar_id = str(body.get("calendar_id") or "primary")
    with sb.state.lock:
        store = store_of(sb)
        cal = _calendar(sb, store, account, calendar_id)
        event_id = body.get("id")
        if isinstance(event_id, str) and event_id in cal.events:
            if body.get("delete") or body.get("status") == "cancelled":
                _delete(sb, store, cal, event_id, None)
                return json_response(_visible(cal.events[event_id]))
            changes = {k: v for k, v in body.items() if k in _WRITABLE}
            for key in ("start", "end"):
                if key in changes:
                    changes[key] = _edt(changes[key])
            return json_response(_modify(sb, store, cal, event_id, changes, replace=False, if_match=None))
        fields = {k: v for k, v in body.items() if k in (*_WRITABLE, "id")}
        fields["start"], fields["end"] = _edt(body.get("start")), _edt(body.get("end"))
        return json_response(_create(sb, store, cal, fields), status=201)


def control_expire_sync_tokens(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/google/sync_tokens/expire {account?}: the next sync with them answers 410."""
    body = read_json(request) or {}
    account = body.get("account")
    with sb.state.lock:
        count = 0
        for record in store_of(sb).sync_tokens.values():
            if record.valid and (account is None or record.calendar_key.startswith(f"{account}|")):
                record.valid = False
                count += 1
    return json_response({"expired": count})


def control_channels(sb: Sandbox, request: Request) -> Response:
    with sb.state.lock:
        return json_response({"channels": [c.public() for c in store_of(sb).channels.values()]})


def routes() -> list[Route]:
    base = "/google/calendar/v3"
    return [
        Route(f"{base}/users/me/calendarList", ("GET",), calendar_list, "api", "google"),
        Route(f"{base}/calendars/<calendar_id>/events", ("GET",), events_list, "api", "google"),
        Route(f"{base}/calendars/<calendar_id>/events", ("POST",), events_insert, "api", "google"),
        Route(f"{base}/calendars/<calendar_id>/events/watch", ("POST",), events_watch, "api", "google"),
        Route(
            f"{base}/calendars/<calendar_id>/events/<event_id>",
            ("GET", "PATCH", "PUT", "DELETE"),
            event_item,
            "api",
            "google",
        ),
        Route(f"{base}/channels/stop", ("POST",), channels_stop, "api", "google"),
        Route("/_sandbox/google/events", ("POST",), control_event, "control", None),
        Route("/_sandbox/google/sync_tokens/expire", ("POST",), control_expire_sync_tokens, "control", None),
        Route("/_sandbox/google/channels", ("GET",), control_channels, "control", None),
    ]
