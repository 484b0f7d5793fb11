"""`POST /integrations/icloud_calendar/connect`: iCloud, connected with an app-specific password."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.oauth.service import PasswordConnectRequest
from oauth_routes.context import caller, oauth

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/integrations/icloud_calendar/connect",
    summary="Connect with an account name and app-specific password",
    tags=["oauth"],
)
def connect(request: PasswordConnectRequest) -> Response[dict[str, Any]]:
    result = oauth().connect_with_password(caller(router), "icloud_calendar", request)
    return Response(
        status_code=201 if result.created else 200,
        content_type="application/json",
        body=result.to_body(),
        headers={"Cache-Control": "no-store"},
    )
