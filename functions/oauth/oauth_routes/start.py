"""`POST /oauth/{provider}/start`: checks, a single-use session, and the URL the browser goes to."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from integrations.api.body import read_json, request_body_doc
from integrations.oauth.service import StartRequest
from oauth_routes.context import caller, oauth

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


class StartAnswer(BaseModel):
    redirect_url: str


# What `start` and `connect` authorize is named in their body (the level, and the client for agency
# admins), so the body is read first: its 400 / 415 / 422 tell any signed-in caller only about their own
# request, never about the tenant. Routes whose check does not depend on the body read it after.
BODY_FIRST = (
    "The body is read before the caller is checked, because it names what is checked (the level, and "
    "the client for agency admins): 400 `body_not_utf8`, 415 `unsupported_media_type` and 422 "
    "`malformed_body` / `invalid_request` come first and say nothing about the tenant; then 403 "
    "(why, in `code`), 404 and 409 for what the body asks."
)


@router.post(
    "/oauth/<provider>/start",
    summary="Start connecting a provider",
    description=BODY_FIRST,
    openapi_extensions=request_body_doc(StartRequest),
    tags=["oauth"],
)
def start(provider: str) -> StartAnswer:
    # Read here rather than by the resolver's validation, so every route answers unreadable bodies alike.
    request = read_json(router.current_event.raw_event, StartRequest)
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
