"""Replacing a connection's push subscriptions: the new ones first, then the ones they replace stopped.

A reconnect of the same account, or a config change that moves what is watched (another calendar),
subscribes again; the stored subscriptions the new set does not keep would otherwise go on delivering
every change twice until they expire. New before old, so no change falls in a gap (a push from both
for a moment is absorbed by dedupe and coalescing).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from integrations.observability import get_logger

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.lookup import Lookup
    from integrations.webhooks.subscriptions import SubscriptionContext, SubscriptionManager

logger = get_logger()


class RecreationNotice(Protocol):
    """What the card says while subscriptions the provider stopped delivering to are made again."""

    def recreating(self, connection: Connection) -> Connection:
        """Save the notice; the connection as saved (later writes of it check its version)."""
        ...

    def recreated(self, connection: Connection) -> None: ...


class SubscriptionLookups(Protocol):
    """The connection's lookup items (store.connections.ConnectionRepository)."""

    def get_lookup(self, provider: str, kind: str, value: str) -> Lookup | None: ...

    def put_lookups(self, connection: Connection, lookups: list[Lookup]) -> None: ...

    def remove_lookups(self, connection: Connection, lookups: list[Lookup]) -> None: ...


def stored_subscriptions(
    manager: SubscriptionManager, repository: SubscriptionLookups, connection: Connection
) -> list[Lookup]:
    """The connection's stored lookups of the kinds `manager` subscribes under."""
    from integrations.webhooks.subscriptions import stored_lookups

    if not manager.kinds or not connection.lookup_keys:
        return []
    return [lookup for lookup in stored_lookups(repository, connection) if lookup.kind in manager.kinds]


def retire_replaced(
    spec: ProviderSpec,
    connection: Connection,
    access_token: str,
    manager: SubscriptionManager,
    repository: SubscriptionLookups,
    *,
    old: list[Lookup],
    new: list[Lookup],
) -> None:
    """Stop at the provider (best effort) and forget the `old` subscriptions that `new` did not keep."""
    kept = {lookup.key for lookup in new}
    stale = [lookup for lookup in old if lookup.key not in kept]
    if not stale:
        return
    about = {"provider": spec.id, "connection_id": connection.id}
    try:
        manager.unsubscribe(spec, connection, access_token, stale)
    except Exception as exc:  # it expires on its own; its pushes are refused once its lookup is gone
        logger.warning("replaced subscription not stopped", extra={**about, "error": type(exc).__name__})
    repository.remove_lookups(connection, stale)
    logger.info("subscriptions replaced", extra={**about, "replaced": len(stale)})


def resubscribe(
    spec: ProviderSpec,
    connection: Connection,
    access_token: str,
    context: SubscriptionContext,
    repository: SubscriptionLookups,
) -> None:
    """Open the subscriptions the connection needs now, then stop and forget the ones they replace."""
    from integrations.webhooks.subscriptions import for_provider

    manager = for_provider(spec.id, context)
    if manager is None:
        return
    old = stored_subscriptions(manager, repository, connection)
    new = manager.subscribe(spec, connection, access_token)
    repository.put_lookups(connection, new)
    retire_replaced(spec, connection, access_token, manager, repository, old=old, new=new)


def renew_expiring(
    spec: ProviderSpec,
    connection: Connection,
    access_token: Callable[[], str],
    context: SubscriptionContext,
    repository: SubscriptionLookups,
    *,
    before: datetime,
) -> int:
    """Renew the connection's subscriptions when any of them expires before `before` (providers never
    extend a Google channel, and Graph subscriptions last days): subscribe again, then retire the old.
    Returns how many were expiring; the token is asked for only when something is renewed."""
    from integrations.webhooks.subscriptions import for_provider

    manager = for_provider(spec.id, context)
    if manager is None:
        return 0
    # A manager may renew earlier than the engine's window (Gmail: daily, for a 7-day watch); then a
    # subscription of unknown expiry is one that must be made again.
    renew_ahead = getattr(manager, "renew_ahead", None)
    eager = isinstance(renew_ahead, timedelta)
    if isinstance(renew_ahead, timedelta):
        before = max(before, context.clock() + renew_ahead)
    old = stored_subscriptions(manager, repository, connection)
    expiring = [lookup for lookup in old if _expires_before(lookup, before, unknown=eager)]
    if not expiring:
        return 0
    token = access_token()
    new = manager.subscribe(spec, connection, token)
    repository.put_lookups(connection, new)
    retire_replaced(spec, connection, token, manager, repository, old=old, new=new)
    logger.info(
        "subscriptions renewed",
        extra={"provider": spec.id, "connection_id": connection.id, "expiring": len(expiring)},
    )
    return len(expiring)


def _expires_before(lookup: Lookup, moment: datetime, *, unknown: bool = False) -> bool:
    from integrations.webhooks.routing import Attr

    text = lookup.attributes.get(Attr.EXPIRES_AT) or ""
    try:
        expires = datetime.fromisoformat(text)
    except ValueError:
        return unknown  # unknown expiry: most providers keep it until it is stopped
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires <= moment


def moves_subscriptions(
    spec: ProviderSpec, context: SubscriptionContext, before: dict[str, object], after: dict[str, object]
) -> bool:
    """Whether a config change touches a field the provider's subscriptions depend on."""
    from integrations.webhooks.subscriptions import for_provider

    manager = for_provider(spec.id, context)
    if manager is None:
        return False
    return any(before.get(name) != after.get(name) for name in manager.config_fields)


def replace_stale(
    spec: ProviderSpec,
    connection: Connection,
    access_token: Callable[[], str],
    context: SubscriptionContext,
    repository: SubscriptionLookups,
    notice: RecreationNotice | None = None,
) -> int:
    """Replace the connection's subscriptions the provider no longer delivers to (Calendly disables one
    after a day of failed deliveries and never re-enables it): subscribe again, then retire the old.

    Managers that can tell offer `stale(spec, connection, access_token, lookups) -> list[Lookup]`;
    a connection without stored subscriptions gets them made. Returns how many were replaced.
    `notice` is told when stale ones are found and again once they are replaced: a failure in
    between leaves the card saying so until a later run succeeds."""
    from integrations.webhooks.subscriptions import for_provider

    manager = for_provider(spec.id, context)
    stale_of = getattr(manager, "stale", None)
    if manager is None or stale_of is None:
        return 0
    token = access_token()
    old = stored_subscriptions(manager, repository, connection)
    stale: list[Lookup] = list(stale_of(spec, connection, token, old)) if old else []
    if old and not stale:
        if notice is not None and shows_recreating(connection):
            notice.recreated(connection)  # replaced by a run whose clearing was lost, or healthy again
        return 0
    if notice is not None and stale:
        connection = notice.recreating(connection)
    new = manager.subscribe(spec, connection, token)
    repository.put_lookups(connection, new)
    retire_replaced(spec, connection, token, manager, repository, old=old, new=new)
    if notice is not None:
        notice.recreated(connection)
    logger.info(
        "stale subscriptions replaced",
        extra={"provider": spec.id, "connection_id": connection.id, "stale": len(stale)},
    )
    return max(1, len(stale))


def shows_recreating(connection: Connection) -> bool:
    """Whether the card says `subscription_recreating`."""
    from integrations.domain.connection import NoticeCode

    return any(n.code is NoticeCode.SUBSCRIPTION_RECREATING for n in connection.notices)
