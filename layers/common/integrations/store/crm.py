"""CRM sync state in the sync table: the platform's contacts, their CRM copies, the contact mirror and
the calls logged (design §8, like the calendar's pushed-event mapping).

| item                 | pk                      | sk                         | holds                       |
|----------------------|-------------------------|----------------------------|-----------------------------|
| platform contact     | `PCT#<agency>#<client>` | `C#<contact>`              | fields, version, deleted    |
| contact's CRM copy   | `PCT#<agency>#<client>` | `L#<contact>#<connection>` | external id                 |
| mirrored CRM contact | `CRM#<connection>`      | `CT#<external id>`         | fields, hash, platform id   |
| a contact to push    | `CRM#<connection>`      | `PQ#<contact>`             | version (waiting for a push)|
| a call to log        | `CALL#<agency>#<call>`  | `EVENT`                    | the Call Completed JSON     |
| the call in one CRM  | `CALL#<agency>#<call>`  | `TO#<connection>`          | note/engagement id, deal id |

Every platform event is written only when newer (versions only move forward), and every CRM write is
recorded before the job ends, so a redelivered event finds its copy and writes nothing twice.

Every write that learns or loses a contact's email also keeps the client's address directory
(store/mail_contacts.py): platform contacts set the address's `contact_id`, mirrored CRM contacts the
connection's id for it. Mirror writes change the directory first, so a crash in between is repaired
by the next read of the contact (its hash still differs from the mirror's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.events import CallCompleted, ContactFields, ContactUpserted
from integrations.store.crm_keys import call_pk, client_pk, mirror_pk
from integrations.store.dynamo import from_item, replace_if_newer, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error
from integrations.store.mail_contacts import AddressDirectory
from integrations.sync.crm import LoggedCall, MirroredContact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Longer than any redelivery horizon of the bus and the sync queue.
TOMBSTONE_RETENTION = timedelta(days=14)
_GET_BATCH = 100
_WRITE_BATCH = 25
_unavailable = unavailable_on_aws_error("The CRM sync store")


@dataclass(frozen=True, slots=True)
class StoredContact:
    """The platform's newest state of a contact; `fields` None after its delete (a tombstone)."""

    contact_id: str
    version: int
    fields: ContactFields | None


class DynamoCrmStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name
        self._directory = AddressDirectory(client, table_name)

    # --- the platform's contacts ---

    @_unavailable
    def upsert_contact(self, event: ContactUpserted) -> bool:
        """Store a newer version; False when this or a newer version (or its delete) is there."""
        agency_id, client_id, contact_id = event.agency_id, event.client_id, event.contact_id
        stored, old = self._put_if_newer(
            client_pk(agency_id, client_id),
            f"C#{contact_id}",
            event.version,
            {"contact_id": contact_id, "fields": event.fields.model_dump_json()},
        )
        if not stored:
            # A redelivery: the first delivery may have died before the directory learned the address.
            self._reassert_address(agency_id, client_id, contact_id)
            return False
        before = _email_of(old)
        if before and before != _normal(event.fields.email):
            self._directory.unset_contact(agency_id, client_id, before, contact_id)
        if event.fields.email:
            self._directory.set_contact(agency_id, client_id, event.fields.email, contact_id)
        return True

    @_unavailable
    def delete_contact(
        self, agency_id: str, client_id: str, contact_id: str, version: int, now: datetime
    ) -> bool:
        """Replace the contact by a tombstone, unless a newer version is stored."""
        expires = int((now + TOMBSTONE_RETENTION).timestamp())
        stored, old = self._put_if_newer(
            client_pk(agency_id, client_id),
            f"C#{contact_id}",
            version,
            {"contact_id": contact_id, "deleted": True, "expires_at": expires},
        )
        before = _email_of(old)
        if stored and before:
            self._directory.unset_contact(agency_id, client_id, before, contact_id)
        return stored

    def _reassert_address(self, agency_id: str, client_id: str, contact_id: str) -> None:
        current = self.contact(agency_id, client_id, contact_id)
        if current is not None and current.fields is not None and current.fields.email:
            self._directory.set_contact(agency_id, client_id, current.fields.email, contact_id)

    @_unavailable
    def contact(self, agency_id: str, client_id: str, contact_id: str) -> StoredContact | None:
        values = self._get(client_pk(agency_id, client_id), f"C#{contact_id}")
        if values is None:
            return None
        fields = None if values.get("deleted") else ContactFields.model_validate_json(str(values["fields"]))
        return StoredContact(contact_id, int(values["version"]), fields)

    # --- contacts waiting to be pushed to one CRM (so one job can take many in a batch) ---

    @_unavailable
    def mark_pending(self, connection_id: str, contact_id: str, version: int) -> None:
        """The contact waits for a push to this CRM (a newer mark is never lowered)."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": mirror_pk(connection_id),
                        "sk": f"PQ#{contact_id}",
                        "contact_id": contact_id,
                        "version": version,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR version < :v",
                ExpressionAttributeValues=to_values({":v": version}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    @_unavailable
    def pending(self, connection_id: str, limit: int) -> list[str]:
        """Up to `limit` contacts waiting for a push to this CRM."""
        answer = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :q)",
            ExpressionAttributeValues=to_values({":pk": mirror_pk(connection_id), ":q": "PQ#"}),
            ConsistentRead=True,
            Limit=limit,
        )
        return [str(from_item(i)["contact_id"]) for i in answer.get("Items", [])]

    @_unavailable
    def clear_pending(self, connection_id: str, contact_id: str, version: int) -> None:
        """The push of `version` is done; a mark for a newer version stays (its push is still due)."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=to_values({"pk": mirror_pk(connection_id), "sk": f"PQ#{contact_id}"}),
                ConditionExpression="attribute_not_exists(pk) OR version <= :v",
                ExpressionAttributeValues=to_values({":v": version}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # --- a contact's copies in the client's CRMs ---

    @_unavailable
    def external_id(self, agency_id: str, client_id: str, contact_id: str, connection_id: str) -> str | None:
        values = self._get(client_pk(agency_id, client_id), f"L#{contact_id}#{connection_id}")
        return str(values["external_id"]) if values else None

    @_unavailable
    def linked_connections(self, agency_id: str, client_id: str, contact_id: str) -> list[str]:
        """Every connection holding a copy of the contact."""
        answer = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :l)",
            ExpressionAttributeValues=to_values(
                {":pk": client_pk(agency_id, client_id), ":l": f"L#{contact_id}#"}
            ),
            ConsistentRead=True,
        )
        return [str(from_item(i)["connection_id"]) for i in answer.get("Items", [])]

    @_unavailable
    def link(
        self, agency_id: str, client_id: str, contact_id: str, connection_id: str, external_id: str
    ) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "pk": client_pk(agency_id, client_id),
                    "sk": f"L#{contact_id}#{connection_id}",
                    "connection_id": connection_id,
                    "external_id": external_id,
                }
            ),
        )

    @_unavailable
    def unlink(self, agency_id: str, client_id: str, contact_id: str, connection_id: str) -> None:
        self._db.delete_item(
            TableName=self._table,
            Key=to_values({"pk": client_pk(agency_id, client_id), "sk": f"L#{contact_id}#{connection_id}"}),
        )

    # --- the mirror of each CRM's contacts ---

    @_unavailable
    def mirrored(self, connection_id: str, external_ids: Sequence[str]) -> dict[str, MirroredContact]:
        """Stored entries among `external_ids` (strongly consistent: a retry sees its own writes)."""
        keys = [{"pk": mirror_pk(connection_id), "sk": f"CT#{i}"} for i in dict.fromkeys(external_ids)]
        found: dict[str, MirroredContact] = {}
        for start in range(0, len(keys), _GET_BATCH):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [to_values(k) for k in keys[start : start + _GET_BATCH]],
                    "ConsistentRead": True,
                }
            }
            while request:
                answer = self._db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    entry = _mirrored(from_item(item))
                    found[entry.external_id] = entry
                request = dict(answer.get("UnprocessedKeys") or {})
        return found

    @_unavailable
    def put_mirrored(
        self,
        connection_id: str,
        entries: Sequence[MirroredContact],
        *,
        agency_id: str,
        client_id: str | None,
    ) -> None:
        """Store what the CRM holds of these contacts; the client's address directory follows their
        emails (a changed email moves the connection's id from the old address to the new)."""
        latest = {e.external_id: e for e in entries}
        if not latest:
            return
        if client_id is not None:
            before = self.mirrored(connection_id, list(latest))
            for entry in latest.values():
                old = before.get(entry.external_id)
                old_email = _normal(old.fields.email) if old is not None else ""
                if old_email and old_email != _normal(entry.fields.email):
                    self._directory.unset_external(
                        agency_id, client_id, old_email, connection_id, entry.external_id
                    )
                if entry.fields.email:
                    self._directory.set_external(
                        agency_id, client_id, entry.fields.email, connection_id, entry.external_id
                    )
        self._write(
            [
                {
                    "PutRequest": {
                        "Item": to_item(
                            {
                                "pk": mirror_pk(connection_id),
                                "sk": f"CT#{e.external_id}",
                                "external_id": e.external_id,
                                "hash": e.change_hash,
                                "fields": e.fields.model_dump_json(),
                                "contact_id": e.contact_id,
                            }
                        )
                    }
                }
                for e in latest.values()
            ]
        )

    @_unavailable
    def delete_mirrored(
        self, connection_id: str, external_ids: Sequence[str], *, agency_id: str, client_id: str | None
    ) -> None:
        """Forget these CRM contacts, and their addresses' ids in this connection."""
        if not external_ids:
            return
        if client_id is not None:
            for entry in self.mirrored(connection_id, external_ids).values():
                if entry.fields.email:
                    self._directory.unset_external(
                        agency_id, client_id, entry.fields.email, connection_id, entry.external_id
                    )
        self._write(
            [
                {"DeleteRequest": {"Key": to_values({"pk": mirror_pk(connection_id), "sk": f"CT#{i}"})}}
                for i in dict.fromkeys(external_ids)
            ]
        )

    # --- calls ---

    @_unavailable
    def save_call(self, call: CallCompleted) -> None:
        """Keep the call for its log jobs (the same call again changes nothing)."""
        self._db.put_item(
            TableName=self._table,
            Item=to_item(
                {"pk": call_pk(call.agency_id, call.call_id), "sk": "EVENT", "call": call.model_dump_json()}
            ),
        )

    @_unavailable
    def call(self, agency_id: str, call_id: str) -> CallCompleted | None:
        values = self._get(call_pk(agency_id, call_id), "EVENT")
        return CallCompleted.model_validate_json(str(values["call"])) if values else None

    @_unavailable
    def logged_call(self, agency_id: str, call_id: str, connection_id: str) -> tuple[LoggedCall, bool] | None:
        """What logging the call in one CRM has done so far, and whether it is complete."""
        values = self._get(call_pk(agency_id, call_id), f"TO#{connection_id}")
        if values is None:
            return None
        logged = LoggedCall(record_id=str(values["record_id"]), deal_id=values.get("deal_id"))
        return logged, bool(values.get("done"))

    @_unavailable
    def record_call(
        self, agency_id: str, call_id: str, connection_id: str, logged: LoggedCall, *, done: bool
    ) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "pk": call_pk(agency_id, call_id),
                    "sk": f"TO#{connection_id}",
                    "record_id": logged.record_id,
                    "deal_id": logged.deal_id,
                    "done": done,
                }
            ),
        )

    # --- helpers ---

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        answer = self._db.get_item(
            TableName=self._table, Key=to_values({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        item = answer.get("Item")
        return from_item(item) if item else None

    def _write(self, requests: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(requests), _WRITE_BATCH):
            pending: dict[str, Any] = {self._table: list(requests[start : start + _WRITE_BATCH])}
            while pending:
                answer = self._db.batch_write_item(RequestItems=pending)
                pending = dict(answer.get("UnprocessedItems") or {})

    def _put_if_newer(
        self, pk: str, sk: str, version: int, body: dict[str, Any]
    ) -> tuple[bool, dict[str, Any]]:
        """Whether it was stored, and what it replaced (empty when nothing)."""
        old = replace_if_newer(self._db, self._table, {"pk": pk, "sk": sk, **body}, version)
        return old is not None, old or {}


def _mirrored(values: dict[str, Any]) -> MirroredContact:
    contact_id = values.get("contact_id")
    return MirroredContact(
        external_id=str(values["external_id"]),
        change_hash=str(values["hash"]),
        fields=ContactFields.model_validate_json(str(values["fields"])),
        contact_id=str(contact_id) if contact_id else None,
    )


def _normal(address: str) -> str:
    return address.strip().lower()


def _email_of(stored: dict[str, Any]) -> str:
    """The email of a stored platform contact item (none for a tombstone or nothing)."""
    if not stored or stored.get("deleted") or not stored.get("fields"):
        return ""
    return _normal(ContactFields.model_validate_json(str(stored["fields"])).email)
