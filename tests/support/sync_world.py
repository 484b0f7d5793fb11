"""The sync worker as tests drive it: the container over moto, a recording bus, the real SQS queue
drained as Lambda's event source mapping would. Each provider's test adds the person's side (its
sandbox routes) and how its connection is made."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import catalog_overrides
from integrations import aws as aws_clients
from integrations.catalog.loader import clear_cache
from integrations.config import Settings
from integrations.container import Container
from integrations.domain.connection import Connection
from integrations.events import PlatformEvent
from integrations.observability import get_logger
from integrations.sync.jobs import JobKind, SyncJob
from integrations.sync.settle import RunResult
from tests.support.sandbox import Sandbox


class WorkerDied(BaseException):
    """What a Lambda timeout or an out-of-memory kill looks like from inside: nothing catches it."""


class Recorder:
    """The bus, as the worker publishes to it."""

    def __init__(self) -> None:
        self.events: list[PlatformEvent] = []

    def publish(self, *events: PlatformEvent) -> None:
        self.events.extend(events)

    def of(self, detail_type: str) -> list[Any]:
        return [e for e in self.events if e.detail_type == detail_type]


def use_sandbox_catalog(sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the catalog at the sandbox (what `make dev` does with its overrides file)."""
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps(catalog_overrides(sb.base)))
    monkeypatch.setenv("INTEGRATIONS_CATALOG_OVERRIDES", str(overrides))
    clear_cache()


def queue_empty(queue_url: str) -> bool:
    """No message on the queue: none visible, none in flight, none delayed."""
    attributes = aws_clients.sqs().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    names = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    return all(int(attributes.get(name, "0")) == 0 for name in names)


class WorkerWorld:
    """One connection of `provider`, the worker that syncs it, and the bus it publishes to."""

    provider = ""

    def __init__(self, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sb = sb
        use_sandbox_catalog(sb, tmp_path, monkeypatch)
        self.container = Container(Settings.from_env())
        self.bus = Recorder()
        self.container.__dict__["events"] = self.bus
        self.worker = self.container.sync_worker(get_logger("test"))
        self.queue_url = Settings.from_env().sync_queue_url
        self.results: list[RunResult] = []
        self.connection_id = ""

    @property
    def connection(self) -> Connection:
        found = self.container.connections.get(self.connection_id)
        assert found is not None
        return found

    def mirror_ids(self, calendar_id: str) -> list[str]:
        return [e.external_id for e in self.container.mirror.events(self.connection_id, calendar_id)]

    def job(self, kind: JobKind = JobKind.SYNC, **hint: Any) -> SyncJob:
        return SyncJob(kind=kind, connection_id=self.connection_id, provider=self.provider, hint=hint)

    def enqueue(self, job: SyncJob) -> None:
        self.container.jobs.send(job)

    def run(self, job: SyncJob | None = None, remaining_ms: int = 600_000) -> RunResult:
        result = self.worker.handle(job or self.job(), receive_count=1, remaining_ms=lambda: remaining_ms)
        self.results.append(result)
        return result

    def drain(
        self,
        timeout: float = 30.0,
        remaining_ms: Callable[[], int] | None = None,
        *,
        fail_on_error: bool = False,
    ) -> int:
        """Run every job on the queue, as the event source mapping would, until the queue is empty.

        A job that raises stays on the queue and is tried again, as in Lambda; with `fail_on_error` it
        fails the test at once instead."""
        sqs = aws_clients.sqs()
        handled = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
            )
            messages = answer.get("Messages", [])
            if not messages and queue_empty(self.queue_url):
                return handled
            for message in messages:
                job = SyncJob.model_validate_json(message["Body"])
                count = int(message["Attributes"]["ApproximateReceiveCount"])
                budget = remaining_ms if remaining_ms is not None else (lambda: 600_000)
                try:
                    self.results.append(self.worker.handle(job, receive_count=count, remaining_ms=budget))
                except (Exception, WorkerDied):  # a failed delivery stays on the queue, as in Lambda
                    if fail_on_error:
                        raise
                    sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                    continue
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                handled += 1
        raise AssertionError("the queue did not drain")
