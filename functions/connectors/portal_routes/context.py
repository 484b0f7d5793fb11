"""What every portal route shares: the service (built once per process) and the caller."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from integrations.api.identity import current_principal
from integrations.container import build_services
from integrations.domain.principal import Principal
from integrations.observability import get_logger
from integrations.portal.service import PortalService
from integrations.portal.views import ErrorBody

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
ERROR_RESPONSES: dict[int, OpenAPIResponse] = {
    status: {"description": text, "content": _ERROR}  # type: ignore[typeddict-item]
    for status, text in (
        (400, "Bad request"),
        (401, "Not signed in"),
        (403, "Not allowed"),
        (404, "Not found (including another tenant's resources)"),
        (409, "Conflict"),
        (422, "Invalid input; details name each field"),
        (503, "Temporarily unavailable; retry"),
    )
}
ERROR_MODEL = ErrorBody


def responses(
    model: type[BaseModel] | None, status: int = 200, description: str = "OK"
) -> dict[int, OpenAPIResponse]:
    """The success answer (documented with its model) plus every error answer, for a route's OpenAPI entry."""
    success: OpenAPIResponse = {"description": description}
    if model is not None:
        success["content"] = {"application/json": {"model": model}}
    return {status: success, **ERROR_RESPONSES}


@cache
def portal() -> PortalService:
    """Built on first use so importing the module stays cheap and tests can set the environment first."""
    return PortalService(build_services(), get_logger("connectors"))


def caller(router: APIGatewayHttpRouter) -> Principal:
    return current_principal(router)  # type: ignore[arg-type]
