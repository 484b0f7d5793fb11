"""The delivery ledger in the state table (webhooks.dedupe.DeliveryLedger): a conditional put claims
an id once.

Item: `pk = WEBHOOK#<provider>#<event id>`, `expires_at` (epoch seconds, DynamoDB TTL) = now + 7 days,
longer than every provider's retry horizon (Calendly and HubSpot 24 h, Graph 4 h, GHL ~70 min, Slack
minutes). TTL deletes late (up to ~48 h), so an item past `expires_at` counts as absent, not as a
duplicate: expiry is decided by the stored time, never by whether TTL has run yet.

A claim is `pending` until its job is queued (`confirm`). If the function dies in between (a timeout
while SQS hangs), the provider's redelivery finds a pending claim older than PENDING_LEASE and takes it
over, so the event is not lost; at worst a job is queued twice, which the worker tolerates (jobs are
hints and the worker re-reads the provider).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from integrations.store.dynamo import is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RETENTION = timedelta(days=7)
# Longer than the function's timeout (10 s in template.yaml): a live invocation is never overtaken.
PENDING_LEASE = timedelta(seconds=30)
PENDING, DONE = "pending", "done"
# DynamoDB allows 2048-byte partition keys; longer ids are replaced by their digest.
_MAX_ID_BYTES = 1024
_CLAIMABLE = "attribute_not_exists(pk) OR expires_at < :now OR (#s = :pending AND pending_until < :now)"
_unavailable = unavailable_on_aws_error("The delivery ledger")


def delivery_pk(provider: str, event_id: str) -> str:
    """The ledger key of one delivery."""
    raw = event_id.encode("utf-8", "surrogatepass")
    if len(raw) > _MAX_ID_BYTES:
        event_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    return f"WEBHOOK#{provider}#{event_id}"


class DynamoDeliveryLedger:
    """The ledger in the state table (pk only, TTL on `expires_at`)."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention: timedelta = RETENTION) -> None:
        self._db = client
        self._table = table_name
        self._retention = retention

    @_unavailable
    def claim(self, provider: str, event_id: str, now: datetime, connection_id: str) -> bool:
        """True if this call claimed the id; False if it is claimed (done, or pending and still leased)."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": delivery_pk(provider, event_id),
                        "status": PENDING,
                        "pending_until": int((now + PENDING_LEASE).timestamp()),
                        "expires_at": int((now + self._retention).timestamp()),
                        "connection_id": connection_id,
                        "received_at": now.isoformat(),
                    }
                ),
                # One writer wins a race between two deliveries of the same id (providers retry in
                # parallel). An expired claim that TTL has not removed yet, or a pending one whose
                # invocation died before queueing, may be taken over.
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_values({":now": int(now.timestamp()), ":pending": PENDING}),
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    @_unavailable
    def confirm(self, provider: str, event_id: str) -> None:
        """The job is queued: the claim is final (a redelivery is a duplicate from now on)."""
        self._db.update_item(
            TableName=self._table,
            Key=to_values({"pk": delivery_pk(provider, event_id)}),
            UpdateExpression="SET #s = :done REMOVE pending_until",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_values({":done": DONE}),
        )

    @_unavailable
    def release(self, provider: str, event_id: str) -> None:
        """Forget a claim whose job could not be queued, so the provider's redelivery is not dropped."""
        self._db.delete_item(TableName=self._table, Key=to_values({"pk": delivery_pk(provider, event_id)}))
