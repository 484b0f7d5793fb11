"""Notifications waiting to be delivered, per connection and in order, in the sync table.

Item: `pk = OUTBOX#<connection>`, `sk = <occurred_at ISO>#<event id>` (so a Query reads them oldest
first), `body` (the message's JSON), `expires_at` (TTL): a message that cannot be delivered waits at
most RETENTION (a channel the bot was removed from, a lost grant), then goes.
The same event added twice is one item (conditional put on the key): redelivery queues nothing new.
At most a cap of messages wait per connection (`trim`): beyond it the oldest go, and are counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from integrations.store.dynamo import from_item, is_condition_failure, to_item, to_values
from integrations.store.errors import unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RETENTION = timedelta(days=3)
# How many messages may wait per connection: a channel nobody fixes for days must not pile up without
# end (nor make every delivery read through all of it).
MAX_WAITING = 500
_unavailable = unavailable_on_aws_error("The notification outbox")


def outbox_pk(connection_id: str) -> str:
    return f"OUTBOX#{connection_id}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """One message waiting for delivery: `key` orders and identifies it."""

    key: str
    body: dict[str, Any]


class DynamoOutbox:
    """The per-connection outbox (sync.notifications.Outbox)."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention: timedelta = RETENTION) -> None:
        self._db = client
        self._table = table_name
        self._retention = retention

    @_unavailable
    def add(self, connection_id: str, key: str, body: dict[str, Any], now: datetime) -> bool:
        """Keep a message for delivery; False when it is already there (a redelivered event)."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": outbox_pk(connection_id),
                        "sk": key,
                        "body": json.dumps(body, separators=(",", ":")),
                        "expires_at": int((now + self._retention).timestamp()),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    @_unavailable
    def waiting(self, connection_id: str, now: datetime, limit: int = 50) -> list[Waiting]:
        """The oldest waiting messages, oldest first. Messages past their retention are deleted here
        (TTL runs late), so they neither go out nor hide the fresh ones behind them."""
        while True:
            answer = self._db.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_values({":pk": outbox_pk(connection_id)}),
                ConsistentRead=True,
                Limit=limit,
            )
            items = list(map(from_item, answer.get("Items", [])))
            expired = [item for item in items if int(item.get("expires_at", 0)) <= int(now.timestamp())]
            for item in expired:
                self.done(connection_id, str(item["sk"]))
            fresh = [item for item in items if item not in expired]
            if fresh or not expired:
                return [Waiting(key=str(item["sk"]), body=json.loads(str(item["body"]))) for item in fresh]

    @_unavailable
    def done(self, connection_id: str, key: str) -> None:
        """A message was delivered: it waits no more."""
        self._db.delete_item(TableName=self._table, Key=to_item({"pk": outbox_pk(connection_id), "sk": key}))

    @_unavailable
    def trim(self, connection_id: str, keep: int, now: datetime) -> int:
        """Drop the oldest waiting messages beyond `keep`; how many were dropped (past-retention
        messages go too, uncounted: they were leaving anyway).

        Reads the connection's keys (bounded by `keep` plus what came since the last trim); a counter
        item would drift, since TTL removes messages without telling anyone."""
        keys: list[tuple[str, int]] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._db.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_values({":pk": outbox_pk(connection_id)}),
                ProjectionExpression="sk, expires_at",
                ConsistentRead=True,
                **({"ExclusiveStartKey": start} if start else {}),  # type: ignore[arg-type]
            )
            keys += [
                (str(i["sk"]), int(i.get("expires_at", 0))) for i in map(from_item, page.get("Items", []))
            ]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        expired = [key for key, expires in keys if expires <= int(now.timestamp())]
        fresh = [key for key, expires in keys if expires > int(now.timestamp())]
        dropped = fresh[: max(0, len(fresh) - keep)]
        for key in [*expired, *dropped]:
            self.done(connection_id, key)
        return len(dropped)
