"""Sync jobs from SQS (partial batch failures reported) and platform events from the bus."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from integrations.config import Settings
from integrations.container import Container
from integrations.events import AgencyPlanChanged
from integrations.metrics import SYNC_JOBS, EmfCounter, counted
from integrations.observability import get_logger
from integrations.sync.jobs import SyncJob

logger = get_logger("sync_worker")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Built once per container; a missing variable fails here, at cold start, naming it.
container = Container(Settings.from_env())
worker = container.sync_worker(logger)
counter = EmfCounter()


def record_handler(record: SQSRecord) -> None:
    job = SyncJob.model_validate_json(record.body)
    logger.append_keys(connection_id=job.connection_id, provider=job.provider)
    # Every job counts here; the token manager counts the refreshes themselves (TokenRefreshes).
    with counted(counter, SYNC_JOBS, provider=job.provider):
        worker.handle(job)


def platform_event(event: dict[str, Any]) -> dict[str, str]:
    """Events the platform publishes to the bus; unknown types are logged and ignored."""
    if event.get("detail-type") == AgencyPlanChanged.detail_type:
        change = AgencyPlanChanged.model_validate(event.get("detail") or {})
        container.agencies.set_tier(change.agency_id, change.tier)
        logger.info("agency plan changed", extra={"agency_id": change.agency_id, "tier": change.tier.value})
        return {"status": "applied"}
    logger.info("platform event ignored", extra={"detail_type": event.get("detail-type")})
    return {"status": "ignored"}


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    return platform_event(event)
