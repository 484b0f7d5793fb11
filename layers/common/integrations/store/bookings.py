"""Bookings' idempotency records and slot claims in the state table (pk only, TTL on `expires_at`).

| item       | pk                                                    | holds                              |
|------------|-------------------------------------------------------|------------------------------------|
| booking    | `BOOKING#<agency>#<sha256(idempotency key)>`          | state, fingerprint, answer, announced |
| slot claim | `SLOT#<agency>#<connection>#<calendar>#<start>#<end>` | holder (the booking's id), expiry  |
| owner lock | `BOOKLOCK#<owner's projection key>`                   | holder (the booking's id), expiry  |

A booking record is `pending` while its request runs and `done` with the answer after; a pending
record whose lease ran out (the function died) is taken over. A slot claim is a conditional put: of
two requests for one slot of one calendar, only one gets past it, and it stays claimed for a few
minutes, until the provider's free/busy shows the event written. An owner lock is a slot claim over
the whole person, held for the seconds of one check-and-write. Expiry is decided by the stored time,
never by whether TTL has run yet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.domain.errors import DependencyUnavailable
from integrations.events import AppointmentOwner
from integrations.store.appointments import owner_pk
from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RETENTION = timedelta(days=2)
# Longer than the internal function's timeout: a live request is never overtaken.
PENDING_LEASE = timedelta(seconds=60)
PENDING, DONE = "pending", "done"
_unavailable = unavailable_on_aws_error("The booking ledger")
_TAKEABLE = "attribute_not_exists(pk) OR expires_at < :now OR (#s = :pending AND pending_until < :now)"


@dataclass(frozen=True, slots=True)
class BookingRecord:
    """A booking as stored under its idempotency key: pending, or done with its answer."""

    state: str
    fingerprint: str
    answer: dict[str, Any] | None
    # `Booking Created` went out for it (sync.booking step 6).
    announced: bool = False


def booking_pk(agency_id: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"BOOKING#{agency_id}#{digest}"


def slot_pk(agency_id: str, connection_id: str, calendar_id: str, start: datetime, end: datetime) -> str:
    return f"SLOT#{agency_id}#{connection_id}#{calendar_id}#{start.isoformat()}#{end.isoformat()}"


def owner_lock_pk(owner: AppointmentOwner) -> str:
    return f"BOOKLOCK#{owner_pk(owner)}"


class DynamoBookingLedger:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    @_unavailable
    def begin(
        self, agency_id: str, idempotency_key: str, fingerprint: str, now: datetime
    ) -> BookingRecord | None:
        """Start a booking under its key: None when this call owns it now, else the stored record."""
        for _ in range(3):
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=to_item(
                        {
                            "pk": booking_pk(agency_id, idempotency_key),
                            "state": PENDING,
                            "fingerprint": fingerprint,
                            "pending_until": int((now + PENDING_LEASE).timestamp()),
                            "expires_at": int((now + RETENTION).timestamp()),
                        }
                    ),
                    # Taken over: nothing there, an expired record, or a pending one whose owner died.
                    ConditionExpression=_TAKEABLE,
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues=to_values({":now": int(now.timestamp()), ":pending": PENDING}),
                )
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                record = self._record(agency_id, idempotency_key)
                if record is not None:
                    return record
                continue  # abandoned between our put and our read: try to take it again
            return None
        raise DependencyUnavailable("The booking ledger is busy with this key; try again shortly.")

    @_unavailable
    def finish(self, agency_id: str, idempotency_key: str, answer: dict[str, Any], now: datetime) -> None:
        """Keep the answer: the same key answers the same booking from now on."""
        self._db.update_item(
            TableName=self._table,
            Key=to_values({"pk": booking_pk(agency_id, idempotency_key)}),
            UpdateExpression="SET #s = :done, answer = :answer, expires_at = :expires REMOVE pending_until",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=to_values(
                {
                    ":done": DONE,
                    ":answer": json.dumps(answer, separators=(",", ":")),
                    ":expires": int((now + RETENTION).timestamp()),
                }
            ),
        )

    @_unavailable
    def announced(self, agency_id: str, idempotency_key: str) -> None:
        """Mark a done booking announced: replays of its key publish nothing more."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=to_values({"pk": booking_pk(agency_id, idempotency_key)}),
                UpdateExpression="SET announced = :yes",
                ConditionExpression="#s = :done",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=to_values({":yes": True, ":done": DONE}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):  # gone (expired): nothing left to mark
                raise

    @_unavailable
    def abandon(self, agency_id: str, idempotency_key: str) -> None:
        """Forget a pending booking that failed, so a retry with its key runs again."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=to_values({"pk": booking_pk(agency_id, idempotency_key)}),
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=to_values({":pending": PENDING}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    @_unavailable
    def claim_slot(self, slot: str, holder: str, now: datetime, until: datetime) -> bool:
        """True when `holder` holds the slot now (newly, or again); False when another holds it."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item({"pk": slot, "holder": holder, "expires_at": int(until.timestamp())}),
                # The race is decided here: DynamoDB applies one of two concurrent puts' conditions first.
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR holder = :holder",
                ExpressionAttributeValues=to_values({":now": int(now.timestamp()), ":holder": holder}),
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    @_unavailable
    def release_slot(self, slot: str, holder: str) -> None:
        """Give a slot back (the booking did not happen); another holder's claim is left alone."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=to_values({"pk": slot}),
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues=to_values({":holder": holder}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def _record(self, agency_id: str, idempotency_key: str) -> BookingRecord | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=to_values({"pk": booking_pk(agency_id, idempotency_key)}),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if not item:
            return None
        values = from_item(item)
        stored = values.get("answer")
        return BookingRecord(
            state=str(values.get("state", PENDING)),
            fingerprint=str(values.get("fingerprint", "")),
            answer=json.loads(str(stored)) if stored else None,
            announced=bool(values.get("announced", False)),
        )
