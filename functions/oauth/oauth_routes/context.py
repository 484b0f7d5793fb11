"""What the OAuth routes share: the service (built once per process) and the caller."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.identity import current_principal
from integrations.domain.principal import Principal
from integrations.oauth.service import OAuthService, build_oauth_service


@cache
def oauth() -> OAuthService:
    """Built on first use: importing stays cheap and tests set the environment first."""
    return build_oauth_service()


def caller(router: APIGatewayHttpRouter) -> Principal:
    return current_principal(router)  # type: ignore[arg-type]
