"""Find connections that are due and queue one job each, claimed so two runs never queue the same one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from integrations.store import keys
from integrations.store.connections import DUE_SHARDS
from integrations.store.dynamo import from_item, is_condition_failure, to_values
from integrations.sync.jobs import JobKind, JobQueue, SyncJob

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A claimed connection is not offered again for this long, unless the worker reschedules it sooner.
CLAIM_FOR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    queued: int
    failed: int


class SyncScheduler:
    def __init__(self, client: DynamoDBClient, table_name: str, queue: JobQueue) -> None:
        self._db = client
        self._table = table_name
        self._queue = queue

    def run(self, now: datetime, limit_per_shard: int = 100) -> ScheduleResult:
        """Query each shard of the sparse DueForSync index up to `now`, claim, and queue."""
        jobs: list[SyncJob] = []
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
                job = self._claim(key["pk"], key["gsi3sk"], now)
                if job is not None:
                    jobs.append(job)
        failed = self._queue.send_many(jobs)
        return ScheduleResult(queued=len(jobs) - len(failed), failed=len(failed))

    def _claim(self, pk: str, due: str, now: datetime) -> SyncJob | None:
        """Move the due time forward only if nobody else did: the conditional update is the claim."""
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=to_values({"pk": pk, "sk": keys.CONNECTION_SK}),
                UpdateExpression="SET gsi3sk = :later",
                ConditionExpression="gsi3sk = :due",
                ExpressionAttributeValues=to_values({":later": (now + CLAIM_FOR).isoformat(), ":due": due}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        values = from_item(answer["Attributes"])
        return SyncJob(
            kind=JobKind.SYNC,
            connection_id=pk.removeprefix("CONN#"),
            provider=str(values["provider"]),
            hint={"reason": "scheduled"},
            received_at=now,
        )
