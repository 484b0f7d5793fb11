"""Sync jobs from SQS (partial batch failures reported) and platform events from the bus."""

from __future__ import annotations

# First: the rest of init runs with the garbage collector paused (integrations.coldstart).
from integrations import coldstart

# isort: split
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from integrations import snapstart
from integrations.config import Settings
from integrations.container import Container
from integrations.metrics import SYNC_JOBS, EmfCounter, counted
from integrations.observability import get_logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from integrations.events import PlatformEvent
    from integrations.sync.jobs import SyncJob
    from integrations.sync.worker import SyncWorker

logger = get_logger("sync_worker")
# Built once per container; a missing variable fails here, at cold start, naming it.
container = Container(Settings.from_env())
counter = EmfCounter()


@cache
def processor() -> BatchProcessor:
    """Built by the first SQS batch, or before the snapshot.

    Powertools' batch utility loads its asyncio processors and every event class it knows; an
    invocation for a platform event never needs them, and a cold start pays for them only once a
    batch arrives.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _warm() -> None:
    """Before a SnapStart snapshot: import and load what a job needs (no AWS client yet)."""
    import integrations.events
    import integrations.sync.jobs
    import integrations.sync.worker  # noqa: F401

    _ = container.catalog
    processor()


def _restore() -> None:
    worker.cache_clear()
    container.forget_connections()


snapstart.register(warm=_warm, restore=_restore)


@cache
def worker() -> SyncWorker:
    # Built on the first job: an invocation for a platform event never builds the sync engine.
    return container.sync_worker(logger)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    from integrations.sync.jobs import SyncJob  # pydantic: loaded by the first job, or before the snapshot

    job = SyncJob.model_validate_json(record.body)
    logger.append_keys(connection_id=job.connection_id, provider=job.provider, job_kind=job.kind.value)
    # Every job counts here; the token manager counts the refreshes themselves (TokenRefreshes).
    with counted(counter, SYNC_JOBS, provider=job.provider):
        worker().handle(
            job,
            receive_count=int(record.attributes.approximate_receive_count or 1),
            remaining_ms=lambda_context.get_remaining_time_in_millis,
        )


def platform_event(event: dict[str, Any]) -> dict[str, str]:
    """Events the platform publishes to the bus; unknown types are logged and ignored.

    Raising makes EventBridge retry the event (its rule's retry policy, then its dead-letter queue):
    every step here is idempotent, so a retry changes nothing that already happened."""
    # Here, not at module scope: an SQS batch of sync jobs never builds the platform's event models.
    from integrations.events import (
        AgencyPlanChanged,
        AppointmentDeleted,
        AppointmentUpserted,
        BookingCreated,
        CallCompleted,
        ContactDeleted,
        ContactUpserted,
        EmailSendRequested,
        IntegrationErrored,
    )

    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    if detail_type == AgencyPlanChanged.detail_type:
        change = AgencyPlanChanged.model_validate(detail)
        container.agencies.set_tier(change.agency_id, change.tier)
        logger.info("agency plan changed", extra={"agency_id": change.agency_id, "tier": change.tier.value})
        return {"status": "applied"}
    if detail_type == AppointmentUpserted.detail_type:
        jobs = container.appointment_pusher.upserted(AppointmentUpserted.model_validate(detail))
        return _queued(jobs)
    if detail_type == AppointmentDeleted.detail_type:
        jobs = container.appointment_pusher.deleted(AppointmentDeleted.model_validate(detail))
        return _queued(jobs)
    if detail_type == ContactUpserted.detail_type:
        return _queued(container.crm_sync.contact_upserted(ContactUpserted.model_validate(detail)))
    if detail_type == ContactDeleted.detail_type:
        return _queued(container.crm_sync.contact_deleted(ContactDeleted.model_validate(detail)))
    if detail_type == CallCompleted.detail_type:
        call = CallCompleted.model_validate(detail)
        # Logged in the client's CRMs, and told in its chat channels (in the order calls started).
        told = _notified(call, call.agency_id, call.client_id, call.call_id, call.started_at)
        return _queued([*container.crm_sync.call_completed(call), *told])
    if detail_type == EmailSendRequested.detail_type:
        # Recorded and queued for the person's mailbox (sent at most once per request id), or failed
        # at once with `no_mailbox`.
        return _queued(container.mail_sender.requested(EmailSendRequested.model_validate(detail)))
    if detail_type == BookingCreated.detail_type:
        booking = BookingCreated.model_validate(detail)
        return _queued(
            _notified(booking, booking.agency_id, booking.client_id, booking.event_id, booking.start)
        )
    if detail_type == IntegrationErrored.detail_type:
        errored = IntegrationErrored.model_validate(detail)
        key = f"{errored.connection_id}:{errored.occurred_at.isoformat()}"
        return _queued(_notified(errored, errored.agency_id, errored.client_id, key, errored.occurred_at))
    logger.info("platform event ignored", extra={"detail_type": detail_type})
    return {"status": "ignored"}


def _notified(
    event: PlatformEvent, agency_id: str, client_id: str | None, event_id: str, occurred_at: datetime
) -> list[SyncJob]:
    """Keep the event in the outbox of each connection that announces it; their delivery jobs."""
    jobs = container.notifier.notify(
        event, agency_id=agency_id, client_id=client_id, event_id=event_id, occurred_at=occurred_at
    )
    logger.info("notification kept", extra={"detail_type": event.detail_type, "connections": len(jobs)})
    return jobs


def _queued(jobs: list[SyncJob]) -> dict[str, str]:
    failed = container.jobs.send_many(jobs)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} jobs could not be queued")
    logger.info("platform event projected", extra={"push_jobs": len(jobs)})
    return {"status": "applied", "push_jobs": str(len(jobs))}


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if "Records" in event:
        from aws_lambda_powertools.utilities.batch import process_partial_response

        return process_partial_response(
            event=event,
            record_handler=record_handler,
            processor=processor(),
            context=context,
        )
    return platform_event(event)


coldstart.loaded()
