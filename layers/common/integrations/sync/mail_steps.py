"""The worker's mailbox steps: a pull run (SYNC) and a send (SEND_EMAIL), for one mailbox connection.

A pull holds the connection's sync lease, coalesces pushes (a push that arrived before the last
completed run began is covered by it: Gmail's notification is only a wake-up, the run reads from the
stored cursor), checkpoints after every page, and settles failures through the fault table like a
calendar run. Sends are `sync.mail_send`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from integrations.sync.intervals import DEFAULT_INTERVAL_MINUTES
from integrations.sync.mail import MAIL_CURSOR, MailboxAdapter, MailboxPuller, MailCursor
from integrations.sync.mail_events import MailPublisher
from integrations.sync.settle import (
    ConnectionState,
    Leases,
    Outcome,
    RunResult,
    first_change,
    settle_failure,
)
from integrations.sync.steps import OnceLedger, publish_once

if TYPE_CHECKING:
    from integrations.domain.connection import Connection
    from integrations.events import PlatformEvent
    from integrations.mail.ports import MailContacts, MailLogger
    from integrations.sync.jobs import SyncJob
    from integrations.sync.mail_send import MailSender

BUSY_DEFER_SECONDS = 20.0
SAFETY_MARGIN_MS = 10_000


class Mailboxes(Protocol):
    """sync.mail_sources.ProviderMailboxes"""

    def is_mailbox(self, connection: Connection) -> bool: ...

    def adapter(self, connection: Connection) -> MailboxAdapter | None: ...


def _covered(connection: Connection, job: SyncJob) -> bool:
    """A run that began after the job arrived has completed: a burst of pushes is one pull."""
    started, finished = connection.sync_started_at, connection.last_sync_at
    return (
        job.hint.get("reason") != "continue"
        and started is not None
        and finished is not None
        and job.received_at < started <= finished
    )


class MailSteps:
    """Runs SYNC and SEND_EMAIL jobs of mailbox connections; one instance per process."""

    def __init__(
        self,
        *,
        connections: ConnectionState,
        leases: Leases,
        mailboxes: Mailboxes,
        contacts: MailContacts,
        logger: MailLogger,
        ledger: OnceLedger,
        publish: Callable[[Sequence[PlatformEvent]], None],
        sender: MailSender | None,
        clock: Callable[[], datetime],
        interval: timedelta = timedelta(minutes=DEFAULT_INTERVAL_MINUTES),
    ) -> None:
        self._connections = connections
        self._leases = leases
        self._mailboxes = mailboxes
        self._contacts = contacts
        self._logger = logger
        self._ledger = ledger
        self._publish = publish
        self._sender = sender
        self._clock = clock
        self._interval = interval

    def handles(self, connection: Connection) -> bool:
        """Whether the connection is a mailbox (its SYNC jobs are mail pulls)."""
        return self._mailboxes.is_mailbox(connection)

    def send(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        """Send the job's requested mail from this mailbox (at most once per request id)."""
        if self._sender is None:
            return RunResult(Outcome.DONE, reason="no mail sender in this process")
        return self._sender.run(job, connection, attempts)

    def pull(
        self, job: SyncJob, connection: Connection, attempts: int, remaining_ms: Callable[[], int]
    ) -> RunResult:
        """Read what the mailbox received and sent since the cursor, as far as time allows."""
        if connection.waits_for_person:
            return RunResult(Outcome.DONE, reason="waiting for the owner")
        if _covered(connection, job):
            return RunResult(Outcome.DONE, reason="covered by a later run")
        adapter = self._mailboxes.adapter(connection)
        if adapter is None:
            return RunResult(Outcome.DONE, reason="nothing to read")
        holder = uuid.uuid4().hex
        seconds = max(30.0, remaining_ms() / 1000 + 30)
        if not self._leases.acquire(connection.id, holder, self._clock().timestamp(), seconds).acquired:
            return RunResult(Outcome.DEFER, BUSY_DEFER_SECONDS, reason="another run holds the connection")
        try:
            return self._pull_leased(connection, adapter, attempts, remaining_ms)
        finally:
            self._leases.release(connection.id, holder)

    def _pull_leased(
        self, connection: Connection, adapter: MailboxAdapter, attempts: int, remaining_ms: Callable[[], int]
    ) -> RunResult:
        now = self._clock()
        self._connections.apply(connection.id, lambda c: c.sync_started(now, now + self._interval_of(c)))
        publisher = MailPublisher(
            connection=connection,
            contacts=self._contacts,
            logger=self._logger,
            publish_once=lambda key, events: publish_once(
                self._ledger, self._publish, connection, self._clock(), key, events
            ),
        )
        puller = MailboxPuller(
            deliver=publisher.deliver,
            checkpoint=lambda cursor: self._checkpoint(connection.id, cursor),
            clock=self._clock,
        )
        try:
            result = puller.pull(
                adapter,
                MailCursor.of(connection.cursors.get(MAIL_CURSOR)),
                lambda: remaining_ms() > SAFETY_MARGIN_MS,
            )
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            return settle_failure(self._connections, connection, error, attempts=attempts, now=self._clock())
        if not result.done:
            paused = self._clock()
            self._connections.apply(connection.id, lambda c: c.sync_paused(paused))
            return RunResult(Outcome.CONTINUE, changes=result.published, reason="out of time")
        finished = self._clock()
        self._connections.apply(
            connection.id,
            lambda c: first_change(
                c.provider_succeeded(finished),
                c.sync_succeeded(finished, {}, finished + self._interval_of(c)),
            ),
        )
        return RunResult(Outcome.DONE, changes=result.published)

    def _checkpoint(self, connection_id: str, cursor: MailCursor) -> None:
        now = self._clock()
        self._connections.apply(connection_id, lambda c: c.cursor_saved(MAIL_CURSOR, cursor.to_json(), now))

    def _interval_of(self, connection: Connection) -> timedelta:
        minutes = connection.sync_interval_minutes
        return timedelta(minutes=minutes) if minutes else self._interval
