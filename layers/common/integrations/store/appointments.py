"""The projection of the platform's appointments, per owner, in the sync table.

Item: `pk = OWNER#<agency>#<client or ->#<user or ->`, `sk = APPT#<appointment id>`, the appointment
as JSON, its `version`, `end_at` (epoch seconds, for "upcoming" replays) and, once deleted, a
tombstone (`deleted`, with an expiry) so that an upsert delivered after its delete changes nothing.
Every write is conditional on a newer version: redeliveries and late, out-of-order events are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from integrations.events import AppointmentOwner, AppointmentUpserted
from integrations.store.dynamo import from_item, put_if_newer, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Longer than any redelivery horizon of the bus (a day of retries) and of the sync queue.
TOMBSTONE_RETENTION = timedelta(days=14)
_unavailable = unavailable_on_aws_error("The appointment projection")


def owner_pk(owner: AppointmentOwner) -> str:
    return f"OWNER#{owner.agency_id}#{owner.client_id or '-'}#{owner.user_id or '-'}"


@dataclass(frozen=True, slots=True)
class StoredAppointment:
    """The newest known state: the appointment, or a tombstone (`appointment` None) after a delete."""

    appointment_id: str
    version: int
    appointment: AppointmentUpserted | None

    @property
    def deleted(self) -> bool:
        return self.appointment is None


class AppointmentProjection:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    @_unavailable
    def upsert(self, appointment: AppointmentUpserted) -> bool:
        """Store a newer version; False when this or a newer version (or its delete) is there already."""
        return self._put_if_newer(
            appointment.owner,
            appointment.appointment_id,
            appointment.version,
            {
                "appointment": appointment.model_dump_json(),
                "end_at": int(appointment.end.timestamp()),
                "start_at": int(appointment.start.timestamp()),
            },
        )

    @_unavailable
    def delete(self, owner: AppointmentOwner, appointment_id: str, version: int, now: datetime) -> bool:
        """Replace the appointment by a tombstone, unless a newer version is stored."""
        return self._put_if_newer(
            owner,
            appointment_id,
            version,
            {"deleted": True, "expires_at": int((now + TOMBSTONE_RETENTION).timestamp())},
        )

    @_unavailable
    def get(self, owner: AppointmentOwner, appointment_id: str) -> StoredAppointment | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key=to_values({"pk": owner_pk(owner), "sk": f"APPT#{appointment_id}"}),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return _stored(from_item(item)) if item else None

    def upcoming(
        self, owner: AppointmentOwner, now: datetime, after: str | None = None
    ) -> Iterator[AppointmentUpserted]:
        """The owner's live appointments that have not ended by `now`, in id order after `after`,
        streamed page by page (a replay resumes after the last id it finished)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk > :after",
            "FilterExpression": "attribute_not_exists(deleted) AND end_at > :now",
            "ExpressionAttributeValues": to_values(
                {":pk": owner_pk(owner), ":after": f"APPT#{after or ''}", ":now": int(now.timestamp())}
            ),
        }
        while True:
            answer = self._page(kwargs)
            for item in answer.get("Items", []):
                stored = _stored(from_item(item))
                if stored.appointment is not None:
                    yield stored.appointment
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def between(self, owner: AppointmentOwner, start: datetime, end: datetime) -> list[AppointmentUpserted]:
        """The owner's live appointments that meet [start, end) (availability's busy time)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :appt)",
            "FilterExpression": "attribute_not_exists(deleted) AND start_at < :end AND end_at > :start",
            "ExpressionAttributeValues": to_values(
                {
                    ":pk": owner_pk(owner),
                    ":appt": "APPT#",
                    # Whole seconds: widen outward so an appointment at the edge is never missed.
                    ":start": int(start.timestamp()) - 1,
                    ":end": int(end.timestamp()) + 1,
                }
            ),
        }
        found: list[AppointmentUpserted] = []
        while True:
            answer = self._page(kwargs)
            for item in answer.get("Items", []):
                stored = _stored(from_item(item))
                if stored.appointment is not None:
                    found.append(stored.appointment)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return found
            kwargs["ExclusiveStartKey"] = last

    @_unavailable
    def count_upcoming(self, owner: AppointmentOwner, now: datetime) -> int:
        """How many upcoming appointments a replay will push (a Query with Select=COUNT, paged)."""
        total = 0
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Select": "COUNT",
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :appt)",
            "FilterExpression": "attribute_not_exists(deleted) AND end_at > :now",
            "ExpressionAttributeValues": to_values(
                {":pk": owner_pk(owner), ":appt": "APPT#", ":now": int(now.timestamp())}
            ),
        }
        while True:
            answer = self._db.query(**kwargs)
            total += int(answer.get("Count", 0))
            last = answer.get("LastEvaluatedKey")
            if not last:
                return total
            kwargs["ExclusiveStartKey"] = last

    @_unavailable
    def _page(self, kwargs: dict[str, Any]) -> Any:
        return self._db.query(**kwargs)

    def _put_if_newer(
        self, owner: AppointmentOwner, appointment_id: str, version: int, body: dict[str, Any]
    ) -> bool:
        key = {"pk": owner_pk(owner), "sk": f"APPT#{appointment_id}"}
        return put_if_newer(self._db, self._table, {**key, "appointment_id": appointment_id, **body}, version)


def _stored(values: dict[str, Any]) -> StoredAppointment:
    raw = values.get("appointment")
    return StoredAppointment(
        appointment_id=str(values["appointment_id"]),
        version=int(values["version"]),
        appointment=None if values.get("deleted") else AppointmentUpserted.model_validate_json(str(raw)),
    )
