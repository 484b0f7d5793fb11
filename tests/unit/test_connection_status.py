"""Portal status is derived in one place; transitions report a change only when the status changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from integrations.domain.access import Level
from integrations.domain.connection import (
    AuthHealth,
    Connection,
    ErrorCode,
    ExternalAccount,
    NoticeCode,
    PortalStatus,
    SyncHealth,
)
from integrations.events import IntegrationErrored, IntegrationRecovered, status_events

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def connection() -> Connection:
    return Connection(
        id="c1",
        provider="ghl",
        level=Level.CLIENT,
        agency_id="ag",
        client_id="cl",
        account=ExternalAccount(id="loc-1", label="Main location"),
    )


def test_new_connection_is_connected() -> None:
    assert connection().status is PortalStatus.CONNECTED


def test_invalid_grant_errors_at_once_and_emits_errored() -> None:
    conn = connection()

    change = conn.auth_failed(ErrorCode.REAUTH_REQUIRED, "Reconnect GoHighLevel.", NOW)

    assert change is not None and change.after is PortalStatus.ERROR
    assert conn.error is not None and conn.error.code is ErrorCode.REAUTH_REQUIRED
    [event] = status_events(conn, change)
    assert isinstance(event, IntegrationErrored) and event.error_code is ErrorCode.REAUTH_REQUIRED


def test_provider_outage_counts_before_it_flips_the_status() -> None:
    conn = connection()

    first = conn.provider_failed("timeout", NOW, threshold=3)
    second = conn.provider_failed("timeout", NOW, threshold=3)
    third = conn.provider_failed("timeout", NOW, threshold=3)

    assert first is None and second is None
    assert third is not None and conn.status is PortalStatus.ERROR
    assert conn.error is not None and conn.error.code is ErrorCode.PROVIDER_UNAVAILABLE


def test_success_after_outage_recovers_and_emits_recovered() -> None:
    conn = connection()
    for _ in range(3):
        conn.provider_failed("timeout", NOW, threshold=3)

    change = conn.provider_succeeded(NOW)

    assert change is not None and change.is_recovery
    assert conn.status is PortalStatus.CONNECTED and conn.error is None
    [event] = status_events(conn, change)
    assert isinstance(event, IntegrationRecovered)


def test_success_does_not_clear_a_reauth_need() -> None:
    conn = connection()
    conn.auth_failed(ErrorCode.REAUTH_REQUIRED, "Reconnect.", NOW)

    assert conn.provider_succeeded(NOW) is None
    assert conn.status is PortalStatus.ERROR


def test_reauthorize_keeps_config_and_cursors_and_recovers() -> None:
    conn = connection()
    conn.configured({"pipeline_id": "p1", "stage_id": "s1"}, NOW)
    conn.cursors = {"modified_since": "2026-11-01"}
    conn.auth_failed(ErrorCode.REAUTH_REQUIRED, "Reconnect.", NOW)

    change = conn.reauthorized(["contacts.readonly"], ExternalAccount(id="loc-1", label="Main"), NOW)

    assert change is not None and change.is_recovery
    assert conn.config == {"pipeline_id": "p1", "stage_id": "s1"}
    assert conn.cursors == {"modified_since": "2026-11-01"}
    assert conn.id == "c1"


def test_syncing_shows_and_a_finished_sync_returns_to_connected_without_events() -> None:
    conn = connection()

    started = conn.sync_started(NOW, NOW)
    done = conn.sync_succeeded(NOW, {"sync_token": "t2"}, None)

    assert started is not None and started.after is PortalStatus.SYNCING
    assert done is not None and done.after is PortalStatus.CONNECTED
    assert status_events(conn, started) == [] and status_events(conn, done) == []
    assert conn.last_sync_at == NOW and conn.cursors["sync_token"] == "t2"


def test_config_required_is_cleared_by_configuring() -> None:
    conn = connection()
    conn.config_needed("Choose a pipeline.", NOW)
    assert conn.status is PortalStatus.ERROR

    change = conn.configured({"pipeline_id": "p"}, NOW)

    assert change is not None and change.is_recovery and conn.error is None


TRANSITIONS = st.sampled_from(
    [
        lambda c: c.auth_failed(ErrorCode.REAUTH_REQUIRED, "x", NOW),
        lambda c: c.provider_failed("x", NOW, threshold=2),
        lambda c: c.provider_succeeded(NOW),
        lambda c: c.sync_started(NOW, NOW),
        lambda c: c.sync_succeeded(NOW, {}, None),
        lambda c: c.sync_failed("x", NOW),
        lambda c: c.config_needed("x", NOW),
        lambda c: c.configured({}, NOW),
        lambda c: c.reauthorized([], ExternalAccount(id="a", label="a"), NOW),
    ]
)


@given(st.lists(TRANSITIONS, max_size=30))
def test_a_change_is_reported_exactly_when_the_status_changes(steps: list) -> None:  # type: ignore[type-arg]
    conn = connection()
    for step in steps:
        before = conn.status
        change = step(conn)
        after = conn.status
        assert (change is None) is (before is after)
        if change is not None:
            assert (change.before, change.after) == (before, after)
        # error status always comes with an error record explaining it
        assert (after is PortalStatus.ERROR) is (
            conn.auth_health is not AuthHealth.OK
            or conn.sync_health in (SyncHealth.FAILED, SyncHealth.CONFIG_REQUIRED)
        )
        if after is PortalStatus.ERROR:
            assert conn.error is not None


def test_a_notice_never_changes_the_status_and_clears_when_its_cause_is_over() -> None:
    conn = connection()

    assert conn.noticed(NoticeCode.SUBSCRIPTION_RECREATING, NOW) is None
    assert [n.code for n in conn.notices_at(NOW)] == [NoticeCode.SUBSCRIPTION_RECREATING]
    assert conn.status is PortalStatus.CONNECTED
    assert conn.notice_cleared(NoticeCode.SUBSCRIPTION_RECREATING, NOW) is None
    assert conn.notices_at(NOW) == []


def test_dropped_messages_add_up_while_shown_and_start_again_after() -> None:
    conn = connection()
    week = timedelta(days=7)

    conn.noticed(NoticeCode.MESSAGES_DROPPED, NOW, count=2, until=NOW + week)
    conn.noticed(NoticeCode.MESSAGES_DROPPED, NOW + timedelta(hours=1), count=3, until=NOW + week)
    [shown] = conn.notices_at(NOW + timedelta(hours=2))
    assert (shown.count, shown.since) == (5, NOW)
    assert conn.notices_at(NOW + week) == []

    later = NOW + timedelta(days=8)
    conn.noticed(NoticeCode.MESSAGES_DROPPED, later, count=1, until=later + week)
    [again] = conn.notices_at(later)
    assert (again.count, again.since) == (1, later)
