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
    return StartAnswer(redirect_url=oauth().start(caller(router), provider, request, _display_name()))


def _display_name() -> str:
    """Who the confirmation page names as the starter: the verified email or name claim, if any."""
    event = router.current_event
    claims = ((event.request_context.authorizer.jwt_claim) or {}) if event.request_context.authorizer else {}
    for key in ("email", "name", "preferred_username"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
