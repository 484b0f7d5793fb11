"""What the OAuth routes share: the container app.py built at cold start, and the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.identity import current_principal
from integrations.domain.principal import Principal

if TYPE_CHECKING:
    from integrations.container import Container
    from integrations.oauth.service import OAuthService

_container: Container | None = None


def use(container: Container) -> None:
    """Called once by app.py's module scope: the routes run on this container's adapters."""
    global _container
    _container = container


def oauth() -> OAuthService:
    """The process's OAuthService (built on first use, so importing stays cheap)."""
    if _container is None:
        raise RuntimeError("app.py has not given the routes a container")
    return _container.oauth_service


def caller(router: APIGatewayHttpRouter) -> Principal:
    return current_principal(router)  # type: ignore[arg-type]
