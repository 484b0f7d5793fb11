"""Queues, schedules and bus rules delivering to the functions, as Lambda's event sources would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from infra.local.event_sources import QueueConsumer, failed_message_ids
from infra.local.resources import QueueSource
from infra.local.stack import LocalStack
from tests.e2e.conftest import MANAGE, VIEW, Api
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2", "m3"}),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, {"m1", "m2", "m3"}),
        ({"batchItemFailures": [{"id": "m2"}]}, {"m1", "m2", "m3"}),
        ({"batchItemFailures": [{"itemIdentifier": "elsewhere"}]}, {"m1", "m2", "m3"}),
        ("not json object", {"m1", "m2", "m3"}),
    ],
)
def test_partial_batch_answers_follow_lambdas_rules(answer: Any, expected: set[str]) -> None:
    assert failed_message_ids(answer, ["m1", "m2", "m3"], reports_failures=True) == expected


def test_without_report_batch_item_failures_returning_means_success() -> None:
    answer = {"batchItemFailures": [{"itemIdentifier": "m1"}]}

    assert failed_message_ids(answer, ["m1"], reports_failures=False) == set()


@pytest.fixture
def scratch_queue(stack: LocalStack) -> tuple[Any, str, str]:
    sqs = boto3.Session().client("sqs")
    url = sqs.create_queue(
        QueueName=f"e2e-scratch-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "60"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def consumer(sqs: Any, url: str, arn: str, invoke: Callable[[str, Any], Any]) -> QueueConsumer:
    source = QueueSource("Jobs", "Scratch", 10, 0, ("ReportBatchItemFailures",))
    return QueueConsumer(
        sqs, function="Fn", source=source, queue_url=url, queue_arn=arn, region="us-east-1", invoke=invoke
    )


def test_reported_failures_stay_on_the_queue_and_the_rest_is_deleted(
    scratch_queue: tuple[Any, str, str],
) -> None:
    sqs, url, arn = scratch_queue
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    seen: list[dict[str, Any]] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(event["Records"])
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"
            ]
        }

    handed = sum(consumer(sqs, url, arn, invoke).poll_once(wait_seconds=1) for _ in range(3))

    assert handed == 3
    assert sorted(r["body"] for r in seen) == ["fail", "ok-1", "ok-2"]
    record = seen[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    # The failed message is in flight until its visibility timeout; the others are gone.
    assert queue_counts(sqs, url) == (0, 1)


def test_a_raising_function_leaves_the_whole_batch(scratch_queue: tuple[Any, str, str]) -> None:
    sqs, url, arn = scratch_queue
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def invoke(function: str, event: dict[str, Any]) -> None:
        raise RuntimeError("down")

    consumer(sqs, url, arn, invoke).poll_once(wait_seconds=1)

    assert queue_counts(sqs, url) == (0, 2)


def test_sync_worker_takes_jobs_from_the_sync_queue(stack: LocalStack) -> None:
    assert stack.resources is not None
    sqs = boto3.Session().client("sqs")
    url = stack.resources.sync_queue_url
    job = {"kind": "sync", "connection_id": f"gone-{uuid.uuid4().hex}", "provider": "ghl"}
    before = stack.lambdas.functions["SyncWorkerFunction"].invocations if stack.lambdas else 0

    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(job))

    # A job for a removed connection is acknowledged: the queue drains.
    assert eventually(
        lambda: (
            stack.lambdas is not None
            and stack.lambdas.functions["SyncWorkerFunction"].invocations > before
            and queue_counts(sqs, url) == (0, 0)
        )
    )


def test_bus_rule_delivers_platform_events_to_the_worker(stack: LocalStack, api: Api) -> None:
    assert stack.resources is not None
    agency = f"plan-{uuid.uuid4().hex[:8]}"
    admin = {
        "sub": f"{agency}-admin",
        "agency_id": agency,
        "role": "agency_admin",
        "permissions": [VIEW, MANAGE],
    }
    events = boto3.Session().client("events")

    events.put_events(
        Entries=[
            {
                "EventBusName": stack.resources.event_bus_name,
                "Source": "platform",
                "DetailType": "Agency Plan Changed",
                "Detail": json.dumps({"agency_id": agency, "tier": "enterprise"}),
            }
        ]
    )

    def tier() -> str | None:
        answer = api.call("GET", "/agency/settings", identity=admin)
        value = answer.json().get("tier") if answer.status_code == 200 else None
        return value if value == "enterprise" else None

    assert eventually(tier) == "enterprise"


def test_schedule_runs_the_scheduler(stack: LocalStack) -> None:
    results = stack.event_sources.fire_schedules("SyncSchedulerFunction")

    assert len(results) == 1
    assert isinstance(results[0]["queued"], int)
