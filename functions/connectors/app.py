"""Portal API: catalog cards, connections, config, options, agency health and settings."""

from __future__ import annotations

# First: the rest of init runs with the garbage collector paused (integrations.coldstart).
from integrations import coldstart

# isort: split
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from integrations import snapstart
from integrations.config import Settings
from integrations.container import Container
from integrations.observability import get_logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

logger = get_logger("connectors")
# Built once per container; a missing variable fails here, at cold start, naming it.
container = Container(Settings.from_env())


@cache
def resolver() -> APIGatewayHttpResolver:
    """The routes, built by the first request or before the SnapStart snapshot.

    The resolver, the routes' pydantic models and the request validation behind them are most of
    what this function loads: the module scope holds only the settings and the container.
    """
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from portal_routes import agency, agency_accounts, connections, context, integrations, me, openapi, sync

    from integrations.api.errors import register_error_handlers

    context.use(container)
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
    return app


def _warm() -> None:
    """Before a SnapStart snapshot: import and load what a request needs (no AWS client yet)."""
    import integrations.portal.service  # noqa: F401

    _ = container.catalog
    # Describing every route builds its request validation (pydantic schemas) once, here.
    resolver().get_openapi_schema()


def _restore() -> None:
    from portal_routes import context

    container.forget_connections()
    context.use(container)


snapstart.register(warm=_warm, restore=_restore)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolver().resolve(event, context)


coldstart.loaded()
