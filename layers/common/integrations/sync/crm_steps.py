"""The worker's CRM steps: a contact pull run, a contact upsert and a call log, for one connection.

Each holds the connection's lease (the pull under "sync", writes under the push lease), reads the
connection's CRM adapter from its provider folder, and settles failures through the fault table like
a calendar run. A write that meets a lost grant or a missing setting is not dropped: the job waits
(re-queued every `WAIT_FOR_OWNER_SECONDS`) and runs once the owner has reconnected or fixed the config.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from integrations.domain.connection import Connection
from integrations.events import PlatformEvent
from integrations.sync.contacts import CONTACTS_CURSOR, CrmSync
from integrations.sync.crm import ContactPage, CrmAdapter
from integrations.sync.faults import FaultKind, classify
from integrations.sync.import_progress import CURSOR_KEY as IMPORT_KEY
from integrations.sync.import_progress import ImportProgress
from integrations.sync.intervals import DEFAULT_INTERVAL_MINUTES
from integrations.sync.jobs import SyncJob
from integrations.sync.settle import (
    ConnectionState,
    Leases,
    Outcome,
    RunResult,
    first_change,
    settle_failure,
)

BUSY_DEFER_SECONDS = 20.0
BUSY_WRITE_DEFER_SECONDS = 5.0
# A write waiting for its owner looks again this often (SQS's longest delay)...
WAIT_FOR_OWNER_SECONDS = 900.0
# ...for this long, then it is given up (logged; the next change of the contact writes it anyway).
WAIT_FOR_OWNER_LIMIT = timedelta(days=14)
SAFETY_MARGIN_MS = 10_000
_WAITING = (FaultKind.REAUTH, FaultKind.CONFIG)


class CrmAdapters(Protocol):
    """sync.crm_sources.ProviderCrms"""

    def has_crm(self, connection: Connection) -> bool: ...

    def adapter(self, connection: Connection) -> CrmAdapter | None: ...


def _covered(connection: Connection, job: SyncJob) -> bool:
    """A run that began after the job arrived has completed: a burst of hints is one re-read."""
    started, finished = connection.sync_started_at, connection.last_sync_at
    return (
        job.hint.get("reason") != "continue"
        and started is not None
        and finished is not None
        and job.received_at < started <= finished
    )


class CrmSteps:
    """Runs SYNC, PUSH_CONTACT and LOG_CALL jobs of CRM connections; one instance per process."""

    def __init__(
        self,
        *,
        connections: ConnectionState,
        sync_leases: Leases,
        write_leases: Leases,
        adapters: CrmAdapters,
        crm: CrmSync,
        clock: Callable[[], datetime],
        publish: Callable[[Sequence[PlatformEvent]], None] = lambda events: None,
        interval: timedelta = timedelta(minutes=DEFAULT_INTERVAL_MINUTES),
    ) -> None:
        self._connections = connections
        self._sync_leases = sync_leases
        self._write_leases = write_leases
        self._adapters = adapters
        self._crm = crm
        self._clock = clock
        self._publish = publish
        self._interval = interval
        # Per connection, when the provider's last 429 said to come back (this process only): the
        # jobs behind the refused one wait too instead of each drawing its own 429.
        self._limited_until: dict[str, datetime] = {}

    def handles(self, connection: Connection) -> bool:
        """Whether the connection is a CRM (its SYNC jobs are contact pulls)."""
        return self._adapters.has_crm(connection)

    # --- the pull ---

    def pull(
        self, job: SyncJob, connection: Connection, attempts: int, remaining_ms: Callable[[], int]
    ) -> RunResult:
        """Read the contacts changed since the cursor as far as time allows."""
        if connection.waits_for_person:
            return RunResult(Outcome.DONE, reason="waiting for the owner")
        adapter = self._adapters.adapter(connection)
        if adapter is None:
            return RunResult(Outcome.DONE, reason="nothing to read")
        # A deletion is the one hint a later run does not cover: its search cannot see it.
        gone = adapter.deleted_in_hint(job.hint)
        if gone is None and _covered(connection, job):
            return RunResult(Outcome.DONE, reason="covered by a later run")
        waiting = self._still_limited(connection.id)
        if waiting is not None:
            return waiting
        holder = uuid.uuid4().hex
        seconds = max(30.0, remaining_ms() / 1000 + 30)
        if not self._sync_leases.acquire(connection.id, holder, self._clock().timestamp(), seconds).acquired:
            return RunResult(Outcome.DEFER, BUSY_DEFER_SECONDS, reason="another run holds the connection")
        try:
            return self._pull_leased(connection, adapter, attempts, remaining_ms, [gone] if gone else [])
        finally:
            self._sync_leases.release(connection.id, holder)

    def _pull_leased(
        self,
        connection: Connection,
        adapter: CrmAdapter,
        attempts: int,
        remaining_ms: Callable[[], int],
        hinted: list[str],
    ) -> RunResult:
        now = self._clock()
        self._connections.apply(connection.id, lambda c: c.sync_started(now, now + self._interval_of(c)))
        cursor = connection.cursors.get(CONTACTS_CURSOR)
        # The first pull is the import, which the card and the bus follow page by page.
        importing = ImportProgress.begins(connection, now)

        def checkpoint(page: ContactPage) -> None:
            nonlocal importing
            if importing is not None:
                importing = importing.after_page(len(page.contacts), page.total)
            self._checkpoint(connection, page.cursor, importing)

        try:
            reread = self._crm.reread(connection, adapter, hinted)
            result = self._crm.pull(
                connection,
                adapter,
                cursor if isinstance(cursor, dict) else None,
                checkpoint,
                lambda: remaining_ms() > SAFETY_MARGIN_MS,
            )
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            settled = settle_failure(
                self._connections, connection, error, attempts=attempts, now=self._clock()
            )
            self._note_limit(connection.id, error, settled)
            return settled
        changes = reread + result.changes
        if not result.done:
            paused = self._clock()
            self._connections.apply(connection.id, lambda c: c.sync_paused(paused))
            if result.wait_seconds is not None:
                # Not a failure: the import gives live writes room in the provider's rate window.
                return RunResult(
                    Outcome.DEFER, result.wait_seconds, changes, "pacing the provider's rate limit"
                )
            return RunResult(Outcome.CONTINUE, changes=changes, reason="out of time")
        finished = self._clock()
        done = importing.finished(finished) if importing is not None else None
        kept = {IMPORT_KEY: done.model_dump(mode="json")} if done is not None else {}
        self._connections.apply(
            connection.id,
            lambda c: first_change(
                c.provider_succeeded(finished),
                c.sync_succeeded(finished, kept, finished + self._interval_of(c)),
            ),
        )
        if done is not None:
            self._publish([done.event(connection)])
        return RunResult(Outcome.DONE, changes=changes)

    def _checkpoint(
        self, connection: Connection, cursor: dict[str, object], importing: ImportProgress | None
    ) -> None:
        """The cursor and, during the import, its progress: one write, so a resumed import counts on
        from exactly the page it resumes after."""
        now = self._clock()
        saved = {CONTACTS_CURSOR: cursor}
        if importing is not None:
            saved[IMPORT_KEY] = importing.model_dump(mode="json")
        self._connections.apply(connection.id, lambda c: c.cursor_saved_many(saved, now))
        if importing is not None:
            self._publish([importing.event(connection)])

    def _interval_of(self, connection: Connection) -> timedelta:
        minutes = connection.sync_interval_minutes
        return timedelta(minutes=minutes) if minutes else self._interval

    # --- the writes ---

    def push_contact(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        """Upsert (or delete) the job's platform contact in this CRM."""
        ids = [job.hint.get(k) for k in ("agency_id", "client_id", "contact_id")]
        if not all(isinstance(v, str) and v for v in ids):
            return RunResult(Outcome.FAIL, reason="The contact job names no contact.")
        agency_id, client_id, contact_id = (str(v) for v in ids)
        return self._write(
            job,
            connection,
            attempts,
            lambda adapter: self._crm.push_contact(connection, adapter, agency_id, client_id, contact_id),
        )

    def log_call(self, job: SyncJob, connection: Connection, attempts: int) -> RunResult:
        """Log the job's call on its contact in this CRM and move the deal."""
        agency_id, call_id = job.hint.get("agency_id"), job.hint.get("call_id")
        if not (isinstance(agency_id, str) and agency_id and isinstance(call_id, str) and call_id):
            return RunResult(Outcome.FAIL, reason="The call job names no call.")
        return self._write(
            job,
            connection,
            attempts,
            lambda adapter: self._crm.log_call(connection, adapter, agency_id, call_id),
        )

    def _write(
        self, job: SyncJob, connection: Connection, attempts: int, step: Callable[[CrmAdapter], str]
    ) -> RunResult:
        if connection.waits_for_person:
            return self._wait(job, "waiting for the owner to reconnect or fix the settings")
        adapter = self._adapters.adapter(connection)
        if adapter is None:
            return RunResult(Outcome.DONE, reason="the provider is no CRM")
        waiting = self._still_limited(connection.id)
        if waiting is not None:
            return waiting
        holder = uuid.uuid4().hex
        if not self._write_leases.acquire(connection.id, holder, self._clock().timestamp(), 120).acquired:
            return RunResult(
                Outcome.DEFER, BUSY_WRITE_DEFER_SECONDS, reason="another write holds the connection"
            )
        try:
            outcome = step(adapter)
        except Exception as error:  # every failure is classified; nothing escapes unexamined
            result = settle_failure(
                self._connections, connection, error, attempts=attempts, now=self._clock()
            )
            self._note_limit(connection.id, error, result)
            if classify(error).kind in _WAITING:
                return self._wait(job, result.reason)
            return result
        finally:
            self._write_leases.release(connection.id, holder)
        if connection.consecutive_failures:
            now = self._clock()
            self._connections.apply(connection.id, lambda c: c.provider_succeeded(now))
        return RunResult(
            Outcome.DONE, changes=1 if outcome in ("written", "deleted", "logged") else 0, reason=outcome
        )

    def _still_limited(self, connection_id: str) -> RunResult | None:
        until = self._limited_until.get(connection_id)
        if until is None:
            return None
        left = (until - self._clock()).total_seconds()
        if left <= 0:
            del self._limited_until[connection_id]
            return None
        return RunResult(Outcome.DEFER, left, reason="the provider asked to wait")

    def _note_limit(self, connection_id: str, error: Exception, result: RunResult) -> None:
        if classify(error).kind is FaultKind.RATE_LIMITED:
            self._limited_until[connection_id] = self._clock() + timedelta(seconds=result.delay_seconds)

    def _wait(self, job: SyncJob, reason: str) -> RunResult:
        """Keep the write for when the owner has acted; give it up after WAIT_FOR_OWNER_LIMIT."""
        now = self._clock()
        since = job.hint.get("waiting_since")
        if isinstance(since, str):
            if now - datetime.fromisoformat(since) > WAIT_FOR_OWNER_LIMIT:
                return RunResult(Outcome.DONE, reason="gave up waiting for the owner")
        else:
            since = now.isoformat()
        return RunResult(Outcome.DEFER, WAIT_FOR_OWNER_SECONDS, reason=reason, carry={"waiting_since": since})
