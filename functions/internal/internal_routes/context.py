"""What every internal route shares: the container app.py built at cold start, and the IAM check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.api.internal import require_iam_caller

if TYPE_CHECKING:
    from integrations.container import Container

_container: Container | None = None


def use(container: Container) -> None:
    """Called once by app.py's module scope: the routes run on this container's adapters."""
    global _container
    _container = container


def services(router: APIGatewayHttpRouter) -> Container:
    """The container, once the call is known to be the platform's (SigV4 through AWS_IAM)."""
    require_iam_caller(router.current_event.raw_event)
    if _container is None:
        raise RuntimeError("app.py has not given the routes a container")
    return _container
