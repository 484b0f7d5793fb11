"""`POST /integrations/{provider}/connect`: connect without OAuth, as the provider's auth kind says.

Password providers (iCloud) take an account name and app-specific password, verified at the
provider before anything is stored; inbound-address providers (the BCC logging address) reserve the
owner's address. OAuth providers answer 400 `use_oauth_start`: they connect through /oauth/{provider}/start.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.connections.connect import ConnectRequest
from oauth_routes.context import caller, oauth
from oauth_routes.start import BODY_FIRST

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/integrations/<provider>/connect",
    summary="Connect a provider that does not use OAuth (app-specific password, inbound address)",
    description=(
        "Answers 201 with a new connection, or 200 when the same account (or the owner's address) "
        "was connected already: that connection is re-authorized in place. OAuth providers answer "
        "400 `use_oauth_start`. " + BODY_FIRST
    ),
    responses={
        200: {"description": "Connected already: the same connection, re-authorized in place"},
        201: {"description": "Connected: a new connection"},
    },
    openapi_extensions=request_body_doc(ConnectRequest),
    tags=["oauth"],
)
def connect(
    provider: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")],
) -> Response[dict[str, Any]]:
    request = read_json(router.current_event.raw_event, ConnectRequest)
    result = oauth().connector.connect(caller(router), provider, request)
    return Response(
        status_code=201 if result.created else 200,
        content_type="application/json",
        body=result.to_body(),
        headers={"Cache-Control": "no-store"},
    )
