"""Find connections that are due and queue one job each, claimed so two runs never queue the same one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from integrations.sync.jobs import JobKind, JobSink, SyncJob

# A claimed connection is not offered again for this long, unless the worker reschedules it sooner.
CLAIM_FOR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class DueClaim:
    """A due connection this run claimed: nobody else queues it until the claim runs out."""

    connection_id: str
    provider: str


class DueConnections(Protocol):
    """The due-sync index (store.due): reads only what is due, claims each one atomically."""

    def claim_due(self, now: datetime, claim_until: datetime, limit_per_shard: int) -> list[DueClaim]:
        """Connections due at `now`, each claimed until `claim_until`; others' claims are left out."""
        ...


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    queued: int
    failed: int


class SyncScheduler:
    def __init__(self, due: DueConnections, jobs: JobSink) -> None:
        self._due = due
        self._jobs = jobs

    def run(self, now: datetime, limit_per_shard: int = 100) -> ScheduleResult:
        """Claim what is due and queue one sync job for each claimed connection."""
        claims = self._due.claim_due(now, now + CLAIM_FOR, limit_per_shard)
        jobs = [
            SyncJob(
                kind=JobKind.SYNC,
                connection_id=claim.connection_id,
                provider=claim.provider,
                hint={"reason": "scheduled"},
                received_at=now,
            )
            for claim in claims
        ]
        failed = self._jobs.send_many(jobs)
        return ScheduleResult(queued=len(jobs) - len(failed), failed=len(failed))
