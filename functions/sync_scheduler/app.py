"""Every minute: queue a sync job for each connection that is due."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from integrations import aws
from integrations.config import Settings
from integrations.domain.connection import utcnow
from integrations.metrics import SCHEDULED_JOBS, EmfCounter
from integrations.observability import get_logger
from integrations.sync.jobs import JobQueue
from integrations.sync.scheduler import SyncScheduler

logger = get_logger("sync_scheduler")
counter = EmfCounter()


def _scheduler() -> SyncScheduler:
    settings = Settings.from_env()
    return SyncScheduler(aws.dynamodb(), settings.table_name, JobQueue(aws.sqs(), settings.sync_queue_url))


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    result = _scheduler().run(utcnow())
    logger.info("scheduled", extra={"queued": result.queued, "failed": result.failed})
    counter.count(SCHEDULED_JOBS, result.queued, outcome="queued")
    counter.count(SCHEDULED_JOBS, result.failed, outcome="failed")
    if result.failed:
        # Claimed but not queued: fail the run so the schedule's retry and the alarm both see it.
        raise RuntimeError(f"{result.failed} sync jobs could not be queued")
    return {"queued": result.queued}
