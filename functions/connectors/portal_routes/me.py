"""GET /me: what the portal should show this caller."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.portal.views import MeView
from portal_routes.context import caller, portal

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get("/me", summary="What the portal shows this caller", tags=["portal"])
def get_me() -> MeView:
    return portal().me(caller(router))
