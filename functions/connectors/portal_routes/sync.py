"""One connection's sync: "Sync now", pause / resume and the interval, "Push existing data"."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.portal.views import ConnectionView, PushProgressView, SyncChange
from portal_routes.connections import ConnectionId
from portal_routes.context import caller, portal

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

_CONFLICTS = (
    "409 `connection_paused` (resume first) or `connection_needs_attention` (reconnect or fix the config "
    "first)."
)


@router.post(
    "/connections/<connection_id>/sync",
    summary="Sync now",
    description="Queues a sync at once (manage permission); the card shows `syncing` while it runs. "
    + _CONFLICTS,
    responses={202: {"description": "Queued"}},
    tags=["sync"],
)
def post_sync(connection_id: ConnectionId) -> Response[ConnectionView]:
    view = portal().sync_now(caller(router), connection_id)
    return Response(status_code=202, body=view, content_type="application/json")


@router.patch(
    "/connections/<connection_id>/sync",
    summary="Pause or resume sync, and set how often it polls",
    description=(
        "Manage permission. `paused: true` stops reading and pushing until `paused: false` (which syncs "
        "at once); `interval_minutes` from 5 to 1440, null for the default (15). 422 "
        "`interval_out_of_range`; the body is read after the caller is checked."
    ),
    openapi_extensions=request_body_doc(SyncChange),
    tags=["sync"],
)
def patch_sync(connection_id: ConnectionId) -> ConnectionView:
    event = router.current_event.raw_event

    def read() -> tuple[SyncChange, bool]:
        change = read_json(event, SyncChange)
        return change, "interval_minutes" in change.model_fields_set

    return portal().change_sync(caller(router), connection_id, read)


@router.post(
    "/connections/<connection_id>/push-existing",
    summary="Push existing data: replay upcoming appointments into the chosen calendar",
    description=(
        "Manage permission. Pushes every appointment of the connection's owner that has not ended yet "
        "into the calendar the config chooses; the answer and the card's `sync.push_existing` show "
        "progress, then the confirmation. Pressing it again while it runs answers the same run; running "
        "it again later creates no duplicates. 409 `push_not_supported` for connections that take no "
        "appointments; " + _CONFLICTS
    ),
    responses={202: {"description": "Started (or already running)"}},
    tags=["sync"],
)
def post_push_existing(connection_id: ConnectionId) -> Response[PushProgressView]:
    progress = portal().push_existing(caller(router), connection_id)
    return Response(status_code=202, body=progress, content_type="application/json")


@router.post(
    "/connections/<connection_id>/test-message",
    summary="Send a test message",
    description=(
        "Manage permission. Posts a short test message where the connection's notifications go (the "
        "configured Slack channel), at once, and answers the connection. 409 `config_required` naming "
        "the channel when the app cannot post there (not a member, archived, deleted), "
        "`reauth_required` when the workspace revoked the app, `test_message_not_supported` for "
        "integrations that send no messages."
    ),
    responses={200: {"description": "Sent"}},
    tags=["sync"],
)
def post_test_message(connection_id: ConnectionId) -> ConnectionView:
    return portal().send_test_message(caller(router), connection_id)
