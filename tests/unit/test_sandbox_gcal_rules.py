"""The Google Calendar sandbox's own rules: recurrence expansion, instance ids, the change log, tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.sandbox import gcal_time
from infra.local.sandbox.core import Reply
from infra.local.sandbox.gcal_store import Calendar, Cursor, SyncPoint, TokenCodec

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ZONE = "America/New_York"


def _series(start: dict[str, Any], end: dict[str, Any], *rules: str) -> dict[str, Any]:
    return {"id": "series01", "start": start, "end": end, "recurrence": list(rules), "etag": '"1"'}


def test_a_weekly_series_keeps_its_wall_clock_time_across_daylight_saving() -> None:
    master = _series(
        {"dateTime": "2030-03-04T10:00:00-05:00", "timeZone": ZONE},
        {"dateTime": "2030-03-04T10:30:00-05:00", "timeZone": ZONE},
        "RRULE:FREQ=WEEKLY;COUNT=2",
    )

    spans = list(gcal_time.instance_spans(master, ZONE, NOW))

    # 2030-03-10 is the DST switch in New York: 10:00 local moves from 15:00 to 14:00 UTC.
    assert [gcal_time.utc_text(start) for _, start, _ in spans] == [
        "2030-03-04T15:00:00Z",
        "2030-03-11T14:00:00Z",
    ]
    assert [gcal_time.instance(master, o, ZONE)["id"] for o, _, _ in spans] == [
        "series01_20300304T150000Z",
        "series01_20300311T140000Z",
    ]


def test_exdate_and_until_limit_a_series() -> None:
    master = _series(
        {"dateTime": "2030-01-01T09:00:00Z", "timeZone": "UTC"},
        {"dateTime": "2030-01-01T10:00:00Z", "timeZone": "UTC"},
        "RRULE:FREQ=DAILY;UNTIL=20300104T090000Z",
        "EXDATE;TZID=UTC:20300102T090000",
    )

    starts = [gcal_time.utc_text(s) for _, s, _ in gcal_time.instance_spans(master, ZONE, NOW)]

    assert starts == ["2030-01-01T09:00:00Z", "2030-01-03T09:00:00Z", "2030-01-04T09:00:00Z"]


def test_all_day_series_have_date_instances_in_the_calendar_zone() -> None:
    master = _series({"date": "2030-01-05"}, {"date": "2030-01-06"}, "RRULE:FREQ=DAILY;COUNT=2")

    [(original, start, end), _] = list(gcal_time.instance_spans(master, ZONE, NOW))
    item = gcal_time.instance(master, original, ZONE)

    assert item["id"] == "series01_20300105"
    assert item["start"] == item["originalStartTime"] == {"date": "2030-01-05"}
    assert item["end"] == {"date": "2030-01-06"}
    assert "recurrence" not in item and item["recurringEventId"] == "series01"
    assert (
        gcal_time.utc_text(start) == "2030-01-05T05:00:00Z"
        and gcal_time.utc_text(end) == "2030-01-06T05:00:00Z"
    )


def test_an_endless_series_expands_two_years_and_at_most_max_instances() -> None:
    daily = _series({"date": "2030-01-01"}, {"date": "2030-01-02"}, "RRULE:FREQ=DAILY")
    hourly = _series(
        {"dateTime": "2030-01-01T00:00:00Z", "timeZone": "UTC"},
        {"dateTime": "2030-01-01T00:30:00Z", "timeZone": "UTC"},
        "RRULE:FREQ=HOURLY",
    )

    days = list(gcal_time.original_starts(daily, ZONE, NOW))
    hours = sum(1 for _ in gcal_time.original_starts(hourly, ZONE, NOW))

    assert len(days) == 730 and days[-1] == datetime(2031, 12, 31)
    assert hours == gcal_time.MAX_INSTANCES


def test_instance_ids_name_only_real_occurrences() -> None:
    master = _series(
        {"dateTime": "2030-01-07T10:00:00-05:00", "timeZone": ZONE},
        {"dateTime": "2030-01-07T10:30:00-05:00", "timeZone": ZONE},
        "RRULE:FREQ=WEEKLY;COUNT=4",
    )

    assert gcal_time.parse_instance_id("series01_20300114T150000Z") == ("series01", "20300114T150000Z")
    assert gcal_time.parse_instance_id("plainid123") is None
    assert gcal_time.find_original(master, "20300114T150000Z", ZONE, NOW) is not None
    assert gcal_time.find_original(master, "20300115T150000Z", ZONE, NOW) is None
    assert gcal_time.find_original(master, "20300204T150000Z", ZONE, NOW) is None


@pytest.mark.parametrize(
    "event",
    [
        {"start": {"dateTime": "2030-01-01T10:00:00"}, "end": {"dateTime": "2030-01-01T11:00:00Z"}},
        {"start": {"dateTime": "2030-01-01T11:00:00Z"}, "end": {"dateTime": "2030-01-01T10:00:00Z"}},
        {"start": {"date": "2030-01-01"}, "end": {"dateTime": "2030-01-02T00:00:00Z"}},
        {
            "start": {"dateTime": "2030-01-01T10:00:00Z"},
            "end": {"dateTime": "2030-01-01T11:00:00Z"},
            "recurrence": ["RRULE:FREQ=DAILY"],
        },
    ],
    ids=["no-zone", "ends-before-start", "mixed-kinds", "series-without-time-zone"],
)
def test_times_google_refuses(event: dict[str, Any]) -> None:
    with pytest.raises(Reply) as refused:
        gcal_time.check_times(event, ZONE)

    assert refused.value.response.status_code == 400


def test_the_change_log_lists_each_event_once_at_its_last_change_even_after_compaction() -> None:
    cal = Calendar("a@example.com", "a@example.com", "a", "owner", primary=True, watchable=True)
    seq = 0
    for round_ in range(1500):
        for event_id in ("e1", "e2"):
            seq += 1
            cal.put({"id": event_id, "round": round_}, seq, 0.0)

    live = list(cal.entries_from(0, seq))

    assert live == [(seq - 1, "e1"), (seq, "e2")]
    assert len(cal.log) < 1500
    assert list(cal.entries_from(seq, seq)) == [(seq, "e2")]
    assert list(cal.entries_from(0, seq - 2)) == []


def test_tokens_are_opaque_tamper_evident_and_tied_to_their_store() -> None:
    codec, other = TokenCodec(), TokenCodec()
    point = SyncPoint("a|a", 1234, 1.5, 0)
    cursor = Cursor("a|a", 10, 2, 99, "q", 0)

    sync_token, page_token = codec.sync_token(point), codec.page_token(cursor)

    assert codec.read_sync_token(sync_token) == point
    assert codec.read_page_token(page_token) == cursor
    assert codec.read_page_token(sync_token) is None and codec.read_sync_token(page_token) is None
    assert other.read_sync_token(sync_token) is None
    assert codec.read_sync_token(sync_token[:-3] + "abc") is None
    assert codec.read_sync_token("not a token!") is None
