"""Mail for the BCC logging addresses: SES received it, stored it in S3, and invokes this asynchronously.

The answer goes nowhere (SES invokes with InvocationType Event, so a sender never sees our trouble).
A bad message is dropped and counted inside; only faults worth a retry raise (a store, CRM or bus
outage), and Lambda retries them twice before the on-failure destination keeps the notice.
"""

from __future__ import annotations

# First: the rest of init runs with the garbage collector paused (integrations.coldstart).
from integrations import coldstart

# isort: split
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from integrations import snapstart
from integrations.config import Settings
from integrations.container import Container
from integrations.observability import get_logger

if TYPE_CHECKING:
    from integrations.mail.inbound import InboundMail

logger = get_logger("inbound_mail")
# Built once per container; a missing variable fails here, at cold start, naming it.
container = Container(Settings.from_env())


def _warm() -> None:
    """Before a SnapStart snapshot: import and load what a message needs (no AWS client yet)."""
    import integrations.mail.inbound  # noqa: F401

    _ = container.catalog


def _restore() -> None:
    inbound.cache_clear()
    container.forget_connections()


snapstart.register(warm=_warm, restore=_restore)


@cache
def inbound() -> InboundMail:
    return container.inbound_mail()


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """An SES receipt notice in; what became of it out (outcomes by connection, never an address)."""
    handled = inbound().receive(event)
    return {"handled": [{"outcome": h.outcome.value, "logged": h.logged} for h in handled]}


coldstart.loaded()
