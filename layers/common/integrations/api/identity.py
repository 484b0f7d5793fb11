"""The caller of an HTTP API route, from the claims API Gateway's JWT authorizer verified."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

from integrations.domain.principal import Principal


def current_principal(app: ApiGatewayResolver) -> Principal:
    """Never reads identity from headers or bodies: only from the authorizer's verified claims."""
    event: Any = app.current_event
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    return Principal.from_claims(claims)
