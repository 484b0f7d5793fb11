"""What every portal route shares: the container app.py built at cold start, and the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.identity import current_principal
from integrations.domain.principal import Principal
from integrations.observability import get_logger

if TYPE_CHECKING:
    from integrations.container import Container
    from integrations.portal.service import PortalService

_container: Container | None = None
_portal: PortalService | None = None


def use(container: Container) -> None:
    """Called once by app.py's module scope: the routes run on this container's adapters."""
    global _container, _portal
    _container, _portal = container, None


def portal() -> PortalService:
    """The process's PortalService (built on first use, so importing stays cheap)."""
    global _portal
    if _portal is None:
        if _container is None:
            raise RuntimeError("app.py has not given the routes a container")
        _portal = _container.portal_service(get_logger("connectors"))
    return _portal


def caller(router: APIGatewayHttpRouter) -> Principal:
    return current_principal(router)  # type: ignore[arg-type]
