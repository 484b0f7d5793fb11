"""The calendar mirror and the pushed-event mapping in the sync table (design §8, Mirror).

Layout (one partition per synced calendar, so one calendar's reads are Queries, never Scans):

| item                | pk                            | sk                 | holds                     |
|---------------------|-------------------------------|--------------------|---------------------------|
| mirrored event      | `CAL#<connection>#<calendar>` | `EV#<external id>` | event JSON, hash, pass    |
| pushed event        | `CAL#<connection>#<calendar>` | `PUSH#<external>`  | the PushedEvent JSON      |
| appointment's push  | `APPT#<agency>#<appointment>` | `TO#<connection>`  | the PushedEvent JSON      |

`start` is the local secondary index `ByStart`'s sort key: `T#<UTC ISO instant>#...` for timed events
(their start) and all-day ones (midnight UTC of the day before their date, the earliest instant the
local date can begin anywhere, marked `#D#`), and `R#` for what every window reads: series masters
(expanded at read time), items without a start (cancelled instances of a series) and events longer
than LONG_EVENT. So availability over a window costs two Queries per calendar (R#, then one T# range
that starts LONG_EVENT and a day early) instead of reading the calendar whole.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from integrations.domain.errors import DependencyUnavailable
from integrations.store.dynamo import from_item, to_item, to_values
from integrations.store.errors import AWS_ERRORS
from integrations.sync.calendar import CalendarEvent, MirrorEntry, PushedEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BY_START = "ByStart"
# Events longer than this are read by every window; shorter ones by a range starting this early.
LONG_EVENT = timedelta(days=2)
_LONG_DAYS = timedelta(days=2)
# BatchGetItem takes 100 keys, BatchWriteItem 25 requests.
_GET_BATCH = 100
_WRITE_BATCH = 25
_UNPROCESSED_ROUNDS = 8
# Batches of one call in flight at once: a page of 2,500 events is 100 BatchWriteItems, and sent one
# after the other the worker spends most of its time waiting on their round trips (tests/bench).
_IN_FLIGHT = 4
_Chunk = TypeVar("_Chunk")
_Result = TypeVar("_Result")


def calendar_pk(connection_id: str, calendar_id: str) -> str:
    return f"CAL#{connection_id}#{calendar_id}"


def appointment_pk(agency_id: str, appointment_id: str) -> str:
    return f"APPT#{agency_id}#{appointment_id}"


def start_key(event: CalendarEvent) -> str:
    """The ByStart sort key: what every window reads first, then timed and all-day events by instant."""
    if event.recurrence:
        return f"R#{event.external_id}"
    if event.start_date is not None:
        if event.end_date is not None and event.end_date - event.start_date > _LONG_DAYS:
            return f"R#L#{event.external_id}"
        # A local date begins up to a day before its UTC midnight: keyed there, one range finds it.
        return f"T#{_instant_key(_midnight(event.start_date - timedelta(days=1)))}#D#{event.external_id}"
    if event.start is None:
        return f"R#S#{event.series_id or ''}#{event.external_id}"
    if event.end is not None and event.end - event.start > LONG_EVENT:
        return f"R#L#{event.external_id}"
    return f"T#{_instant_key(event.start)}#{event.external_id}"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _instant_key(moment: datetime) -> str:
    # ISO form in UTC: string order is time order ("+" sorts before a fraction's ".").
    return moment.astimezone(UTC).isoformat()


class DynamoMirror:
    """Mirrored events and pushed-event mappings; batched reads and writes, unprocessed items retried."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name
        self._pool: ThreadPoolExecutor | None = None

    # --- the mirror ---

    def get_many(
        self, connection_id: str, calendar_id: str, external_ids: Sequence[str]
    ) -> dict[str, MirrorEntry]:
        """Stored entries among `external_ids` (strongly consistent: a retry must see its own writes)."""
        pk = calendar_pk(connection_id, calendar_id)
        found: dict[str, MirrorEntry] = {}
        for item in self._batch_get([{"pk": pk, "sk": f"EV#{i}"} for i in dict.fromkeys(external_ids)]):
            entry = _entry(item)
            found[entry.event.external_id] = entry
        return found

    def put_many(self, connection_id: str, entries: Sequence[MirrorEntry]) -> None:
        """Write entries in batches of 25; of two entries for one event, the later one is kept."""
        latest = {(e.event.calendar_id, e.event.external_id): e for e in entries}
        self._batch_write([{"PutRequest": {"Item": _event_item(connection_id, e)}} for e in latest.values()])

    def delete_many(self, connection_id: str, calendar_id: str, external_ids: Sequence[str]) -> None:
        pk = calendar_pk(connection_id, calendar_id)
        self._batch_write(
            [
                {"DeleteRequest": {"Key": to_values({"pk": pk, "sk": f"EV#{i}"})}}
                for i in dict.fromkeys(external_ids)
            ]
        )

    def not_seen_in(self, connection_id: str, calendar_id: str, pass_id: str) -> Iterator[MirrorEntry]:
        """Entries the full pass `pass_id` did not stamp, page by page (never the calendar at once)."""
        for item in self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
            FilterExpression="attribute_not_exists(#pass) OR #pass <> :pass",
            ExpressionAttributeNames={"#pass": "pass"},
            ExpressionAttributeValues=to_values(
                {":pk": calendar_pk(connection_id, calendar_id), ":ev": "EV#", ":pass": pass_id}
            ),
        ):
            yield _entry(item)

    def events(self, connection_id: str, calendar_id: str) -> Iterator[CalendarEvent]:
        """Every mirrored event of a calendar, streamed."""
        for item in self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
            ExpressionAttributeValues=to_values(
                {":pk": calendar_pk(connection_id, calendar_id), ":ev": "EV#"}
            ),
        ):
            yield _entry(item).event

    def events_between(
        self, connection_id: str, calendar_id: str, start: datetime, end: datetime
    ) -> list[CalendarEvent]:
        """The events that may meet [start, end): series masters and long events, plus timed and
        all-day events starting up to LONG_EVENT before the window (two Queries on ByStart)."""
        pk = calendar_pk(connection_id, calendar_id)
        # Short events start at most LONG_EVENT before the window; all-day ones are keyed a day before
        # their date, which itself may begin a day before the window's UTC start.
        early = start - LONG_EVENT - timedelta(days=2)
        floor = _midnight(early.astimezone(UTC).date())
        ranges = [
            ("begins_with(#start, :low)", {":low": "R#"}),
            (
                "#start BETWEEN :low AND :high",
                {":low": f"T#{_instant_key(floor)}", ":high": f"T#{_instant_key(end)}"},
            ),
        ]
        found: list[CalendarEvent] = []
        for condition, values in ranges:
            for item in self._query(
                IndexName=BY_START,
                KeyConditionExpression=f"pk = :pk AND {condition}",
                ExpressionAttributeNames={"#start": "start"},
                ExpressionAttributeValues=to_values({":pk": pk, **values}),
            ):
                found.append(_entry(item).event)
        return found

    def forget_calendar(self, connection_id: str, calendar_id: str) -> int:
        """Delete a calendar's mirror (it is no longer synced); returns how many entries went."""
        ids = [e.external_id for e in self.events(connection_id, calendar_id)]
        self.delete_many(connection_id, calendar_id, ids)
        return len(ids)

    # --- pushed events ---

    def by_external_ids(
        self, connection_id: str, calendar_id: str, external_ids: Sequence[str]
    ) -> dict[str, PushedEvent]:
        pk = calendar_pk(connection_id, calendar_id)
        found: dict[str, PushedEvent] = {}
        for item in self._batch_get([{"pk": pk, "sk": f"PUSH#{i}"} for i in dict.fromkeys(external_ids)]):
            pushed = PushedEvent.model_validate_json(str(from_item(item)["pushed"]))
            found[pushed.external_id] = pushed
        return found

    def pushed_for(self, agency_id: str, appointment_id: str) -> list[PushedEvent]:
        """Where an appointment was pushed (one per connection)."""
        return [
            PushedEvent.model_validate_json(str(from_item(item)["pushed"]))
            for item in self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :to)",
                ExpressionAttributeValues=to_values(
                    {":pk": appointment_pk(agency_id, appointment_id), ":to": "TO#"}
                ),
            )
        ]

    def record_push(self, agency_id: str, pushed: PushedEvent) -> None:
        """Remember a push under both keys: by appointment (updates, deletes) and by event (echoes)."""
        body = pushed.model_dump_json()
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": to_item(
                            {
                                "pk": appointment_pk(agency_id, pushed.appointment_id),
                                "sk": f"TO#{pushed.connection_id}",
                                "pushed": body,
                            }
                        )
                    }
                },
                {
                    "PutRequest": {
                        "Item": to_item(
                            {
                                "pk": calendar_pk(pushed.connection_id, pushed.calendar_id),
                                "sk": f"PUSH#{pushed.external_id}",
                                "pushed": body,
                            }
                        )
                    }
                },
            ]
        )

    def forget_push(self, agency_id: str, pushed: PushedEvent) -> None:
        self._batch_write(
            [
                {
                    "DeleteRequest": {
                        "Key": to_values(
                            {
                                "pk": appointment_pk(agency_id, pushed.appointment_id),
                                "sk": f"TO#{pushed.connection_id}",
                            }
                        )
                    }
                },
                {
                    "DeleteRequest": {
                        "Key": to_values(
                            {
                                "pk": calendar_pk(pushed.connection_id, pushed.calendar_id),
                                "sk": f"PUSH#{pushed.external_id}",
                            }
                        )
                    }
                },
            ]
        )

    def forget_event(self, pushed: PushedEvent) -> None:
        """Forget only the event side of a mapping (its appointment now lives in another calendar)."""
        self._db.delete_item(
            TableName=self._table,
            Key=to_values(
                {
                    "pk": calendar_pk(pushed.connection_id, pushed.calendar_id),
                    "sk": f"PUSH#{pushed.external_id}",
                }
            ),
        )

    # --- batching ---

    def _batch_get(self, keys: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
        chunks = [keys[start : start + _GET_BATCH] for start in range(0, len(keys), _GET_BATCH)]
        for found in self._each(self._get_chunk, chunks):
            yield from found

    def _get_chunk(self, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            self._table: {"Keys": [to_values(k) for k in keys], "ConsistentRead": True}
        }
        found: list[dict[str, Any]] = []
        for attempt in range(_UNPROCESSED_ROUNDS):
            answer = _guarded(partial(self._db.batch_get_item, RequestItems=request))
            found += answer.get("Responses", {}).get(self._table, [])
            request = dict(answer.get("UnprocessedKeys") or {})
            if not request:
                return found
            _pause(attempt)
        raise DependencyUnavailable("The calendar mirror is throttled; try again shortly.")

    def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        chunks = [requests[start : start + _WRITE_BATCH] for start in range(0, len(requests), _WRITE_BATCH)]
        for _ in self._each(self._write_chunk, chunks):
            pass

    def _write_chunk(self, requests: Sequence[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table: list(requests)}
        for attempt in range(_UNPROCESSED_ROUNDS):
            answer = _guarded(partial(self._db.batch_write_item, RequestItems=pending))
            pending = dict(answer.get("UnprocessedItems") or {})
            if not pending:
                return
            _pause(attempt)
        raise DependencyUnavailable("The calendar mirror is throttled; try again shortly.")

    def _each(self, call: Callable[[_Chunk], _Result], chunks: Sequence[_Chunk]) -> Iterator[_Result]:
        """`call` on every chunk, up to _IN_FLIGHT at once (boto3 clients are thread-safe); all of
        them have finished, or the first failure is raised, before this returns."""
        if len(chunks) <= 1:
            yield from map(call, chunks)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="mirror-batch")
        futures = [self._pool.submit(call, chunk) for chunk in chunks]
        try:
            results = [f.result() for f in futures]
        finally:
            for future in futures:
                future.cancel()
        yield from results

    def _query(self, **query: Any) -> Iterable[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self._table, **query}
        while True:
            answer = _guarded(lambda: self._db.query(**kwargs))
            yield from answer.get("Items", [])
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last


def _guarded(call: Callable[[], Any]) -> Any:
    """One DynamoDB call; an AWS failure is the domain's DependencyUnavailable (retry later)."""
    try:
        return call()
    except AWS_ERRORS as exc:
        raise DependencyUnavailable("The calendar mirror is unavailable; try again shortly.") from exc


def _pause(attempt: int) -> None:
    # Unprocessed items mean throttling: back off with jitter before the next round (AWS guidance).
    time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not secrets


def _event_item(connection_id: str, entry: MirrorEntry) -> dict[str, Any]:
    """A mirror item in DynamoDB's wire form, written out: every attribute is a string, and the
    generic serializer's type dispatch costs more per event than the rest of the put (tests/bench)."""
    event = entry.event
    item = {
        "pk": {"S": calendar_pk(connection_id, event.calendar_id)},
        "sk": {"S": f"EV#{event.external_id}"},
        "start": {"S": start_key(event)},
        "event": {"S": event.model_dump_json(exclude_defaults=True)},
        "hash": {"S": entry.change_hash},
    }
    if entry.seen_in_pass:
        item["pass"] = {"S": entry.seen_in_pass}
    return item


def _entry(item: dict[str, Any]) -> MirrorEntry:
    values = from_item(item)
    return MirrorEntry(
        event=CalendarEvent.model_validate_json(str(values["event"])),
        change_hash=str(values["hash"]),
        seen_in_pass=str(values.get("pass") or ""),
    )
