"""Microsoft Graph calendarView delta (calendar-email.md §4.3).

A round starts with `startDateTime` and `endDateTime` (only on the first request: the window lives in
the tokens), answers pages with `@odata.nextLink` (`$skiptoken`) and ends with `@odata.deltaLink`
(`$deltatoken`). Calling the deltaLink starts the next round: the instances that are new or changed
since, and `@removed` for the ones gone from the window. `$select`, `$expand`, `$filter`, `$orderby`
and `$search` are refused. A token from before the expiry switch (or too old to be kept) answers
410 `syncStateNotFound`, after which a new round must start.
"""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local.sandbox import graph_time, graph_writes
from infra.local.sandbox.auth import require_token
from infra.local.sandbox.core import Reply, Sandbox, json_response
from infra.local.sandbox.errors import graph_error
from infra.local.sandbox.graph_events import CONTEXT, DEFAULT_PAGE, MAX_PAGE, READ_SCOPES, chosen_calendar
from infra.local.sandbox.graph_store import DeltaRound, DeltaState, GraphStore, instances, store_of

_UNSUPPORTED = ("$select", "$expand", "$filter", "$orderby", "$search")


def _gone() -> Reply:
    return Reply(
        graph_error(
            410,
            "syncStateNotFound",
            "The sync state generation is not found. Restart the sync with a new delta request.",
        )
    )


# Tokens are URL-safe base64, written unencoded after `$skiptoken=` / `$deltatoken=` as Graph does.
def _round(store: GraphStore, state: DeltaState, before: dict[str, str]) -> DeltaRound:
    """The changes of `state`'s window against what `before` handed out, as a round to page through."""
    view = instances(store, state.account, state.calendar, state.start, state.end)
    items: list[dict[str, Any]] = [e for e in view if before.get(e["id"]) != e["@odata.etag"]]
    live = {e["id"] for e in view}
    items += [
        {"@odata.type": "#microsoft.graph.event", "id": gone, "@removed": {"reason": "deleted"}}
        for gone in before
        if gone not in live
    ]
    state.seen = {e["id"]: e["@odata.etag"] for e in view}
    return DeltaRound(items=items, state=store.keep_state(state), epoch=state.epoch, account=state.account)


def calendar_view_delta(sb: Sandbox, request: Request, calendar: str | None = None) -> Response:
    """GET a page of calendarView changes; `$deltatoken` / `$skiptoken` continue, else a new round
    over [startDateTime, endDateTime). `Prefer: odata.maxpagesize` (default 10) and
    `outlook.timezone` apply. Stale tokens: 410 syncStateNotFound."""
    grant = require_token(sb, request, "microsoft", READ_SCOPES)
    zone_name, size = graph_time.prefer(request.headers)
    refused = [name for name in _UNSUPPORTED if name in request.args]
    if refused:
        raise Reply(
            graph_error(
                400,
                "ErrorInvalidUrlQuery",
                f"The query parameter '{refused[0]}' is not supported with delta.",
            )
        )
    page = min(MAX_PAGE, size or DEFAULT_PAGE)
    with sb.state.lock:
        store = store_of(sb)
        epoch = store.epoch(grant.account)
        skip, delta = request.args.get("$skiptoken"), request.args.get("$deltatoken")
        if skip:
            round_id, _, offset_text = skip.rpartition(".")
            found = store.rounds.get(round_id)
            if (
                found is None
                or found.epoch != epoch
                or found.account != grant.account
                or not offset_text.isdigit()
            ):
                raise _gone()
            offset = int(offset_text)
        elif delta:
            state = store.delta_states.get(delta)
            if state is None or state.epoch != epoch or state.account != grant.account:
                raise _gone()
            follow = DeltaState(state.account, state.calendar, state.start, state.end, epoch, {})
            found, offset, round_id = _round(store, follow, state.seen), 0, _new_round_id(store)
            store.rounds[round_id] = found
        else:
            start = graph_time.query_instant(request.args.get("startDateTime"), "startDateTime")
            end = graph_time.query_instant(request.args.get("endDateTime"), "endDateTime")
            chosen = chosen_calendar(grant.account, calendar)
            first = DeltaState(grant.account, chosen, start, end, epoch, {})
            found, offset, round_id = _round(store, first, {}), 0, _new_round_id(store)
            store.rounds[round_id] = found
        chunk = found.items[offset : offset + page]
        value = [e if "@removed" in e else graph_writes.present(e, zone_name) for e in chunk]
    answer: dict[str, Any] = {"@odata.context": f"{CONTEXT}#Collection(event)", "value": value}
    if offset + page < len(found.items):
        answer["@odata.nextLink"] = f"{request.base_url}?$skiptoken={round_id}.{offset + page}"
    else:
        answer["@odata.deltaLink"] = f"{request.base_url}?$deltatoken={found.state}"
    applied = f'outlook.timezone="{zone_name}"' + (f", odata.maxpagesize={size}" if size else "")
    return json_response(answer, headers={"Preference-Applied": applied})


def _new_round_id(store: GraphStore) -> str:
    # No dots: a skip token is `<round>.<offset>`.
    round_id = secrets.token_urlsafe(18)
    while len(store.rounds) >= 2000:
        del store.rounds[next(iter(store.rounds))]
    return round_id


def expire(store: GraphStore, account: str | None) -> list[str]:
    """Kill every delta and skip token of one mailbox (or all): the next call answers 410."""
    accounts = [account] if account else sorted(set(store.events) | set(store.delta_epochs))
    for name in accounts:
        store.delta_epochs[name] = store.epoch(name) + 1
    return accounts
