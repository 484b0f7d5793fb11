"""One connection: read, configure, list config options, disconnect."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.portal.views import ConfigUpdate, ConnectionView, OptionList
from portal_routes.context import caller, portal

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
ConnectionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get(
    "/connections/<connection_id>",
    summary="A connection",
    tags=["connections"],
)
def get_connection(connection_id: ConnectionId) -> ConnectionView:
    return portal().connection(caller(router), connection_id)


@router.patch(
    "/connections/<connection_id>",
    summary="Change a connection's config",
    description=(
        "The body is read after the caller is checked: 401/403/404 come before 400 `body_not_utf8`, "
        "415 `unsupported_media_type` and 422 `malformed_body` / `invalid_request`."
    ),
    openapi_extensions=request_body_doc(ConfigUpdate),
    tags=["connections"],
)
def patch_connection(connection_id: ConnectionId) -> ConnectionView:
    event = router.current_event.raw_event
    return portal().update_config(
        caller(router), connection_id, lambda: read_json(event, ConfigUpdate).config
    )


@router.get(
    "/connections/<connection_id>/options/<field>",
    summary="Choices for a config field, read from the provider",
    tags=["connections"],
)
def get_options(
    connection_id: ConnectionId,
    field: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")],
    depends_on: Annotated[
        str | None, Query(max_length=2048, description="Value of the field this one depends on.")
    ] = None,
) -> OptionList:
    return portal().options(caller(router), connection_id, field, depends_on)


@router.delete(
    "/connections/<connection_id>",
    summary="Disconnect: revoke, unsubscribe, delete credentials and the connection",
    responses={204: {"description": "Disconnected"}},
    tags=["connections"],
)
def delete_connection(connection_id: ConnectionId) -> Response[str]:
    portal().disconnect(caller(router), connection_id)
    return Response(status_code=204, body="")
