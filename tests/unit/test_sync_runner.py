"""A calendar sync run: statuses, cursors, coalescing, leases and every fault's effect on the card."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from integrations.domain.access import Level
from integrations.domain.connection import Connection, ErrorCode, ExternalAccount, PortalStatus
from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.http import RateLimited
from integrations.sync.calendar import CalendarAdapter, CalendarEvent
from integrations.sync.calendar_sync import EventChange
from integrations.sync.faults import POISON_RECEIVES, SUSTAINED_FAILURES
from integrations.sync.jobs import JobKind, SyncJob
from integrations.sync.runner import BUSY_DEFER_SECONDS, DEFAULT_INTERVAL, SyncRunner, cursor_key
from integrations.sync.settle import Outcome
from tests.support.calendar_fakes import FakeCalendar, FakeConnections, FakeLeases, FakeMirror, FakePushed

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


class Source:
    def __init__(self, calendar: FakeCalendar) -> None:
        self.calendar = calendar

    def adapter(self, connection: Connection) -> CalendarAdapter | None:
        return self.calendar

    def calendars(self, connection: Connection) -> Sequence[str]:
        return ["primary"]

    def publishes(self, connection: Connection, calendar_id: str) -> bool:
        return True


class World:
    def __init__(self) -> None:
        self.calendar = FakeCalendar(page_size=2)
        for n in range(5):
            start = NOW + timedelta(hours=n)
            self.calendar.upsert(
                CalendarEvent(
                    calendar_id="primary", external_id=f"e{n}", start=start, end=start + timedelta(hours=1)
                )
            )
        self.connections = FakeConnections()
        self.connections.connections["c1"] = Connection(
            id="c1",
            provider="google_calendar",
            level=Level.USER,
            agency_id="a1",
            client_id="cl1",
            user_id="u1",
            account=ExternalAccount(id="g1", label="alex@example.com"),
        )
        self.leases = FakeLeases()
        self.published: list[EventChange] = []
        self.now = NOW
        self.runner = SyncRunner(
            connections=self.connections,
            leases=self.leases,
            mirror=FakeMirror(),
            pushed=FakePushed(),
            publish=lambda connection, changes: self.published.extend(changes),
            source=Source(self.calendar),
            clock=lambda: self.now,
        )

    @property
    def connection(self) -> Connection:
        return self.connections.connections["c1"]

    def job(self, **hint: str) -> SyncJob:
        return SyncJob(
            kind=JobKind.SYNC, connection_id="c1", provider="google_calendar", hint=hint, received_at=self.now
        )

    def run(self, *, receives: int = 1, remaining_ms: int = 600_000) -> Outcome:
        self.now += timedelta(seconds=1)
        result = self.runner.run(self.job(), receive_count=receives, remaining_ms=lambda: remaining_ms)
        self.last = result
        return result.outcome


@pytest.fixture
def world() -> World:
    return World()


def test_a_run_syncs_every_page_and_schedules_the_next(world: World) -> None:
    assert world.run() is Outcome.DONE
    connection = world.connection
    assert connection.status is PortalStatus.CONNECTED
    assert connection.last_sync_at == world.now
    assert connection.next_sync_at == world.now + DEFAULT_INTERVAL
    assert connection.cursors[cursor_key("primary")] == {"token": str(world.calendar.sequence)}
    assert len(world.published) == 5


def test_a_job_received_before_the_last_run_started_is_covered_by_it(world: World) -> None:
    early = world.job()
    world.run()
    pulls = world.calendar.pulls
    result = world.runner.run(early, receive_count=1, remaining_ms=lambda: 600_000)
    assert result.outcome is Outcome.DONE
    assert world.calendar.pulls == pulls


def test_a_connection_another_worker_holds_is_deferred(world: World) -> None:
    world.leases.acquire("c1", "someone", world.now.timestamp() + 5, 300)
    assert world.run() is Outcome.DEFER
    assert world.last.delay_seconds == BUSY_DEFER_SECONDS
    assert world.calendar.pulls == 0


def test_a_rate_limit_waits_for_retry_after_and_is_no_failure(world: World) -> None:
    world.calendar.fail_on_call = {1: RateLimited("slow", retry_after=37)}
    assert world.run() is Outcome.DEFER
    assert world.last.delay_seconds == 37
    assert world.connection.consecutive_failures == 0
    assert world.connection.status is PortalStatus.CONNECTED


def test_only_sustained_outages_show_and_the_next_success_recovers(world: World) -> None:
    world.calendar.fail_on_call = {
        n: ProviderUnavailable("HTTP 503") for n in range(1, SUSTAINED_FAILURES + 1)
    }
    for attempt in range(1, SUSTAINED_FAILURES + 1):
        assert world.run() is Outcome.DEFER
        expected = PortalStatus.ERROR if attempt == SUSTAINED_FAILURES else PortalStatus.CONNECTED
        assert world.connection.status is expected
    assert world.connection.error is not None
    assert world.connection.error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert world.run() is Outcome.DONE
    assert world.connection.status is PortalStatus.CONNECTED
    assert world.connections.changes[-1].is_recovery


def test_a_lost_grant_turns_the_card_to_reauth_and_stops_syncing(world: World) -> None:
    world.calendar.fail_on_call = {1: ReauthRequired("revoked")}
    assert world.run() is Outcome.DONE
    assert world.connection.error is not None
    assert world.connection.error.code is ErrorCode.REAUTH_REQUIRED
    assert world.connections.changes[-1].is_error
    pulls = world.calendar.pulls
    assert world.run() is Outcome.DONE
    assert world.calendar.pulls == pulls


def test_a_run_out_of_time_continues_and_does_not_stay_syncing(world: World) -> None:
    assert world.run(remaining_ms=1_000) is Outcome.CONTINUE
    assert world.connection.status is PortalStatus.CONNECTED
    assert world.connection.cursors[cursor_key("primary")]["page"]
    assert world.runner.run(
        world.job(reason="continue"), receive_count=1, remaining_ms=lambda: 600_000
    ).outcome is (Outcome.DONE)
    assert len(world.published) == 5


def test_an_unexpected_error_retries_then_is_poison_and_shows_sync_failed(world: World) -> None:
    world.calendar.fail_on_call = {1: KeyError("x"), 2: KeyError("x")}
    assert world.run(receives=1) is Outcome.DEFER
    assert world.run(receives=POISON_RECEIVES) is Outcome.FAIL
    assert world.connection.error is not None
    assert world.connection.error.code is ErrorCode.SYNC_FAILED


def test_a_run_that_died_covers_nothing_so_its_redelivered_job_runs(world: World) -> None:
    early = world.job()
    world.run()
    # A later run began (after the job arrived) and died before it finished.
    world.now += timedelta(minutes=1)
    world.connections.connections["c1"].sync_started(world.now, world.now + DEFAULT_INTERVAL)
    pulls = world.calendar.pulls

    result = world.runner.run(early, receive_count=2, remaining_ms=lambda: 600_000)

    assert result.outcome is Outcome.DONE
    assert world.calendar.pulls > pulls
    assert world.connection.status is PortalStatus.CONNECTED
