"""The one job model on the sync queue, produced by webhooks, the scheduler and connect."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.connection import utcnow

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


class JobKind(StrEnum):
    SYNC = "sync"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a job kind, not a secret
    RENEW_SUBSCRIPTION = "renew_subscription"
    # Write one appointment's current version to one connection's calendar (or delete it there).
    PUSH_APPOINTMENT = "push_appointment"
    # Replay the owner's upcoming appointments into one connection's calendar ("Push existing data").
    PUSH_EXISTING = "push_existing"


class SyncJob(BaseModel):
    """A payload is a hint: the worker re-reads current state from the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: JobKind
    connection_id: str
    provider: str
    hint: dict[str, Any] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=utcnow)


class JobQueue:
    """Sends jobs to the sync queue. A failure raises: callers must not acknowledge what was not queued."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, job: SyncJob) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=job.model_dump_json())

    def send_many(self, jobs: list[SyncJob]) -> list[SyncJob]:
        """Send in batches of ten; returns the jobs SQS did not accept (the caller retries them)."""
        failed: list[SyncJob] = []
        for start in range(0, len(jobs), 10):
            batch = jobs[start : start + 10]
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "MessageBody": job.model_dump_json()} for i, job in enumerate(batch)
            ]
            answer = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            failed += [batch[int(f["Id"])] for f in answer.get("Failed", [])]
        return failed
