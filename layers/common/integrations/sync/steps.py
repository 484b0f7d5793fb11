"""Provider steps: connections that read or deliver something other than calendars (bookings,
notifications) run the step their provider's `sync.py` offers as `STEP`, found by the registry.

A step gets a `StepContext` of ports (a token getter, the bus, a once-only ledger, the connection's
cursors, a subscription check) and returns how many things it published or delivered. Failures go
through the same fault table as calendar runs (`settle_failure`); the engine never looks at a
provider id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from integrations.providers.registry import part
from integrations.sync.intervals import DEFAULT_INTERVAL_MINUTES
from integrations.sync.settle import (
    ConnectionState,
    Leases,
    Outcome,
    RunResult,
    first_change,
    settle_failure,
)

# A job that meets a delivery in progress looks again after this long.
BUSY_DEFER_SECONDS = 5.0

if TYPE_CHECKING:
    from integrations.catalog import Catalog, ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.events import PlatformEvent
    from integrations.sync.jobs import SyncJob


class OnceLedger(Protocol):
    """Claims an id once (store.delivery_ledger.DynamoDeliveryLedger)."""

    def claim(self, provider: str, event_id: str, now: datetime, connection_id: str) -> bool: ...

    def confirm(self, provider: str, event_id: str) -> None: ...

    def release(self, provider: str, event_id: str) -> None: ...


@dataclass(frozen=True)
class StepContext:
    """What a provider step may use; every port is the container's, none is a provider's."""

    connection: Connection
    spec: ProviderSpec
    job: SyncJob
    access_token: Callable[[], str]
    publish: Callable[[Sequence[PlatformEvent]], None]
    ledger: OnceLedger
    # Replaces the connection's push subscriptions the provider reports as no longer delivering;
    # returns how many it replaced (0: all healthy).
    replace_stale_subscriptions: Callable[[], int]
    save_cursor: Callable[[str, Any], None]
    clock: Callable[[], datetime]
    outbox: Outbox | None = None
    remaining_ms: Callable[[], int] = lambda: 600_000
    # A step that stops with work left sets `more`: the job is continued at once.
    flags: dict[str, bool] = field(default_factory=dict)

    def publish_once(self, key: str, events: Sequence[PlatformEvent]) -> bool:
        """Publish `events` unless `key` was published before; True when published now."""
        return publish_once(self.ledger, self.publish, self.connection, self.clock(), key, events)


def publish_once(
    ledger: OnceLedger,
    publish: Callable[[Sequence[PlatformEvent]], None],
    connection: Connection,
    now: datetime,
    key: str,
    events: Sequence[PlatformEvent],
) -> bool:
    """Publish `events` unless `key` was published before for the connection's provider; True when
    published now. The claim comes first, so two workers never both publish; a failed publish gives
    it back."""
    provider, connection_id = connection.provider, connection.id
    if not ledger.claim(provider, f"published:{key}", now, connection_id):
        return False
    try:
        publish(events)
    except Exception:
        ledger.release(provider, f"published:{key}")
        raise
    ledger.confirm(provider, f"published:{key}")
    return True


class Outbox(Protocol):
    """Messages waiting for delivery per connection, oldest first (store.outbox.DynamoOutbox)."""

    def waiting(self, connection_id: str, now: datetime, limit: int = 50) -> Sequence[Any]: ...

    def done(self, connection_id: str, key: str) -> None: ...


class ProviderStep(Protocol):
    """`providers/<id>/sync.py`'s `STEP`."""

    def run(self, context: StepContext) -> int:
        """Do the job's work; return how many things were published or delivered. Raise to fail."""
        ...


def step_for(connection: Connection) -> ProviderStep | None:
    """The provider's step, None when its `sync.py` has none (calendar adapters, or no sync at all)."""
    module = part(connection.provider, "sync")
    step = getattr(module, "STEP", None) if module is not None else None
    return step if step is not None and hasattr(step, "run") else None


class StepRunner:
    """Runs provider steps for the worker, and settles their outcome on the connection.

    A step marked `exclusive = True` (one that delivers in order) runs under the connection's lease:
    a job that finds it held is deferred briefly, by when the holder has delivered what it announced.
    """

    def __init__(
        self,
        *,
        connections: ConnectionState,
        catalog: Catalog,
        context: Callable[[Connection, ProviderSpec, SyncJob, Callable[[], int]], StepContext],
        leases: Leases,
        clock: Callable[[], datetime],
    ) -> None:
        self._connections = connections
        self._catalog = catalog
        self._context = context
        self._leases = leases
        self._clock = clock

    def run(
        self,
        job: SyncJob,
        connection: Connection,
        step: ProviderStep,
        attempts: int,
        remaining_ms: Callable[[], int] = lambda: 600_000,
    ) -> RunResult:
        """Run `step` for the job's connection and say what to do with the job."""
        if connection.waits_for_person:
            return RunResult(Outcome.DONE, reason="waiting for the owner")
        if not getattr(step, "exclusive", False):
            return self._run(job, connection, step, attempts, remaining_ms)
        owner = uuid.uuid4().hex
        seconds = max(30.0, remaining_ms() / 1000 + 30)
        if not self._leases.acquire(connection.id, owner, self._clock().timestamp(), seconds).acquired:
            return RunResult(Outcome.DEFER, BUSY_DEFER_SECONDS, reason="another run holds the connection")
        try:
            return self._run(job, connection, step, attempts, remaining_ms)
        finally:
            self._leases.release(connection.id, owner)

    def _run(
        self,
        job: SyncJob,
        connection: Connection,
        step: ProviderStep,
        attempts: int,
        remaining_ms: Callable[[], int],
    ) -> RunResult:
        spec = self._catalog.get(connection.provider)
        context = self._context(connection, spec, job, remaining_ms)
        try:
            changes = step.run(context)
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            return settle_failure(self._connections, connection, error, attempts=attempts, now=self._clock())
        if context.flags.get("more"):
            return RunResult(Outcome.CONTINUE, changes=changes, reason="out of time")
        finished = self._clock()
        interval = timedelta(minutes=connection.sync_interval_minutes or DEFAULT_INTERVAL_MINUTES)
        self._connections.apply(
            connection.id,
            lambda c: first_change(
                c.provider_succeeded(finished), c.sync_succeeded(finished, {}, finished + interval)
            ),
        )
        return RunResult(Outcome.DONE, changes=changes)
