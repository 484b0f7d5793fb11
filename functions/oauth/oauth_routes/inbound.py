"""`POST /integrations/bcc_email/connect`: reserve the owner's BCC logging address."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.oauth.service import AddressConnectRequest
from oauth_routes.context import caller, oauth

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/integrations/bcc_email/connect",
    summary="Reserve a BCC logging address (answers the existing one when already reserved)",
    tags=["oauth"],
)
def connect_bcc(request: AddressConnectRequest) -> Response[dict[str, Any]]:
    result = oauth().connect_inbound_address(caller(router), "bcc_email", request)
    return Response(
        status_code=201 if result.created else 200,
        content_type="application/json",
        body=result.to_body(),
        headers={"Cache-Control": "no-store"},
    )
