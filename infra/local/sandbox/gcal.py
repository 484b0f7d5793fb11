"""Google Calendar API v3 over HTTP: calendarList, events (list with sync/page tokens, instances, insert,
get, patch, update, delete), freeBusy, events.watch and channels.stop.

Semantics follow /work/shared/providers/calendar-email.md §2: deleted events come back to sync queries
as `cancelled`, `nextSyncToken` only on the last page, 410 `fullSyncRequired` for a dead sync token,
412 on a stale `If-Match`, Meet links only with `conferenceDataVersion=1`, headers-only notifications
with message number 1 for `sync`. Writes live in gcal_events.py, reads in gcal_list.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import gcal_events, gcal_list, gcal_person, gcal_time
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Route, Sandbox, json_response, read_json
from infra.local.sandbox.dialects import stable_alnum
from infra.local.sandbox.errors import google_error
from infra.local.sandbox.gcal_store import Calendar, CalendarStore, Channel, Cursor, SyncPoint, store_of
from infra.local.sandbox.push import is_loopback_url

WRITE_SCOPES = {"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/calendar.events"}
READ_SCOPES = WRITE_SCOPES | {
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events.readonly",
}
# freebusy.query accepts neither calendar.events nor calendar.events.readonly (its reference page).
FREEBUSY_SCOPES = {
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/calendar.events.freebusy",
}
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
_CHANNEL_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=")
DEFAULT_CHANNEL_TTL = 7 * 24 * 3600
# No published maximum; cal.com asks for 30 days and gets it. Longer requests are cut to this.
MAX_CHANNEL_TTL = 30 * 24 * 3600
_FREEBUSY_MAX_CALENDARS = 50


def _body(request: Request) -> dict[str, Any]:
    body = read_json(request)
    if body is None:
        raise Reply(google_error(400, "parseError", "Parse Error"))
    return body


def _max_results(request: Request) -> int:
    try:
        value = int(request.args.get("maxResults", "250"))
    except ValueError:
        raise Reply(google_error(400, "invalid", "Invalid value for: maxResults")) from None
    if not 1 <= value <= 2500:
        raise Reply(google_error(400, "invalid", "Invalid value for: maxResults"))
    return value


def _readable_calendar(sb: Sandbox, request: Request, calendar_id: str) -> tuple[CalendarStore, Calendar]:
    grant = require_token(sb, request, "google", READ_SCOPES)
    store = store_of(sb)
    return store, gcal_events.calendar(sb, store, grant.account, calendar_id)


def _writable_calendar(sb: Sandbox, request: Request, calendar_id: str) -> tuple[CalendarStore, Calendar]:
    grant = require_token(sb, request, "google", WRITE_SCOPES)
    store = store_of(sb)
    cal = gcal_events.calendar(sb, store, grant.account, calendar_id)
    if not cal.writable:
        raise Reply(
            google_error(
                403, "requiredAccessLevel", "You need to have writer access to this calendar.", "calendar"
            )
        )
    return store, cal


def _collection(
    sb: Sandbox, store: CalendarStore, cal: Calendar, items: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "kind": "calendar#events",
        "etag": f'"{store.seq}"',
        "summary": cal.summary,
        "description": "",
        "updated": gcal_time.rfc3339(cal.updated or sb.now()),
        "timeZone": cal.time_zone,
        "accessRole": cal.access_role,
        "defaultReminders": [{"method": "popup", "minutes": 10}] if cal.writable else [],
        "items": items,
    }


# --- calendarList ------------------------------------------------------------------------------------


def calendar_list(sb: Sandbox, request: Request) -> Response:
    """calendarList.list: the account's calendars (primary, a writer calendar, a read-only one)."""
    grant = require_token(sb, request, "google", READ_SCOPES)
    with sb.state.lock:
        store = store_of(sb)
        gcal_events.ensure_account(sb, store, grant.account)
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
            for c in store.account_calendars(grant.account)
        ]
        seq = store.seq
    return json_response(
        {
            "kind": "calendar#calendarList",
            "etag": f'"{seq}"',
            "items": items,
            "nextSyncToken": f"sbx-cl-{seq}",
        }
    )


# --- events.list -------------------------------------------------------------------------------------


def _gone() -> Reply:
    return Reply(
        google_error(
            410,
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
            "calendar",
            location="syncToken",
            locationType="parameter",
        )
    )


def _sync_point(sb: Sandbox, store: CalendarStore, cal: Calendar, token: str) -> SyncPoint:
    """The token's sync point, or 410: unknown, for another calendar, expired by age or by the switch."""
    point = store.tokens.read_sync_token(token)
    if (
        point is None
        or point.calendar_key != cal.key
        or point.epoch != cal.token_epoch
        or point.seq > store.seq
        or sb.now() - point.issued_at > sb.config.sync_token_ttl
    ):
        raise _gone()
    return point


def events_list(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """events.list: full sync pages, then incremental pages from a syncToken; 410 when it is dead."""
    args = request.args
    max_results = _max_results(request)
    sync_token = args.get("syncToken")
    if sync_token is not None:
        clash = [name for name in _NOT_WITH_SYNC_TOKEN if name in args]
        if clash or args.get("showDeleted", "").lower() == "false":
            return google_error(
                400,
                "invalid",
                "Sync token cannot be used with other query parameters: "
                + ", ".join(clash or ["showDeleted=false"]),
            )
    query_id = gcal_list.fingerprint(args)
    with sb.state.lock:
        store, cal = _readable_calendar(sb, request, calendar_id)
        since = None if sync_token is None else _sync_point(sb, store, cal, sync_token).seq
        updated_min = gcal_time.query_instant(args.get("updatedMin"), "updatedMin")
        if updated_min is not None and sb.now() - updated_min.timestamp() > sb.config.sync_token_ttl:
            return google_error(
                410,
                "updatedMinTooLongAgo",
                "The requested minimum modification time lies too far in the past.",
                "calendar",
            )
        query = gcal_list.parse_query(args, since, sb.now())
        page_token = args.get("pageToken")
        if page_token is not None:
            cursor = store.tokens.read_page_token(page_token)
            if cursor is None or cursor.calendar_key != cal.key or cursor.query != query_id:
                return google_error(
                    400,
                    "invalid",
                    "Invalid page token value.",
                    location="pageToken",
                    locationType="parameter",
                )
        else:
            cursor = Cursor(cal.key, 0 if since is None else since + 1, 0, store.seq, query_id)
        items, following = gcal_list.page(cal, query, cursor, max_results)
        body = _collection(sb, store, cal, items)
        if following is not None:
            body["nextPageToken"] = store.tokens.page_token(following)
        else:
            body["nextSyncToken"] = store.tokens.sync_token(
                SyncPoint(cal.key, cursor.upto, sb.now(), cal.token_epoch)
            )
    # Stored events are never mutated in place, so the page can be serialised after the lock is released.
    return json_response(body)


def events_instances(sb: Sandbox, request: Request, calendar_id: str, event_id: str) -> Response:
    """events.instances: one series' instances, paged; edited instances appear as their exceptions."""
    max_results = _max_results(request)
    query_id = gcal_list.fingerprint(request.args)
    with sb.state.lock:
        store, cal = _readable_calendar(sb, request, calendar_id)
        master = cal.events.get(event_id)
        if master is None or (master["status"] == "cancelled" and request.args.get("showDeleted") != "true"):
            return google_error(404, "notFound", "Not Found")
        query = gcal_list.parse_query(request.args, None, sb.now())
        items = (
            gcal_list.instances_of(cal, master, query, request.args.get("originalStart"))
            if master.get("recurrence")
            else [gcal_list.visible(master)]
        )
        offset = 0
        page_token = request.args.get("pageToken")
        if page_token is not None:
            cursor = store.tokens.read_page_token(page_token)
            if cursor is None or cursor.calendar_key != cal.key or cursor.query != query_id:
                return google_error(
                    400,
                    "invalid",
                    "Invalid page token value.",
                    location="pageToken",
                    locationType="parameter",
                )
            offset = cursor.offset
        body = _collection(sb, store, cal, items[offset : offset + max_results])
        if offset + max_results < len(items):
            body["nextPageToken"] = store.tokens.page_token(
                Cursor(cal.key, 0, 0, store.seq, query_id, offset + max_results)
            )
    return json_response(body)


# --- events writes -----------------------------------------------------------------------------------


def events_insert(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """events.insert."""
    body = _body(request)
    with sb.state.lock:
        store, cal = _writable_calendar(sb, request, calendar_id)
        event = gcal_events.create(
            sb, store, cal, body, conference_version=request.args.get("conferenceDataVersion")
        )
    return json_response(event)


def event_item(sb: Sandbox, request: Request, calendar_id: str, event_id: str) -> Response:
    """GET (cancelled events too; 304 on a matching If-None-Match), PATCH, PUT and DELETE (If-Match → 412)."""
    if request.method == "GET":
        with sb.state.lock:
            _, cal = _readable_calendar(sb, request, calendar_id)
            event = gcal_events.find(sb, cal, event_id)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        if request.headers.get("If-None-Match") == event["etag"]:
            return Response(status=304)
        return json_response(event)
    if_match = request.headers.get("If-Match")
    if request.method == "DELETE":
        with sb.state.lock:
            store, cal = _writable_calendar(sb, request, calendar_id)
            gcal_events.delete(sb, store, cal, event_id, if_match)
        return Response(status=204)
    body = _body(request)
    with sb.state.lock:
        store, cal = _writable_calendar(sb, request, calendar_id)
        event = gcal_events.modify(
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


# --- freeBusy ----------------------------------------------------------------------------------------


def freebusy(sb: Sandbox, request: Request) -> Response:
    """freebusy.query: merged busy periods per calendar (opaque, not cancelled, series expanded)."""
    grant = require_token(sb, request, "google", FREEBUSY_SCOPES)
    body = _body(request)
    time_min = gcal_time.query_instant(str(body["timeMin"]) if "timeMin" in body else None, "timeMin")
    time_max = gcal_time.query_instant(str(body["timeMax"]) if "timeMax" in body else None, "timeMax")
    if time_min is None or time_max is None:
        return google_error(400, "required", "Missing " + ("timeMin" if time_min is None else "timeMax"))
    if time_max <= time_min:
        return google_error(400, "timeRangeEmpty", "The specified time range is empty.", "calendar")
    items = body.get("items")
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("id"), str) for i in items
    ):
        return google_error(400, "invalid", "Invalid value for: items")
    expansion_max = body.get("calendarExpansionMax", _FREEBUSY_MAX_CALENDARS)
    if not isinstance(expansion_max, int) or not 1 <= expansion_max <= _FREEBUSY_MAX_CALENDARS:
        return google_error(400, "invalid", "Invalid value for: calendarExpansionMax")
    now = datetime.fromtimestamp(sb.now(), UTC)
    calendars: dict[str, Any] = {}
    with sb.state.lock:
        store = store_of(sb)
        gcal_events.ensure_account(sb, store, grant.account)
        for index, item in enumerate(items):
            cid = item["id"]
            if index >= expansion_max:
                calendars[cid] = {
                    "errors": [{"domain": "usageLimits", "reason": "tooManyCalendarsRequested"}],
                    "busy": [],
                }
                continue
            cal = store.calendars.get(f"{grant.account}|{grant.account if cid == 'primary' else cid}")
            if cal is None:
                calendars[cid] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            periods = gcal_list.busy(cal, time_min, time_max, now)
            calendars[cid] = {
                "busy": [{"start": gcal_time.utc_text(s), "end": gcal_time.utc_text(e)} for s, e in periods]
            }
    return json_response(
        {
            "kind": "calendar#freeBusy",
            "timeMin": gcal_time.utc_text(time_min),
            "timeMax": gcal_time.utc_text(time_max),
            "calendars": calendars,
        }
    )


# --- Push channels -----------------------------------------------------------------------------------


def _channel_expiration(body: dict[str, Any], now_ms: int) -> int:
    """The effective expiry: the most restrictive of `expiration`, now + `params.ttl` and the 30-day cap;
    7 days when neither is asked for."""
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    limits = [now_ms + MAX_CHANNEL_TTL * 1000]
    if params and "ttl" in params:
        try:
            ttl = int(params["ttl"])
        except (TypeError, ValueError):
            raise Reply(google_error(400, "invalid", "Invalid value for: params.ttl")) from None
        if ttl <= 0:
            raise Reply(google_error(400, "invalid", "Invalid value for: params.ttl"))
        limits.append(now_ms + ttl * 1000)
    if body.get("expiration") is not None:
        try:
            requested = int(body["expiration"])
        except (TypeError, ValueError):
            raise Reply(google_error(400, "invalid", "Invalid value for: expiration")) from None
        if requested <= now_ms:
            raise Reply(google_error(400, "invalid", "Channel expiration is in the past."))
        limits.append(requested)
    if len(limits) == 1:
        return now_ms + DEFAULT_CHANNEL_TTL * 1000
    return min(limits)


def events_watch(sb: Sandbox, request: Request, calendar_id: str) -> Response:
    """events.watch: open a web_hook channel on one calendar's events."""
    grant = require_token(sb, request, "google", READ_SCOPES)
    body = _body(request)
    channel_id, address, kind = body.get("id"), body.get("address"), body.get("type")
    token = body.get("token")
    if (
        not isinstance(channel_id, str)
        or not 1 <= len(channel_id) <= 64
        or not set(channel_id) <= _CHANNEL_ID_CHARS
    ):
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
    expiration = _channel_expiration(body, now_ms)
    with sb.state.lock:
        store, cal = _readable_calendar(sb, request, calendar_id)
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
        gcal_events.deliver(sb, channel, "sync")
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


def routes() -> list[Route]:
    base = "/google/calendar/v3"
    return [
        Route(f"{base}/users/me/calendarList", ("GET",), calendar_list, "api", "google"),
        Route(f"{base}/calendars/<calendar_id>/events", ("GET",), events_list, "api", "google"),
        Route(f"{base}/calendars/<calendar_id>/events", ("POST",), events_insert, "api", "google"),
        Route(f"{base}/calendars/<calendar_id>/events/watch", ("POST",), events_watch, "api", "google"),
        Route(
            f"{base}/calendars/<calendar_id>/events/<event_id>/instances",
            ("GET",),
            events_instances,
            "api",
            "google",
        ),
        Route(
            f"{base}/calendars/<calendar_id>/events/<event_id>",
            ("GET", "PATCH", "PUT", "DELETE"),
            event_item,
            "api",
            "google",
        ),
        Route(f"{base}/freeBusy", ("POST",), freebusy, "api", "google"),
        Route(f"{base}/channels/stop", ("POST",), channels_stop, "api", "google"),
        *gcal_person.routes(),
    ]
