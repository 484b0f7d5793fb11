"""Connect: OAuth start (JWT), the browser's authorize and callback, the generic connect route, agency apps.

Thin on purpose: routes parse, call integrations.oauth.service, and shape the answer; errors become
answers in one place (integrations.api.errors). `log_event` stays off: callbacks carry codes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from oauth_routes import agency_apps, browser, connect, context, start

from integrations import snapstart
from integrations.api.errors import register_error_handlers
from integrations.config import Settings
from integrations.container import Container
from integrations.observability import get_logger

logger = get_logger("oauth")
# Built once per container; a missing variable fails here, at cold start, naming it.
container = Container(Settings.from_env())
context.use(container)


def _warm() -> None:
    """Before a SnapStart snapshot: import and load what a request needs (no AWS client yet)."""
    import integrations.oauth.service  # noqa: F401

    _ = container.catalog


def _restore() -> None:
    container.forget_connections()
    context.use(container)


snapstart.register(warm=_warm, restore=_restore)
app = APIGatewayHttpResolver(enable_validation=True)
for router in (start.router, browser.router, connect.router, agency_apps.router):
    app.include_router(router)
register_error_handlers(app, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
