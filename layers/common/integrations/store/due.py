"""Due-sync claims on the sparse, sharded DueForSync index (the adapter behind sync.scheduler.DueConnections).

Only connections with a `next_sync_at` are in the index, so a run costs O(due), never O(connections).
Claiming moves the item's due time forward with a conditional update on the due time that was read:
of two runs that saw the same item, exactly one claims it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from integrations.store import keys
from integrations.store.connections import DUE_SHARDS
from integrations.store.dynamo import from_item, is_condition_failure, to_values
from integrations.store.errors import unavailable_on_aws_error
from integrations.sync.scheduler import DueClaim

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDueConnections:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    @unavailable_on_aws_error("The due-sync index")
    def claim_due(self, now: datetime, claim_until: datetime, limit_per_shard: int) -> list[DueClaim]:
        """Query each shard up to `now` and claim every item found until `claim_until`."""
        claims: list[DueClaim] = []
        for shard in range(DUE_SHARDS):
            answer = self._db.query(
                TableName=self._table,
                IndexName=keys.DUE_FOR_SYNC,
                KeyConditionExpression="gsi3pk = :shard AND gsi3sk <= :now",
                ExpressionAttributeValues=to_values({":shard": f"DUE#{shard}", ":now": now.isoformat()}),
                Limit=limit_per_shard,
            )
            for item in answer.get("Items", []):
                key = from_item(item)
                claim = self._claim(str(key["pk"]), str(key["gsi3sk"]), claim_until)
                if claim is not None:
                    claims.append(claim)
        return claims

    def _claim(self, pk: str, due: str, until: datetime) -> DueClaim | None:
        """Move the due time forward only if nobody else did: the conditional update is the claim."""
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=to_values({"pk": pk, "sk": keys.CONNECTION_SK}),
                UpdateExpression="SET gsi3sk = :later",
                ConditionExpression="gsi3sk = :due",
                ExpressionAttributeValues=to_values({":later": until.isoformat(), ":due": due}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        values = from_item(answer["Attributes"])
        return DueClaim(connection_id=pk.removeprefix("CONN#"), provider=str(values["provider"]))
