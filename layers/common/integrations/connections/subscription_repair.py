"""Work on one push subscription a provider names in a lifecycle notification (Graph's
`subscriptionRemoved` and `reauthorizationRequired`, calendar-email.md §4.5), done at once rather than
when maintenance next renews what is close to expiry (until then only polling would catch changes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from integrations.connections.resubscribe import (
    RecreationNotice,
    SubscriptionLookups,
    retire_replaced,
    shows_recreating,
    stored_subscriptions,
)
from integrations.observability import get_logger

if TYPE_CHECKING:
    from integrations.catalog.loader import Catalog
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext, SubscriptionManager

logger = get_logger()


def _named(
    manager: SubscriptionManager, repository: SubscriptionLookups, connection: Connection, value: str
) -> tuple[list[Lookup], list[Lookup]]:
    """The connection's stored subscriptions, and those of them the provider named by `value`."""
    old = stored_subscriptions(manager, repository, connection)
    return old, [lookup for lookup in old if lookup.value == value]


def recreate_removed(
    spec: ProviderSpec,
    connection: Connection,
    access_token: Callable[[], str],
    context: SubscriptionContext,
    repository: SubscriptionLookups,
    notice: RecreationNotice | None,
    *,
    value: str,
) -> int:
    """Make again, at once, the subscription the provider says it removed (Graph's `subscriptionRemoved`).

    Managers that can remake single subscriptions offer `recreate(spec, connection, access_token,
    removed) -> list[Lookup] | None` (None: they cannot tell which, so all are made again). The new one
    is stored before the removed one is forgotten: a failure in between leaves the removed one named, so
    the retried job still finds it, and the card keeps `subscription_recreating` until it succeeds.
    A subscription no longer stored (replaced already, or a redelivered notification) is left alone."""
    from integrations.webhooks.subscriptions import for_provider

    manager = for_provider(spec.id, context)
    if manager is None:
        return 0
    old, removed = _named(manager, repository, connection, value)
    if not removed:
        if notice is not None and shows_recreating(connection):
            notice.recreated(connection)
        return 0
    if notice is not None:
        connection = notice.recreating(connection)
    token = access_token()
    remake = getattr(manager, "recreate", None)
    new: list[Lookup] | None = remake(spec, connection, token, removed) if remake is not None else None
    replaced = removed
    if new is None:
        new, replaced = manager.subscribe(spec, connection, token), old
    repository.put_lookups(connection, new)
    # Stopping the removed one at the provider answers 404 (it is gone), which is fine.
    retire_replaced(spec, connection, token, manager, repository, old=replaced, new=new)
    if notice is not None:
        notice.recreated(connection)
    logger.info(
        "removed subscription recreated",
        extra={"provider": spec.id, "connection_id": connection.id, "made": len(new)},
    )
    return len(removed)


def reauthorize_named(
    spec: ProviderSpec,
    connection: Connection,
    access_token: Callable[[], str],
    context: SubscriptionContext,
    repository: SubscriptionLookups,
    notice: RecreationNotice | None,
    *,
    value: str,
) -> int:
    """Confirm, with a valid token, the subscription the provider asks about (Graph's
    `reauthorizationRequired`), at once.

    Managers offer `reauthorize(spec, connection, access_token, lookup) -> Lookup | None` (the lookup
    with its new expiry; None when the provider no longer has it, which is then made again). Without
    it, the subscription is made again. Returns how many were reauthorized or made again."""
    from integrations.webhooks.subscriptions import for_provider

    manager = for_provider(spec.id, context)
    if manager is None:
        return 0
    _old, named = _named(manager, repository, connection, value)
    confirm = getattr(manager, "reauthorize", None)
    if not named:
        return 0
    if confirm is not None:
        token = access_token()
        confirmed = [confirm(spec, connection, token, lookup) for lookup in named]
        if all(c is not None for c in confirmed):
            repository.put_lookups(connection, [c for c in confirmed if c is not None])
            logger.info(
                "subscription reauthorized", extra={"provider": spec.id, "connection_id": connection.id}
            )
            return len(confirmed)
    return recreate_removed(spec, connection, access_token, context, repository, notice, value=value)


class SubscriptionRepairs:
    """The worker's port (sync.worker.SubscriptionRepair): the functions above for one connection."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        access_token: Callable[[Connection], str],
        context: Callable[[], SubscriptionContext],
        repository: SubscriptionLookups,
        notice: RecreationNotice,
    ) -> None:
        self._catalog = catalog
        self._access_token = access_token
        self._context = context
        self._repository = repository
        self._notice = notice

    def recreate(self, connection: Connection, subscription_id: str) -> int:
        return self._run(recreate_removed, connection, subscription_id)

    def reauthorize(self, connection: Connection, subscription_id: str) -> int:
        return self._run(reauthorize_named, connection, subscription_id)

    def _run(self, work: Callable[..., int], connection: Connection, subscription_id: str) -> int:
        if connection.provider not in self._catalog:
            return 0
        return work(
            self._catalog.get(connection.provider),
            connection,
            lambda: self._access_token(connection),
            self._context(),
            self._repository,
            self._notice,
            value=subscription_id,
        )
