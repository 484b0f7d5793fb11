"""POST /webhooks/{provider}: verify, dedupe, enqueue, answer within milliseconds.

No HTTP framework: one route whose answer shapes differ by provider (text/plain for Graph's
handshake, 429 for GHL) is a dict, and skipping the resolver keeps cold starts small. Nothing here
imports the Google client libraries, requests-oauthlib or caldav.
"""

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
from integrations.domain.clock import utcnow
from integrations.metrics import EmfCounter, count_webhook
from integrations.observability import get_logger
from integrations.webhooks.errors import MalformedPayload
from integrations.webhooks.request import from_http_api_event

if TYPE_CHECKING:
    from integrations.webhooks.receiver import WebhookAnswer, WebhookReceiver

logger = get_logger("webhooks")
counter = EmfCounter()
# Built once per container; a missing variable fails here, at cold start, naming it.
settings = Settings.from_env()
container = Container(settings)


def _warm() -> None:
    """Before a SnapStart snapshot: import and load what a request needs (no AWS client yet)."""
    import integrations.webhooks.receiver  # noqa: F401

    _ = container.catalog


def _restore() -> None:
    receiver.cache_clear()
    container.forget_connections()


# The receiver, its plug-ins and the catalog (pydantic models) load on the first request, or before
# the snapshot under SnapStart: the module scope holds only the settings and the container.
snapstart.register(warm=_warm, restore=_restore)


@cache
def receiver() -> WebhookReceiver:
    """Built on first use, once per container (clients and caches live as long as it does)."""
    return container.webhook_receiver(logger)


def _provider(event: dict[str, Any]) -> str:
    parameters = event.get("pathParameters") or {}
    provider = parameters.get("provider") if isinstance(parameters, dict) else None
    if isinstance(provider, str):
        return provider
    return str(event.get("rawPath") or "").rstrip("/").rsplit("/", 1)[-1]


def _response(answer: WebhookAnswer) -> dict[str, Any]:
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": answer.content_type, "Cache-Control": "no-store", **answer.headers},
        "body": answer.body,
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(
    log_event=False, clear_state=True, correlation_id_path=correlation_paths.API_GATEWAY_HTTP
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway HTTP API (payload v2) in, a proxy answer out."""
    from integrations.webhooks.receiver import NOT_FOUND, WebhookAnswer, receives_pushes

    provider = _provider(event)
    if not receives_pushes(provider):
        return _response(NOT_FOUND)
    try:
        request = from_http_api_event(
            event,
            provider=provider,
            # The public URL providers call (HubSpot signs it), never rebuilt from the Host header.
            public_url=f"{settings.public_api_url}/webhooks/{provider}",
            received_at=utcnow(),
        )
    except (MalformedPayload, TypeError, ValueError, AttributeError):
        # An event the gateway would not build (bad base64, odd shapes) is the sender's, never a 5xx.
        answer = WebhookAnswer.of_json(400, {"message": "Bad Request"})
    else:
        answer = receiver().receive(request)
    # Only catalog providers are counted: the path is the sender's, and each value is a metric.
    count_webhook(counter, provider, answer.status, answer.body)
    return _response(answer)


coldstart.loaded()
