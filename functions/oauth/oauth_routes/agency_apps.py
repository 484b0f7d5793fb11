"""Agency admins' own (white-label) OAuth clients per provider. The client secret is write-only."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.oauth.apps import AgencyAppInput
from oauth_routes.context import caller, oauth

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
_PATH = "/agency/oauth-apps/<provider>"


@router.put(
    _PATH,
    summary="Register the agency's own OAuth client for a provider",
    description=(
        "The body is read after the caller and the provider are checked: 401/403/404 and 400 `not_oauth` "
        "come before 400 `body_not_utf8`, 415 `unsupported_media_type` and 422 `malformed_body` / "
        "`invalid_request`."
    ),
    openapi_extensions=request_body_doc(AgencyAppInput),
    tags=["agency"],
)
def put_app(provider: str) -> dict[str, Any]:
    event = router.current_event.raw_event
    info = oauth().put_agency_app(caller(router), provider, lambda: read_json(event, AgencyAppInput))
    return info.to_body(provider)


@router.get(_PATH, summary="The agency's OAuth client for a provider (never its secret)", tags=["agency"])
def get_app(provider: str) -> dict[str, Any]:
    info = oauth().get_agency_app(caller(router), provider)
    return info.to_body(provider)


@router.delete(
    _PATH,
    summary="Remove the agency's OAuth client; the platform's app is used again",
    responses={204: {"description": "Removed"}},
    tags=["agency"],
)
def delete_app(provider: str) -> Response[str]:
    oauth().delete_agency_app(caller(router), provider)
    return Response(status_code=204, body="")
