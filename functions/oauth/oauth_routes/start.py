"""`POST /oauth/{provider}/start`: checks, a single-use session, and the URL the browser goes to."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from integrations.oauth.service import StartRequest
from oauth_routes.context import caller, oauth

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


class StartAnswer(BaseModel):
    redirect_url: str


@router.post("/oauth/<provider>/start", summary="Start connecting a provider", tags=["oauth"])
def start(provider: str, request: StartRequest) -> StartAnswer:
    return StartAnswer(redirect_url=oauth().start(caller(router), provider, request))
