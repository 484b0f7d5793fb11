"""apply(connection, transition): save with optimistic-lock retry, then publish real status changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.connections.apply import ConnectionTransitions
from integrations.domain.access import Level
from integrations.domain.connection import (
    AuthHealth,
    Connection,
    ErrorCode,
    ExternalAccount,
    PortalStatus,
    StatusChange,
)
from integrations.domain.errors import ReauthRequired, VersionConflict
from integrations.events import (
    IntegrationConfigChanged,
    IntegrationErrored,
    IntegrationRecovered,
    PlatformEvent,
)

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def connection(version: int = 0) -> Connection:
    return Connection(
        id="c1",
        provider="ghl",
        level=Level.CLIENT,
        agency_id="ag",
        client_id="cl",
        account=ExternalAccount(id="loc-1", label="Main location"),
        version=version,
    )


class Store:
    """Connections by id with the repository's optimistic locking; `conflicts` saves lose first."""

    def __init__(self, stored: Connection | None, conflicts: int = 0) -> None:
        self.stored = stored.model_copy(deep=True) if stored is not None else None
        self.conflicts = conflicts
        self.saves = 0
        self.reads = 0

    def get(self, connection_id: str) -> Connection | None:
        self.reads += 1
        return self.stored.model_copy(deep=True) if self.stored is not None else None

    def save(self, connection: Connection) -> Connection:
        if self.conflicts:
            self.conflicts -= 1
            # Someone else saved meanwhile: the stored copy moved on.
            assert self.stored is not None
            self.stored.version += 1
            raise VersionConflict("changed meanwhile")
        assert self.stored is not None
        if connection.version != self.stored.version:
            raise VersionConflict("stale copy")
        connection.version += 1
        self.saves += 1
        self.stored = connection.model_copy(deep=True)
        return connection


class Bus:
    def __init__(self, *, fails: bool = False) -> None:
        self.fails = fails
        self.published: list[PlatformEvent] = []

    def publish(self, *events: PlatformEvent) -> None:
        if self.fails:
            raise RuntimeError("bus refused the entries")
        self.published.extend(events)


def refused(c: Connection, now: datetime) -> StatusChange | None:
    return c.auth_failed(ErrorCode.REAUTH_REQUIRED, "gone", now)


def test_a_status_change_is_saved_and_announced_once() -> None:
    store, bus = Store(connection()), Bus()

    applied = ConnectionTransitions(store, bus, lambda: NOW).apply("c1", refused)

    assert applied is not None and applied.connection.status is PortalStatus.ERROR
    assert store.stored is not None and store.stored.auth_health is AuthHealth.REAUTH_REQUIRED
    assert [type(e) for e in bus.published] == [IntegrationErrored]


def test_a_version_conflict_rereads_and_runs_the_transition_again() -> None:
    store, bus = Store(connection(), conflicts=2), Bus()
    runs: list[int] = []

    def counted(c: Connection, now: datetime) -> StatusChange | None:
        runs.append(c.version)
        return refused(c, now)

    applied = ConnectionTransitions(store, bus, lambda: NOW).apply(connection(), counted)

    assert applied is not None
    assert runs == [0, 1, 2]  # each retry ran on the copy someone else had saved
    assert store.saves == 1
    assert len(bus.published) == 1


def test_a_connection_that_keeps_changing_is_a_version_conflict() -> None:
    store, bus = Store(connection(), conflicts=10), Bus()

    with pytest.raises(VersionConflict):
        ConnectionTransitions(store, bus, lambda: NOW, attempts=3).apply("c1", refused)

    assert bus.published == []


def test_a_failed_publish_after_the_save_is_not_an_error() -> None:
    store, bus = Store(connection()), Bus(fails=True)

    applied = ConnectionTransitions(store, bus, lambda: NOW).apply("c1", refused)

    assert applied is not None
    assert store.stored is not None and store.stored.status is PortalStatus.ERROR


def test_no_event_when_the_status_stays_the_same() -> None:
    store, bus = Store(connection()), Bus()

    applied = ConnectionTransitions(store, bus, lambda: NOW).apply(
        "c1", lambda c, now: c.configured({"pipeline_id": "p1"}, now)
    )

    assert applied is not None and applied.change is None
    assert store.stored is not None and store.stored.config == {"pipeline_id": "p1"}
    assert bus.published == []


def test_announced_events_go_out_before_the_status_events() -> None:
    broken = connection()
    broken.config_needed("Choose: Pipeline.", NOW)
    store, bus = Store(broken), Bus()

    ConnectionTransitions(store, bus, lambda: NOW).apply(
        "c1",
        lambda c, now: c.configured({"pipeline_id": "p1"}, now),
        announce=lambda c, _: [IntegrationConfigChanged.of(c, config=c.config)],
    )

    assert [type(e) for e in bus.published] == [IntegrationConfigChanged, IntegrationRecovered]


def test_a_transition_that_changes_nothing_writes_nothing() -> None:
    store, bus = Store(connection()), Bus()

    applied = ConnectionTransitions(store, bus, lambda: NOW).apply(
        "c1", lambda c, now: c.provider_succeeded(now)
    )

    assert applied is not None and applied.change is None
    assert store.saves == 0
    assert bus.published == []


def test_a_connection_gone_meanwhile_is_none() -> None:
    store = Store(None)

    assert ConnectionTransitions(store, Bus(), lambda: NOW).apply("c1", refused) is None


def test_a_refusal_inside_the_guard_is_recorded_then_raised() -> None:
    store, bus = Store(connection()), Bus()
    transitions = ConnectionTransitions(store, bus, lambda: NOW)

    with pytest.raises(ReauthRequired), transitions.reauth_on_refusal(connection()):
        raise ReauthRequired("The provider refused the token.")

    assert store.stored is not None and store.stored.error is not None
    assert store.stored.error.code is ErrorCode.REAUTH_REQUIRED
    assert [type(e) for e in bus.published] == [IntegrationErrored]


def test_a_refusal_already_recorded_is_not_written_or_announced_again() -> None:
    dead = connection()
    dead.auth_failed(ErrorCode.REAUTH_REQUIRED, "gone", NOW)
    store, bus = Store(dead), Bus()

    ConnectionTransitions(store, bus, lambda: NOW).reauth_required("c1", "gone again")

    assert store.saves == 0
    assert bus.published == []
