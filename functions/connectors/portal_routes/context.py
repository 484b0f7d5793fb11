"""What every portal route shares: the service (built once per process) and the caller."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.identity import current_principal
from integrations.container import build_services
from integrations.domain.principal import Principal
from integrations.observability import get_logger
from integrations.portal.service import PortalService


@cache
def portal() -> PortalService:
    """Built on first use so importing the module stays cheap and tests can set the environment first."""
    return PortalService(build_services(), get_logger("connectors"))


def caller(router: APIGatewayHttpRouter) -> Principal:
    return current_principal(router)  # type: ignore[arg-type]
