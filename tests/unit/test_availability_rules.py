"""Availability rules the oracle rarely reaches: DST edges, the window's bounds, wall-time series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integrations.sync.availability import Window, free_slots, window_of
from integrations.sync.calendar import CalendarEvent
from integrations.sync.expansion import busy_intervals

NEW_YORK = ZoneInfo("America/New_York")


def _local_starts(window: Window) -> list[str]:
    return [s.start.astimezone(NEW_YORK).strftime("%H:%M%z") for s in free_slots([], window)]


def test_the_hour_dst_repeats_offers_its_slots_twice() -> None:
    start = datetime(2026, 11, 1, 0, tzinfo=NEW_YORK).astimezone(UTC)
    window = window_of(start, start + timedelta(hours=4), "America/New_York", 30)

    assert _local_starts(window) == [
        "00:00-0400", "00:30-0400", "01:00-0400", "01:30-0400",
        "01:00-0500", "01:30-0500", "02:00-0500", "02:30-0500",
    ]  # fmt: skip


def test_the_hour_dst_skips_offers_no_slot() -> None:
    start = datetime(2026, 3, 8, 0, tzinfo=NEW_YORK).astimezone(UTC)
    window = window_of(start, start + timedelta(hours=3), "America/New_York", 30)

    assert _local_starts(window) == [
        "00:00-0500",
        "00:30-0500",
        "01:00-0500",
        "01:30-0500",
        "03:00-0400",
        "03:30-0400",
    ]


def test_a_weekly_series_keeps_its_wall_time_across_a_dst_change() -> None:
    first = datetime(2026, 10, 26, 9, tzinfo=NEW_YORK)
    master = CalendarEvent(
        calendar_id="c",
        external_id="weekly",
        start=first.astimezone(UTC),
        end=(first + timedelta(minutes=30)).astimezone(UTC),
        time_zone="America/New_York",
        recurrence=("RRULE:FREQ=WEEKLY;UNTIL=20261110T000000Z",),
    )
    spans = busy_intervals([master], first.astimezone(UTC), first.astimezone(UTC) + timedelta(days=21), UTC)

    assert [s.start.astimezone(NEW_YORK).strftime("%m-%d %H:%M") for s in spans] == [
        "10-26 09:00",
        "11-02 09:00",
        "11-09 09:00",
    ]


@pytest.mark.parametrize(
    ("start", "end", "slot", "says"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC), 30, "at most 62 days"),
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), 30, "end after it starts"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), 2, "slot_minutes"),
        (datetime(2026, 1, 1), datetime(2026, 1, 2), 30, "UTC offset"),
    ],
    ids=["longer than 62 days", "ends before it starts", "slot too short", "no offset"],
)
def test_a_bad_window_is_refused(start: datetime, end: datetime, slot: int, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Window(start, end, UTC, slot)
