"""The functions' non-HTTP triggers, run locally: SQS event source mappings, schedules and bus rules.

- SQS: a poller per mapping receives up to BatchSize messages (waiting up to the batching window to
  fill a batch), invokes the function with Lambda's SQS event, and deletes what succeeded. With
  ReportBatchItemFailures only the reported messages stay; they, like every message of a failed
  invocation, reappear after the queue's visibility timeout, and the queue's own redrive policy moves
  them to the dead-letter queue (moto implements both, so nothing here re-implements them).
- Schedules: `rate(...)` expressions fire on their rate with EventBridge's Scheduled Event.
- Bus rules: each rule is created on the bus for real, with the function's pattern, targeting a
  queue made for it locally; a poller hands each event to the function (one event per asynchronous
  invocation). Matching therefore stays EventBridge's (moto's) own, and the same code works against
  any AWS endpoint. A failing invocation is retried twice, as Lambda does for asynchronous calls,
  then dropped with an error in the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from infra.local.resources import EventRuleSource, QueueSource, ScheduleSource

if TYPE_CHECKING:
    import boto3

log = logging.getLogger("infra.local.events")

Invoker = Callable[[str, Any], Any]
# How long one receive call waits: short, so stopping the stack is quick.
_WAIT_SECONDS = 1
# Asynchronous invocations: the first try plus Lambda's two retries.
ASYNC_ATTEMPTS = 3
# Seconds before a failed asynchronous event is retried (Lambda waits about a minute; locally, less).
ASYNC_RETRY_DELAY = 2


# --------------------------------------------------------------------------- SQS


def lambda_sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as it appears in a Lambda event's `Records`."""
    attributes = dict(message.get("Attributes") or {})
    message_attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        message_attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": list(value.get("StringListValues") or []),
            "binaryListValues": list(value.get("BinaryListValues") or []),
            "dataType": value.get("DataType"),
        }
    body = str(message.get("Body", ""))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_message_ids(result: Any, message_ids: Sequence[str], reports_failures: bool) -> set[str]:
    """Which messages of a batch failed, given the function's answer (Lambda's documented rules).

    Success: no answer, an empty answer, or an empty/null `batchItemFailures`. Whole-batch failure:
    an answer that is not valid, or an item identifier that is empty, null, misnamed or not in the batch.
    Without ReportBatchItemFailures the answer is ignored: returning means every message succeeded.
    """
    if not reports_failures or result is None or result in ({}, ""):
        return set()
    everything = set(message_ids)
    if not isinstance(result, dict):
        return everything
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


class _Poller:
    """A daemon thread that repeats `poll_once` until stopped; errors are logged, never fatal."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("%s: poll failed; retrying in a second", self.name)
                self._stop.wait(1)

    def poll_once(self) -> int:
        raise NotImplementedError


class QueueConsumer(_Poller):
    """Lambda's SQS event source mapping for one function and one queue."""

    def __init__(
        self,
        sqs: Any,
        *,
        function: str,
        source: QueueSource,
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Invoker,
        batching_window: float | None = None,
    ) -> None:
        super().__init__(f"sqs:{function}:{source.event}")
        self._sqs = sqs
        self.function = function
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self._invoke = invoke
        # None: the template's MaximumBatchingWindowInSeconds (tests pass a shorter one).
        self.batching_window = (
            float(source.maximum_batching_window_seconds) if batching_window is None else batching_window
        )

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages") or [])

    def poll_once(self, wait_seconds: int = _WAIT_SECONDS) -> int:
        """Receive one batch (if any), invoke, settle it; returns how many messages were handed over."""
        batch = self._receive(self.source.batch_size, wait_seconds)
        if not batch:
            return 0
        # Lambda keeps gathering until the batch is full or the window has passed.
        deadline = time.monotonic() + self.batching_window
        while len(batch) < self.source.batch_size and time.monotonic() < deadline and not self.stopping:
            more = self._receive(self.source.batch_size - len(batch), 0)
            if not more:
                self._stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                continue
            batch.extend(more)
        self.deliver(batch)
        return len(batch)

    def deliver(self, batch: Sequence[Mapping[str, Any]]) -> set[str]:
        """Invoke with `batch` and delete what succeeded; returns the ids left on the queue."""
        records = [lambda_sqs_record(message, self.queue_arn, self.region) for message in batch]
        ids = [r["messageId"] for r in records]
        try:
            result = self._invoke(self.function, {"Records": records})
        except Exception as exc:
            log.warning("%s failed a batch of %d: %s", self.function, len(records), exc)
            return set(ids)
        failed = failed_message_ids(result, ids, self.source.reports_batch_item_failures)
        if failed:
            log.info("%s reported %d of %d messages failed", self.function, len(failed), len(records))
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        return failed


# --------------------------------------------------------------------------- schedules


def scheduled_event(rule_arn: str, region: str, account_id: str) -> dict[str, Any]:
    """EventBridge's `Scheduled Event`, as a schedule hands it to Lambda."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleTicker(_Poller):
    """Fires one `rate(...)` schedule: first one period after start, then every period."""

    def __init__(
        self,
        *,
        function: str,
        source: ScheduleSource,
        rule_arn: str,
        region: str,
        account_id: str,
        invoke: Invoker,
    ) -> None:
        super().__init__(f"schedule:{function}:{source.event}")
        if source.rate_seconds is None:
            raise ValueError(f"{function}.{source.event}: only rate() schedules run locally")
        self.function = function
        self.source = source
        self.period = float(source.rate_seconds)
        self._rule_arn = rule_arn
        self._region = region
        self._account_id = account_id
        self._invoke = invoke
        self._next = time.monotonic() + self.period

    def fire(self) -> Any:
        """Invoke the function now with a scheduled event; returns its answer (raises if it raised)."""
        return self._invoke(self.function, scheduled_event(self._rule_arn, self._region, self._account_id))

    def poll_once(self) -> int:
        if self._stop.wait(max(0.0, self._next - time.monotonic())):
            return 0
        self._next += self.period
        try:
            self.fire()
        except Exception as exc:
            log.warning("%s: scheduled run failed: %s", self.function, exc)
        return 1


# --------------------------------------------------------------------------- bus rules


@dataclass(frozen=True, slots=True)
class RuleTarget:
    """A bus rule created locally and the queue it delivers to."""

    rule_name: str
    rule_arn: str
    queue_url: str
    queue_arn: str


def _local_name(*parts: str, limit: int) -> str:
    name = "-".join(parts)
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


def create_rule_target(
    session: boto3.Session,
    *,
    stage: str,
    function: str,
    source: EventRuleSource,
    bus_name: str,
) -> RuleTarget:
    """Create (or reuse) the rule with the function's pattern, targeting a queue made for it."""
    sqs: Any = session.client("sqs")
    events: Any = session.client("events")
    rule_name = _local_name("integrations", stage, "local", function, source.event, limit=64)
    queue_name = _local_name("integrations", stage, "local-rule", function, source.event, limit=80)
    # A short visibility timeout is the asynchronous retry delay (see ASYNC_RETRY_DELAY).
    queue_url = sqs.create_queue(
        QueueName=queue_name, Attributes={"VisibilityTimeout": str(ASYNC_RETRY_DELAY)}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_arn = events.put_rule(
        Name=rule_name,
        EventBusName=bus_name,
        EventPattern=json.dumps(dict(source.pattern)),
        State="ENABLED",
        Description=f"local stack: {function}.{source.event}",
    )["RuleArn"]
    # Real EventBridge needs the queue to allow the rule to send; moto ignores it.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    events.put_targets(
        Rule=rule_name, EventBusName=bus_name, Targets=[{"Id": "local-queue", "Arn": queue_arn}]
    )
    return RuleTarget(rule_name=rule_name, rule_arn=rule_arn, queue_url=queue_url, queue_arn=queue_arn)


class RuleConsumer(_Poller):
    """Hands each event a rule matched to the function, one asynchronous invocation per event."""

    def __init__(
        self, sqs: Any, *, function: str, source: EventRuleSource, target: RuleTarget, invoke: Invoker
    ):
        super().__init__(f"rule:{function}:{source.event}")
        self._sqs = sqs
        self.function = function
        self.source = source
        self.target = target
        self._invoke = invoke

    def poll_once(self, wait_seconds: int = _WAIT_SECONDS) -> int:
        answer = self._sqs.receive_message(
            QueueUrl=self.target.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = list(answer.get("Messages") or [])
        for message in messages:
            attempt = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
            try:
                event = json.loads(message["Body"])
                self._invoke(self.function, event)
            except Exception as exc:
                if attempt < ASYNC_ATTEMPTS:
                    log.warning("%s: event failed (attempt %d), will retry: %s", self.function, attempt, exc)
                    continue
                log.error("%s: event dropped after %d attempts: %s", self.function, attempt, exc)
            self._sqs.delete_message(QueueUrl=self.target.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)


class EventSources:
    """Every poller and ticker of the stack, started and stopped together."""

    def __init__(self) -> None:
        self.queues: list[QueueConsumer] = []
        self.schedules: list[ScheduleTicker] = []
        self.rules: list[RuleConsumer] = []
        # Pollers that feed the stack itself rather than a function (the dev routes' bus tap).
        self.taps: list[_Poller] = []

    @property
    def all(self) -> list[_Poller]:
        return [*self.queues, *self.schedules, *self.rules, *self.taps]

    def start(self) -> None:
        for poller in self.all:
            poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        for poller in self.all:
            poller.stop()
        deadline = time.monotonic() + timeout
        for poller in self.all:
            poller.join(max(0.0, deadline - time.monotonic()))

    def fire_schedules(self, function: str | None = None) -> list[Any]:
        """Run every schedule (of `function`, if given) now; their answers, in order."""
        return [ticker.fire() for ticker in self.schedules if function in (None, ticker.function)]
