"""GET /integrations: the catalog as cards for one level, with the caller's connections."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.domain.access import Level
from integrations.portal.views import CardList
from portal_routes.context import caller, portal

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get("/integrations", summary="Integration cards for one level", tags=["portal"])
def list_integrations(
    level: Annotated[
        Level, Query(description="Which connections: the agency's, a client's, or the caller's own.")
    ],
    client_id: Annotated[
        str | None, Query(max_length=128, description="Agency admins: the client of their agency to show.")
    ] = None,
) -> CardList:
    return portal().cards(caller(router), level, client_id)
