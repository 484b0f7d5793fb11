"""The scheduler queues each due connection once; the worker applies plan changes and reports bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from integrations.domain.access import Tier
from tests.support import seed
from tests.support.functions import load_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"


def queued_jobs(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def make_due(connection_id: str, when: datetime) -> None:
    connections, _ = seed.repositories()
    conn = connections.get(connection_id)
    assert conn is not None
    conn.next_sync_at = when
    connections.save(conn)


def test_scheduler_queues_due_connections_exactly_once(aws: Any, lambda_context: Any) -> None:
    due = seed.connection(provider="ghl")
    later = seed.connection(provider="hubspot")
    seed.connection(provider="slack")  # never scheduled: not in the sparse index
    make_due(due.id, datetime.now(UTC) - timedelta(minutes=1))
    make_due(later.id, datetime.now(UTC) + timedelta(hours=1))
    scheduler = load_handler("sync_scheduler")

    first = scheduler.handler(json.loads((EVENTS / "sync_scheduler_tick.json").read_text()), lambda_context)
    second = scheduler.handler({}, lambda_context)

    assert first == {"queued": 1}
    assert second == {"queued": 0}
    jobs = queued_jobs(aws.sync_queue_url)
    assert [(j["connection_id"], j["kind"], j["provider"]) for j in jobs] == [(due.id, "sync", "ghl")]


def test_worker_applies_agency_plan_changes(aws: Any, lambda_context: Any) -> None:
    seed.agency("demo-agency", Tier.STARTER, staff_personal_connections=False)
    worker = load_handler("sync_worker")

    answer = worker.handler(
        json.loads((EVENTS / "event_agency_plan_changed.json").read_text()), lambda_context
    )

    _, agencies = seed.repositories()
    settings = agencies.get("demo-agency")
    assert answer == {"status": "applied"}
    assert settings.tier is Tier.ENTERPRISE
    assert settings.staff_personal_connections is False


def test_worker_reports_only_the_bad_record_of_a_batch(aws: Any, lambda_context: Any) -> None:
    sample = json.loads((EVENTS / "sync_worker_sqs_batch.json").read_text())
    good = sample["Records"][0]
    bad = {**good, "messageId": "bad-1", "body": '{"kind": "teleport"}'}
    worker = load_handler("sync_worker")

    answer = worker.handler({"Records": [good, bad]}, lambda_context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
