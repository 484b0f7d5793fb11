"""The sync scheduler's reads: 10,000 connections in moto's DynamoDB, 1% due, one scheduler run.

Connections are written as the connection repository's own item builder lays them out (the function
its create and save write with), so the sparse DueForSync keys (gsi3pk/gsi3sk) are what production
writes; they go in with BatchWriteItem, 25 at a time, because 10,000 single conditional puts take
over a minute under moto. Every connection has a next sync time, 99% of them in the future.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CONNECTIONS = 10_000
DUE_SHARE = 0.01
TARGET_SHARE = 0.02


@dataclass(frozen=True, slots=True)
class SchedulerResult:
    connections: int
    due: int
    queued: int
    items_read: int
    calls: str
    read_units: float
    write_units: float

    @property
    def share(self) -> float:
        return self.items_read / self.connections


def measure() -> SchedulerResult:
    from moto import mock_aws

    from infra.local.resources import create_resources, load_template
    from integrations import aws
    from integrations.domain.access import Level
    from integrations.domain.connection import Connection, ExternalAccount
    from integrations.store.connections import _item as connection_item
    from integrations.store.due import DynamoDueConnections
    from integrations.store.queue import SqsJobQueue
    from integrations.sync.scheduler import SyncScheduler
    from tests.bench.dynamo_meter import DynamoMeter

    os.environ.update(
        {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    )
    with mock_aws():
        aws.reset_clients()
        resources = create_resources(load_template(), stage="bench")
        db = aws.dynamodb()
        now = datetime.now(UTC).replace(microsecond=0)
        due = int(CONNECTIONS * DUE_SHARE)
        items = []
        for n in range(CONNECTIONS):
            # The due ones are spread over the last hour, the rest over the next day.
            later = timedelta(minutes=1 + (n * 7) % (24 * 60))
            when = now - timedelta(minutes=1 + n % 60) if n < due else now + later
            connection = Connection(
                id=uuid.uuid4().hex,
                provider="google_calendar",
                level=Level.CLIENT,
                agency_id=f"agency-{n % 50}",
                client_id=f"client-{n % 400}",
                account=ExternalAccount(id=f"acct-{n}", label="Google account"),
                next_sync_at=when,
                version=1,
            )
            items.append({"PutRequest": {"Item": connection_item(connection)}})
        for start in range(0, len(items), 25):
            db.batch_write_item(RequestItems={resources.main_table: items[start : start + 25]})
        assert db.describe_table(TableName=resources.main_table)["Table"]["ItemCount"] == CONNECTIONS
        meter = DynamoMeter()
        meter.attach(db)
        meter.reset()
        scheduler = SyncScheduler(
            DynamoDueConnections(db, resources.main_table), SqsJobQueue(aws.sqs(), resources.sync_queue_url)
        )
        result = scheduler.run(now)
        measured = SchedulerResult(
            connections=CONNECTIONS,
            due=due,
            queued=result.queued,
            items_read=meter.items_read,
            calls=meter.summary(),
            read_units=meter.read_units,
            write_units=meter.write_units,
        )
        again = scheduler.run(now)
        assert result.queued == due and result.failed == 0, result
        assert again.queued == 0, "a claimed connection was queued twice"
        return measured


def section() -> list[str]:
    """The RESULTS.md section."""
    r = measure()
    verdict = "meets" if r.share <= TARGET_SHARE else "misses"
    return [
        "## Sync scheduler: items read per run",
        "",
        f"{r.connections:,} connections written through the connection repository into moto's"
        f" IntegrationsTable (created from template.yaml), {r.due} of them due (1%), every other one"
        " scheduled within the next day; one `SyncScheduler` run over `DynamoDueConnections` and the"
        " SQS queue. Items read = the Queries' ScannedCount (the claims are conditional UpdateItems,"
        " billed as writes: one per due connection); capacity computed by DynamoDB's rules"
        " (tests/bench/dynamo_meter.py). A second run at the same"
        " instant queues nothing (the claims hold).",
        "",
        "| connections | due | queued | DynamoDB items read | share of connections (target ≤ 2%)"
        " | DynamoDB calls | RCU | WCU |",
        "|---:|---:|---:|---:|---:|---|---:|---:|",
        f"| {r.connections:,} | {r.due} | {r.queued} | {r.items_read} | {r.share:.2%} ({verdict})"
        f" | {r.calls} | {r.read_units:g} | {r.write_units:g} |",
    ]
