"""The client's contacts by email address, in the sync table beside the CRM data (store/crm.py).

| item                 | pk                      | sk                 | holds                              |
|----------------------|-------------------------|--------------------|------------------------------------|
| an address           | `PCT#<agency>#<client>` | `EM#<address>`     | `contact_id`, `x_<connection>` ids |
| creating its contact | `PCT#<agency>#<client>` | `EMLOCK#<address>` | `holder`, `lease_until`            |

An address item is kept by the CRM store wherever a contact's email is learned or lost: the platform's
`Contact Upserted` / `Deleted` set or clear `contact_id`; each CRM mirror write sets or clears that
connection's `x_<connection id>`. Each is one attribute changed by an UpdateItem, so the platform's
writes and every CRM's writes never overwrite each other, and a removal is conditional on the value it
removes (a late removal never clears a newer owner of the address).

The partition is the client's, as for every other CRM item: an address is only ever looked up under
the tenant that asks, so one client's contacts never answer for another's. A mail's addresses are
read with one BatchGetItem.

The creation lease serializes making a contact for an unknown address: ten mails from one new
sender arriving at once make one contact. The lease runs out on its own if its holder dies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.store.crm_keys import client_pk
from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_GET_BATCH = 100
_EXTERNAL = "x_"
_unavailable = unavailable_on_aws_error("The contact directory")


def normalized(address: str) -> str:
    return address.strip().lower()


def address_sk(address: str) -> str:
    return f"EM#{normalized(address)}"


def lease_sk(address: str) -> str:
    return f"EMLOCK#{normalized(address)}"


@dataclass(frozen=True, slots=True)
class AddressEntry:
    """Who an address is in one client's world: the platform's contact and each CRM's copy."""

    address: str
    contact_id: str | None = None
    # connection id → the contact's id in that CRM.
    external_ids: dict[str, str] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.contact_id is not None or bool(self.external_ids)

    @property
    def key(self) -> str:
        """The platform's contact id, else a CRM-only key (`crm:<connection>:<external id>`)."""
        if self.contact_id is not None:
            return self.contact_id
        connection_id = min(self.external_ids)
        return f"crm:{connection_id}:{self.external_ids[connection_id]}"


class AddressDirectory:
    """The writes that keep the address items (the CRM store calls them as it learns emails)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def set_contact(self, agency_id: str, client_id: str, address: str, contact_id: str) -> None:
        self._set(agency_id, client_id, address, "contact_id", contact_id)

    def unset_contact(self, agency_id: str, client_id: str, address: str, contact_id: str) -> None:
        self._unset(agency_id, client_id, address, "contact_id", contact_id)

    def set_external(
        self, agency_id: str, client_id: str, address: str, connection_id: str, external_id: str
    ) -> None:
        self._set(agency_id, client_id, address, _EXTERNAL + connection_id, external_id)

    def unset_external(
        self, agency_id: str, client_id: str, address: str, connection_id: str, external_id: str
    ) -> None:
        self._unset(agency_id, client_id, address, _EXTERNAL + connection_id, external_id)

    def _set(self, agency_id: str, client_id: str, address: str, name: str, value: str) -> None:
        if not normalized(address):
            return
        self._db.update_item(
            TableName=self._table,
            Key=to_values({"pk": client_pk(agency_id, client_id), "sk": address_sk(address)}),
            UpdateExpression="SET #n = :v, address = :a",
            ExpressionAttributeNames={"#n": name},
            ExpressionAttributeValues=to_values({":v": value, ":a": normalized(address)}),
        )

    def _unset(self, agency_id: str, client_id: str, address: str, name: str, value: str) -> None:
        if not normalized(address):
            return
        try:
            self._db.update_item(
                TableName=self._table,
                Key=to_values({"pk": client_pk(agency_id, client_id), "sk": address_sk(address)}),
                UpdateExpression="REMOVE #n",
                # Only the value being removed: a newer owner of the address keeps it.
                ConditionExpression="#n = :v",
                ExpressionAttributeNames={"#n": name},
                ExpressionAttributeValues=to_values({":v": value}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


class DynamoMailContacts(AddressDirectory):
    """`mail.ports.MailContacts` over the address items, plus what the mail logger needs of them:
    every CRM's id for an address, and a lease on creating the contact for an unknown one."""

    @_unavailable
    def known(self, agency_id: str, client_id: str, addresses: Sequence[str]) -> dict[str, str]:
        """The addresses that are contacts of this client, each with its key."""
        return {a: e.key for a, e in self.entries(agency_id, client_id, addresses).items()}

    @_unavailable
    def entries(self, agency_id: str, client_id: str, addresses: Sequence[str]) -> dict[str, AddressEntry]:
        """The known addresses among `addresses` (lower-cased), read in one BatchGetItem per 100."""
        pk = client_pk(agency_id, client_id)
        wanted = [a for a in dict.fromkeys(normalized(a) for a in addresses) if a]
        found: dict[str, AddressEntry] = {}
        for start in range(0, len(wanted), _GET_BATCH):
            keys = [to_values({"pk": pk, "sk": address_sk(a)}) for a in wanted[start : start + _GET_BATCH]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    entry = _entry(from_item(item))
                    if entry.known:
                        found[entry.address] = entry
                request = dict(answer.get("UnprocessedKeys") or {})
        return found

    @_unavailable
    def claim_creation(
        self, agency_id: str, client_id: str, address: str, holder: str, now: datetime, seconds: float
    ) -> bool:
        """True when `holder` may create the address's contact now (no one else is creating it)."""
        until = now + timedelta(seconds=seconds)
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": client_pk(agency_id, client_id),
                        "sk": lease_sk(address),
                        "holder": holder,
                        "lease_until": int(until.timestamp() * 1000),
                        # TTL tidies up; the condition decides.
                        "expires_at": int((until + timedelta(days=1)).timestamp()),
                    }
                ),
                # Free, or its holder's time ran out (it died between claim and release).
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues=to_values({":now": int(now.timestamp() * 1000)}),
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    @_unavailable
    def release_creation(self, agency_id: str, client_id: str, address: str, holder: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=to_values({"pk": client_pk(agency_id, client_id), "sk": lease_sk(address)}),
                ConditionExpression="holder = :h",
                ExpressionAttributeValues=to_values({":h": holder}),
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


def _entry(values: dict[str, Any]) -> AddressEntry:
    contact_id = values.get("contact_id")
    return AddressEntry(
        address=str(values.get("address") or str(values["sk"]).removeprefix("EM#")),
        contact_id=str(contact_id) if contact_id else None,
        external_ids={
            k.removeprefix(_EXTERNAL): str(v) for k, v in values.items() if k.startswith(_EXTERNAL) and v
        },
    )
