"""The worker's side of a job: run the step its kind names, then do what the step's outcome says.

Outcomes on the queue (design §8, Faults):

- DONE: the job is acknowledged.
- DEFER (Retry-After, backoff, a busy connection): the job is queued again with the wait as its
  delay, and this delivery acknowledged: waiting is not a failure, so it never counts toward the
  queue's redrive limit. A failed run counts in the job's own `attempt` instead.
- CONTINUE (out of time with pages left): a continuation is queued at once; the checkpoint says
  where it goes on.
- FAIL (poison): the job goes to the dead-letter queue, and the connection already says
  `sync_failed`.

If queueing the follow-up fails, `handle` raises: the delivery is reported failed and SQS delivers
it again, so nothing is lost (at least once; every step is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from integrations.domain.agency import PAUSED_BY_AGENCY
from integrations.sync.intervals import DEFAULT_INTERVAL_MINUTES
from integrations.sync.jobs import JobKind, JobSink, SyncJob
from integrations.sync.settle import ConnectionState, Outcome, RunResult, settle_failure

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from integrations.domain.connection import Connection
    from integrations.sync.crm_steps import CrmSteps
    from integrations.sync.mail_steps import MailSteps
    from integrations.sync.pushing import PushSteps
    from integrations.sync.runner import SyncRunner
    from integrations.sync.steps import ProviderStep, StepRunner

# A connection that reads nothing (or is paused) is still offered daily: its grant is refreshed
# (Google revokes refresh tokens left unused for six months) and its push channels renewed.
MAINTENANCE_INTERVAL = timedelta(days=1)


# Jobs done once maintenance has run; the last two also work on the subscription the provider named.
_REPAIR_KINDS = frozenset({JobKind.RECREATE_SUBSCRIPTION, JobKind.REAUTHORIZE_SUBSCRIPTION})
_MAINTENANCE_KINDS = frozenset({JobKind.REFRESH_TOKEN, JobKind.RENEW_SUBSCRIPTION, *_REPAIR_KINDS})


class DeadLetters(Protocol):
    """Where poison jobs go (store.queue.SqsDeadLetters)."""

    def send(self, job: SyncJob, reason: str) -> None: ...


class PoisonJob(RuntimeError):
    """A poison job with nowhere to go but the queue's own redrive: the delivery fails."""


class Maintenance(Protocol):
    """Keeps a connection's grant and push subscriptions alive (sync.maintenance.Maintenance)."""

    def run(self, connection: Connection) -> None: ...


class SubscriptionRepair(Protocol):
    """Work on one push subscription the provider named (connections.resubscribe via the container)."""

    def recreate(self, connection: Connection, subscription_id: str) -> int: ...

    def reauthorize(self, connection: Connection, subscription_id: str) -> int: ...


class SyncWorker:
    def __init__(
        self,
        *,
        connections: ConnectionState,
        runner: SyncRunner,
        pushes: PushSteps,
        maintenance: Maintenance,
        jobs: JobSink,
        dead_letters: DeadLetters | None,
        clock: Callable[[], datetime],
        logger: Logger,
        crm: CrmSteps | None = None,
        steps: StepRunner | None = None,
        step_for: Callable[[Connection], ProviderStep | None] = lambda connection: None,
        stopped_by_agency: Callable[[Connection], bool] = lambda connection: False,
        mail: MailSteps | None = None,
        subscriptions: SubscriptionRepair | None = None,
    ) -> None:
        self._mail = mail
        self._subscriptions = subscriptions
        self._stopped_by_agency = stopped_by_agency
        self._steps = steps
        self._step_for = step_for
        self._connections = connections
        self._crm = crm
        self._runner = runner
        self._pushes = pushes
        self._maintenance = maintenance
        self._jobs = jobs
        self._dead_letters = dead_letters
        self._clock = clock
        self._log = logger

    def handle(self, job: SyncJob, *, receive_count: int = 1, remaining_ms: Callable[[], int]) -> RunResult:
        """Run one job and queue what its outcome needs. Raising makes SQS deliver it again."""
        result = self._run(job, job.attempt + receive_count, remaining_ms)
        self._follow_up(job, result)
        self._log.info(
            "job finished",
            extra={
                "kind": job.kind.value,
                "outcome": result.outcome.value,
                "changes": result.changes,
                "reason": result.reason,
                "delay_seconds": round(result.delay_seconds, 1),
            },
        )
        return result

    def _run(self, job: SyncJob, attempts: int, remaining_ms: Callable[[], int]) -> RunResult:
        connection = self._connections.get(job.connection_id)
        if connection is None:
            # Disconnected since the job was queued: nothing to do, and nothing to retry.
            return RunResult(Outcome.DONE, reason="connection removed")
        if job.kind is JobKind.PUSH_APPOINTMENT:
            return self._unless_paused(
                connection, lambda: self._pushes.push_appointment(job, connection, attempts)
            )
        if job.kind is JobKind.PUSH_EXISTING:
            return self._unless_paused(
                connection, lambda: self._pushes.push_existing(job, connection, attempts, remaining_ms)
            )
        if job.kind in (JobKind.PUSH_CONTACT, JobKind.LOG_CALL):
            return self._unless_paused(connection, lambda: self._crm_write(job, connection, attempts))
        if job.kind is JobKind.SEND_EMAIL:
            return self._send_mail(job, connection, attempts)
        try:
            self._maintenance.run(connection)
        except Exception as error:  # a lost grant or a provider outage settles like a failed sync
            return settle_failure(self._connections, connection, error, attempts=attempts, now=self._clock())
        if job.kind in _MAINTENANCE_KINDS:
            return self._repair(job, connection, attempts)
        if connection.paused:
            self._schedule(connection, MAINTENANCE_INTERVAL)
            return RunResult(Outcome.DONE, reason="paused by the owner")
        if self._stopped_by_agency(connection):
            # Looked at again after one interval, so switching the setting back on resumes promptly.
            self._schedule(connection, self._interval_of(connection))
            return RunResult(Outcome.DONE, reason=PAUSED_BY_AGENCY)
        return self._pull(job, connection, attempts, remaining_ms)

    def _repair(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        """After maintenance: recreate or reauthorize the subscription the provider named, at once
        (not when it comes close to expiry)."""
        subscription_id = job.hint.get("subscription_id")
        if (
            job.kind not in _REPAIR_KINDS
            or self._subscriptions is None
            or not isinstance(subscription_id, str)
            or not subscription_id
        ):
            return RunResult(Outcome.DONE, reason="maintained")
        try:
            if job.kind is JobKind.RECREATE_SUBSCRIPTION:
                done = self._subscriptions.recreate(connection, subscription_id)
                return RunResult(Outcome.DONE, reason="subscription recreated" if done else "maintained")
            done = self._subscriptions.reauthorize(connection, subscription_id)
            return RunResult(Outcome.DONE, reason="subscription reauthorized" if done else "maintained")
        except Exception as error:  # retried like a failed sync; the card keeps its notice meanwhile
            return settle_failure(self._connections, connection, error, attempts=attempts, now=self._clock())

    def _pull(
        self, job: SyncJob, connection: Connection, attempts: int, remaining_ms: Callable[[], int]
    ) -> RunResult:
        """A SYNC job: the CRM's contact pull, the mailbox's mail pull, or the connection's read."""
        if self._crm is not None and self._crm.handles(connection):
            return self._crm.pull(job, connection, attempts, remaining_ms)
        if self._mail is not None and self._mail.handles(connection):
            return self._mail.pull(job, connection, attempts, remaining_ms)
        return self._read(job, connection, attempts, remaining_ms)

    def _send_mail(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        # Not held back by a pause: pausing stops reading the mailbox, not the person's own sends.
        if self._mail is None:
            return RunResult(Outcome.DONE, reason="no mail steps in this process")
        return self._mail.send(job, connection, attempts)

    def _read(
        self, job: SyncJob, connection: Connection, attempts: int, remaining_ms: Callable[[], int]
    ) -> RunResult:
        """The connection's own step (bookings, notifications), else the calendar run."""
        step = self._step_for(connection) if self._steps is not None else None
        if step is not None and self._steps is not None:
            return self._steps.run(job, connection, step, attempts, remaining_ms)
        result = self._runner.run(job, receive_count=attempts, remaining_ms=remaining_ms)
        if result.reason == "nothing to read":
            self._schedule(connection, MAINTENANCE_INTERVAL)
        return result

    def _crm_write(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        if self._crm is None:
            return RunResult(Outcome.DONE, reason="no CRM steps in this process")
        if job.kind is JobKind.PUSH_CONTACT:
            return self._crm.push_contact(job, connection, attempts)
        return self._crm.log_call(job, connection, attempts)

    def _unless_paused(self, connection: Connection, step: Callable[[], RunResult]) -> RunResult:
        # A paused connection takes no writes; "Push existing data" catches it up after resuming.
        if connection.paused:
            return RunResult(Outcome.DONE, reason="paused by the owner")
        if self._stopped_by_agency(connection):
            return RunResult(Outcome.DONE, reason=PAUSED_BY_AGENCY)
        return step()

    def _interval_of(self, connection: Connection) -> timedelta:
        return timedelta(minutes=connection.sync_interval_minutes or DEFAULT_INTERVAL_MINUTES)

    def _schedule(self, connection: Connection, after: timedelta) -> None:
        now = self._clock()
        self._connections.apply(connection.id, lambda c: c.sync_scheduled(now + after, now))

    def _follow_up(self, job: SyncJob, result: RunResult) -> None:
        now = self._clock()
        if result.outcome is Outcome.DEFER:
            again = job.again(now, reason="retry", failed=result.failed)
            if result.carry:
                again = again.model_copy(update={"hint": {**again.hint, **result.carry}})
            self._jobs.send(again, delay_seconds=round(result.delay_seconds))
        elif result.outcome is Outcome.CONTINUE:
            self._jobs.send(job.again(now, reason="continue", failed=False))
        elif result.outcome is Outcome.FAIL:
            if self._dead_letters is None:
                raise PoisonJob(result.reason)
            self._dead_letters.send(job, result.reason)
