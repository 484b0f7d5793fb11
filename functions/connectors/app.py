"""Portal API: catalog cards, connections, config, options, agency health and settings."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from portal_routes import agency, agency_accounts, connections, context, integrations, me, openapi, sync

from integrations import snapstart
from integrations.api.errors import register_error_handlers
from integrations.config import Settings
from integrations.container import Container
from integrations.observability import get_logger

logger = get_logger("connectors")
# Built once per container; a missing variable fails here, at cold start, naming it.
container = Container(Settings.from_env())
context.use(container)


def _warm() -> None:
    """Before a SnapStart snapshot: import and load what a request needs (no AWS client yet)."""
    import integrations.portal.service  # noqa: F401

    _ = container.catalog


def _restore() -> None:
    container.forget_connections()
    context.use(container)


snapstart.register(warm=_warm, restore=_restore)
app = APIGatewayHttpResolver(enable_validation=True)
for router in (
    me.router,
    integrations.router,
    connections.router,
    sync.router,
    agency_accounts.router,
    agency.router,
    openapi.router,
):
    app.include_router(router)
register_error_handlers(app, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
