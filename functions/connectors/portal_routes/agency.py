"""Agency admins: health of every connection, and the agency's settings."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.body import read_json, request_body_doc
from integrations.domain.agency import AgencySettingsUpdate
from integrations.domain.connection import PortalStatus
from integrations.portal.views import HealthPageView, SettingsView
from portal_routes.context import caller, portal

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get(
    "/agency/health",
    summary="Every connection of the agency",
    tags=["agency"],
)
def get_health(
    status: Annotated[PortalStatus | None, Query(description="Only connections with this status.")] = None,
    provider: Annotated[str | None, Query(max_length=64, description="Only this provider.")] = None,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="next_cursor of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HealthPageView:
    return portal().health(caller(router), status, provider, cursor, limit)


@router.get("/agency/settings", summary="The agency's settings", tags=["agency"])
def get_settings() -> SettingsView:
    return portal().settings(caller(router))


@router.put(
    "/agency/settings",
    summary="Change the agency's settings",
    description=(
        "The body is read after the caller is checked: 401/403 come before 400 `body_not_utf8`, "
        "415 `unsupported_media_type` and 422 `malformed_body` / `invalid_request`."
    ),
    openapi_extensions=request_body_doc(AgencySettingsUpdate),
    tags=["agency"],
)
def put_settings() -> SettingsView:
    event = router.current_event.raw_event
    return portal().update_settings(caller(router), lambda: read_json(event, AgencySettingsUpdate))
