"""Pulling a calendar into the mirror: pages, checkpoints, expired cursors, crashes and echoes."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.domain.errors import ProviderUnavailable
from integrations.sync.calendar import CalendarEvent, MirrorChange, PushedEvent
from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller, EventChange
from tests.support.calendar_fakes import FakeCalendar, FakeMirror, FakePushed

CONN = "conn-1"
START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _event(n: int, **changes: object) -> CalendarEvent:
    base: dict[str, object] = {
        "calendar_id": "primary",
        "external_id": f"evt{n}",
        "start": START + timedelta(hours=n),
        "end": START + timedelta(hours=n, minutes=30),
        "title": f"Event {n}",
    }
    return CalendarEvent.model_validate({**base, **changes})


class Harness:
    def __init__(self, calendar: FakeCalendar, pushed: FakePushed | None = None) -> None:
        self.calendar = calendar
        self.mirror = FakeMirror()
        self.published: list[EventChange] = []
        self.cursor = CalendarCursor()
        passes = itertools.count()
        self.puller = CalendarPuller(
            mirror=self.mirror,
            pushed=pushed or FakePushed(),
            publish=self._publish,
            checkpoint=self._checkpoint,
            new_pass_id=lambda: f"pass{next(passes)}",
        )

    def _publish(self, changes: Sequence[EventChange]) -> None:
        self.published.extend(changes)

    def _checkpoint(self, calendar_id: str, cursor: CalendarCursor) -> None:
        self.cursor = cursor

    def run(self, has_time: bool = True) -> None:
        self.puller.pull(CONN, "primary", self.calendar, self.cursor, lambda: has_time)

    def mirrored(self) -> dict[str, CalendarEvent]:
        return self.mirror.events(CONN, "primary")

    def assert_equal_to_truth(self) -> None:
        truth = {k: v.change_hash() for k, v in self.calendar.live().items()}
        assert {k: v.change_hash() for k, v in self.mirrored().items()} == truth


def test_a_full_sync_pages_through_everything_and_stores_the_sync_token() -> None:
    calendar = FakeCalendar(page_size=3)
    for n in range(10):
        calendar.upsert(_event(n))
    h = Harness(calendar)
    h.run()
    h.assert_equal_to_truth()
    assert h.cursor == CalendarCursor(token=str(calendar.sequence))
    assert [c.change for c in h.published] == [MirrorChange.ADDED] * 10


def test_incremental_sync_applies_changes_and_deletions_only() -> None:
    calendar = FakeCalendar(page_size=2)
    for n in range(5):
        calendar.upsert(_event(n))
    h = Harness(calendar)
    h.run()
    h.published.clear()
    calendar.upsert(_event(1, title="Moved"))
    calendar.remove("evt2")
    calendar.upsert(_event(7))
    h.run()
    h.assert_equal_to_truth()
    assert sorted((c.event.external_id, c.change) for c in h.published) == [
        ("evt1", MirrorChange.UPDATED),
        ("evt2", MirrorChange.DELETED),
        ("evt7", MirrorChange.ADDED),
    ]


def test_an_expired_cursor_resyncs_fully_and_deletes_what_vanished_without_duplicates() -> None:
    calendar = FakeCalendar(page_size=4)
    for n in range(8):
        calendar.upsert(_event(n))
    h = Harness(calendar)
    h.run()
    h.published.clear()
    calendar.remove("evt3")
    calendar.upsert(_event(5, title="Renamed"))
    calendar.upsert(_event(9))
    calendar.expire_tokens()
    # A full listing has no tombstones: evt3 is simply absent.
    h.run()
    h.assert_equal_to_truth()
    assert sorted((c.event.external_id, c.change) for c in h.published) == [
        ("evt3", MirrorChange.DELETED),
        ("evt5", MirrorChange.UPDATED),
        ("evt9", MirrorChange.ADDED),
    ]
    assert h.cursor.token == str(calendar.sequence)
    assert h.cursor.pass_id is None


def test_a_run_out_of_time_resumes_from_its_checkpoint() -> None:
    calendar = FakeCalendar(page_size=2)
    for n in range(7):
        calendar.upsert(_event(n))
    h = Harness(calendar)
    h.run(has_time=False)
    assert h.cursor.page == "7:evt1"
    assert len(h.mirrored()) == 2
    for _ in range(5):
        h.run(has_time=False)
        if h.cursor.page is None:
            break
    h.assert_equal_to_truth()
    assert len(h.published) == 7


def test_a_crash_mid_pass_resumes_and_ends_equal_to_the_provider() -> None:
    calendar = FakeCalendar(page_size=2)
    for n in range(9):
        calendar.upsert(_event(n))
    calendar.fail_on_call = {3: ProviderUnavailable("HTTP 503")}
    h = Harness(calendar)
    with pytest.raises(ProviderUnavailable):
        h.run()
    # Changes made meanwhile are picked up by the resumed pass or the next incremental one.
    calendar.upsert(_event(0, title="Edited during the outage"))
    h.run()
    h.run()
    h.assert_equal_to_truth()
    added = [c.event.external_id for c in h.published if c.change is MirrorChange.ADDED]
    assert sorted(set(added)) == sorted(f"evt{n}" for n in range(9))


def test_our_own_writes_coming_back_are_not_published() -> None:
    calendar = FakeCalendar()
    ours = _event(1, appointment_id="apt-1")
    calendar.upsert(ours)
    calendar.upsert(_event(2))
    written = calendar.events["evt1"]
    pushed = FakePushed(
        {
            "evt1": PushedEvent(
                appointment_id="apt-1",
                connection_id=CONN,
                calendar_id="primary",
                external_id="evt1",
                etag=written.etag,
                written_hash=written.change_hash(),
            )
        }
    )
    h = Harness(calendar, pushed)
    h.run()
    h.assert_equal_to_truth()
    assert [c.event.external_id for c in h.published] == ["evt2"]
    # The person moves our event in the provider's UI: that is an external change, with our id.
    calendar.upsert(
        _event(
            1, appointment_id="apt-1", start=START + timedelta(days=1), end=START + timedelta(days=1, hours=1)
        )
    )
    h.run()
    [moved] = h.published[1:]
    assert (moved.event.external_id, moved.change, moved.event.appointment_id) == (
        "evt1",
        MirrorChange.UPDATED,
        "apt-1",
    )


def test_the_same_change_always_has_the_same_id() -> None:
    calendar = FakeCalendar()
    calendar.upsert(_event(1))
    first, second = Harness(calendar), Harness(calendar)
    first.run()
    second.run()
    assert [c.change_id for c in first.published] == [c.change_id for c in second.published]


def test_a_touch_without_a_real_change_publishes_nothing() -> None:
    calendar = FakeCalendar()
    calendar.upsert(_event(1))
    h = Harness(calendar)
    h.run()
    calendar.upsert(_event(1))  # new etag, same content
    h.run()
    assert len(h.published) == 1


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["add", "edit", "remove", "expire", "fail", "sync", "slow_sync"]),
            st.integers(min_value=0, max_value=15),
        ),
        min_size=1,
        max_size=40,
    ),
    page_size=st.integers(min_value=1, max_value=5),
)
def test_any_mix_of_changes_faults_and_cut_runs_ends_equal_to_the_provider(
    steps: list[tuple[str, int]], page_size: int
) -> None:
    calendar = FakeCalendar(page_size=page_size)
    h = Harness(calendar)
    for action, n in steps:
        key = f"evt{n}"
        if action == "add" or (action == "edit" and key not in calendar.live()):
            calendar.upsert(_event(n))
        elif action == "edit":
            calendar.upsert(_event(n, title=f"Edited {calendar.sequence}"))
        elif action == "remove" and key in calendar.live():
            calendar.remove(key)
        elif action == "expire":
            calendar.expire_tokens()
        elif action == "fail":
            calendar.fail_on_call[calendar.pulls + 1] = ProviderUnavailable("HTTP 503")
        else:
            with contextlib.suppress(ProviderUnavailable):
                h.run(has_time=action == "sync")
    calendar.fail_on_call.clear()
    for _ in range(100):
        h.run(has_time=False)
        if h.cursor.page is None and h.cursor.pass_id is None:
            break
    h.run()
    h.assert_equal_to_truth()
    # Nothing is reported that is not in the provider, and every live event was reported as added.
    added = {c.event.external_id for c in h.published if c.change is not MirrorChange.DELETED}
    assert set(calendar.live()) <= added


def test_each_pulled_event_is_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calendar = FakeCalendar(page_size=10)
    for n in range(4):
        calendar.upsert(_event(n))
    h = Harness(calendar)
    h.run()
    calendar.upsert(_event(1, title="Moved"))
    calendar.upsert(_event(2, title="Renamed"))
    calendar.remove("evt3")
    hashed: list[str] = []
    original = CalendarEvent.change_hash

    def counted(event: CalendarEvent) -> str:
        hashed.append(event.external_id)
        return original(event)

    monkeypatch.setattr(CalendarEvent, "change_hash", counted)

    h.run()

    assert sorted(hashed) == ["evt1", "evt2", "evt3"]
    assert [c.change for c in h.published][-3:] == [MirrorChange.UPDATED] * 2 + [MirrorChange.DELETED]
