"""The sync queue (SQS): the adapter behind sync.jobs.JobSink."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.store.errors import AWS_ERRORS, unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from integrations.sync.jobs import SyncJob

_unavailable = unavailable_on_aws_error("The sync queue")
# SQS's limit on a message's delay.
MAX_DELAY_SECONDS = 900


class SqsJobQueue:
    """Sends jobs to the sync queue. A failure raises: callers must not acknowledge what was not queued."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    @_unavailable
    def send(self, job: SyncJob, delay_seconds: int = 0) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=job.model_dump_json(),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
        )

    def send_many(self, jobs: list[SyncJob]) -> list[SyncJob]:
        """Send in batches of ten; returns the jobs SQS did not accept (the caller retries them).

        A batch whose call fails counts as not accepted, and the next batch is still tried.
        """
        failed: list[SyncJob] = []
        for start in range(0, len(jobs), 10):
            batch = jobs[start : start + 10]
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "MessageBody": job.model_dump_json()} for i, job in enumerate(batch)
            ]
            try:
                answer = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            except AWS_ERRORS:
                failed += batch
                continue
            failed += [batch[int(f["Id"])] for f in answer.get("Failed", [])]
        return failed


class SqsDeadLetters:
    """Sends a poison job straight to the dead-letter queue, where the redrive policy would have put
    it after more failed deliveries (each of which would have called the provider again)."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    @_unavailable
    def send(self, job: SyncJob, reason: str) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=job.model_dump_json(),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256] or "poison"}},
        )
