"""Microsoft Graph event routes: events (list, create, get, update, delete), calendarView, and the
calendar resource. `Prefer: outlook.timezone` picks the zone of answered times; `If-Match` makes
updates and deletes conditional (412); `transactionId` deduplicates a retried create;
`$expand=singleValueExtendedProperties($filter=id eq '…')` returns the tagged property."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import graph_time, graph_writes
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Sandbox, json_response, read_json
from infra.local.sandbox.errors import graph_error
from infra.local.sandbox.graph_store import (
    calendar_resource,
    default_calendar_id,
    find,
    instances,
    not_found,
    store_of,
    writable_calendars,
)

READ_SCOPES = {"Calendars.Read", "Calendars.ReadWrite"}
WRITE_SCOPES = {"Calendars.ReadWrite"}
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"
DEFAULT_PAGE = 10
MAX_PAGE = 1000


def chosen_calendar(account: str, calendar: str | None) -> str:
    """`None` is the default calendar (`/me/calendar`, `/me/events`); unknown ids are 404."""
    if calendar is None:
        return default_calendar_id(account)
    if calendar not in writable_calendars(account):
        raise not_found()
    return calendar


def _body(request: Request) -> dict[str, Any]:
    body = read_json(request)
    if body is None:
        raise Reply(graph_error(400, "BadRequest", "Empty Payload. JSON content expected."))
    return body


def _headers(zone_name: str, size: int | None) -> dict[str, str]:
    applied = [f'outlook.timezone="{zone_name}"'] + ([f"odata.maxpagesize={size}"] if size else [])
    return {"Preference-Applied": ", ".join(applied)}


def events_collection(sb: Sandbox, request: Request, calendar: str | None = None) -> Response:
    """GET lists single events and series masters; POST creates one (201)."""
    zone_name, _size = graph_time.prefer(request.headers)
    expand = request.args.get("$expand")
    if request.method == "GET":
        grant = require_token(sb, request, "microsoft", READ_SCOPES)
        with sb.state.lock:
            chosen = chosen_calendar(grant.account, calendar)
            items = [
                graph_writes.present(e, zone_name, expand)
                for e in store_of(sb).mailbox(grant.account).values()
                if e["calendarId"] == chosen and e["type"] in ("singleInstance", "seriesMaster")
            ]
        return json_response({"@odata.context": f"{CONTEXT}#users('me')/events", "value": items})
    grant = require_token(sb, request, "microsoft", WRITE_SCOPES)
    body = _body(request)
    with sb.state.lock:
        chosen = chosen_calendar(grant.account, calendar)
        if not writable_calendars(grant.account)[chosen]:
            raise Reply(
                graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            )
        event = graph_writes.create(sb, grant.account, chosen, body)
        answer = {
            "@odata.context": f"{CONTEXT}#users('me')/events/$entity",
            **graph_writes.present(event, zone_name, expand),
        }
    return json_response(answer, 201, _headers(zone_name, None))


def event_item(sb: Sandbox, request: Request, event_id: str) -> Response:
    """GET, PATCH and DELETE one event (an occurrence id too); `If-Match` is checked (412)."""
    zone_name, _size = graph_time.prefer(request.headers)
    expand = request.args.get("$expand")
    if_match = request.headers.get("If-Match")
    if request.method == "GET":
        grant = require_token(sb, request, "microsoft", READ_SCOPES)
        with sb.state.lock:
            event = find(store_of(sb), grant.account, event_id)
            return json_response(graph_writes.present(event, zone_name, expand))
    grant = require_token(sb, request, "microsoft", WRITE_SCOPES)
    if request.method == "DELETE":
        with sb.state.lock:
            graph_writes.delete(sb, grant.account, event_id, if_match)
        return Response(status=204)
    body = _body(request)
    with sb.state.lock:
        event = graph_writes.update(sb, grant.account, event_id, body, if_match)
        return json_response(
            graph_writes.present(event, zone_name, expand), headers=_headers(zone_name, None)
        )


def calendar_view(sb: Sandbox, request: Request, calendar: str | None = None) -> Response:
    """GET the expanded view of [startDateTime, endDateTime): singles, occurrences, exceptions;
    paged with `@odata.nextLink` (`Prefer: odata.maxpagesize`, default 10)."""
    grant = require_token(sb, request, "microsoft", READ_SCOPES)
    zone_name, size = graph_time.prefer(request.headers)
    start = graph_time.query_instant(request.args.get("startDateTime"), "startDateTime")
    end = graph_time.query_instant(request.args.get("endDateTime"), "endDateTime")
    try:
        skip = max(0, int(request.args.get("$skip", "0")))
    except ValueError:
        raise Reply(graph_error(400, "BadRequest", "Invalid $skip.")) from None
    page = min(MAX_PAGE, size or DEFAULT_PAGE)
    with sb.state.lock:
        chosen = chosen_calendar(grant.account, calendar)
        view = instances(store_of(sb), grant.account, chosen, start, end)
        items = [
            graph_writes.present(e, zone_name, request.args.get("$expand")) for e in view[skip : skip + page]
        ]
    answer: dict[str, Any] = {"@odata.context": f"{CONTEXT}#Collection(event)", "value": items}
    if skip + page < len(view):
        query = {k: v for k, v in request.args.items() if k != "$skip"}
        query["$skip"] = str(skip + page)
        answer["@odata.nextLink"] = f"{request.base_url}?{urlencode(query)}"
    return json_response(answer, headers=_headers(zone_name, size))


def calendar_item(sb: Sandbox, request: Request, calendar: str | None = None) -> Response:
    """GET one calendar (`/me/calendar` is the default one): name, canEdit, online meeting providers."""
    grant = require_token(sb, request, "microsoft", READ_SCOPES)
    chosen = chosen_calendar(grant.account, calendar)
    return json_response(
        {
            "@odata.context": f"{CONTEXT}#users('me')/calendars/$entity",
            **calendar_resource(grant.account, chosen),
        }
    )
