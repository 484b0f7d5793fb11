"""What every sync step answers the worker, and how a failed step settles on the connection.

A step (a calendar run, an appointment push, a push-existing replay) returns a `RunResult`; the worker
turns its `Outcome` into what happens to the job on the queue. A step that fails hands the exception
to `settle_failure`, which classifies it through the fault table (`sync.faults`) and records the
matching transition on the connection, so every step treats a 429, a 5xx or a lost grant alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from integrations.domain.connection import Connection, ErrorCode, StatusChange
from integrations.domain.leases import LeaseOutcome
from integrations.sync.faults import SUSTAINED_FAILURES, ActionKind, classify, decide


class Outcome(StrEnum):
    # Acknowledge the job.
    DONE = "done"
    # Run the job again after `delay_seconds` (Retry-After, backoff, a busy connection); no failure.
    DEFER = "defer"
    # Out of time with work left: queue a continuation (the checkpoint says where to go on).
    CONTINUE = "continue"
    # Poison: dead-letter the job (the connection already says `sync_failed`).
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class RunResult:
    outcome: Outcome
    delay_seconds: float = 0.0
    changes: int = 0
    reason: str = ""
    # The run failed (a backoff): the retried job counts one more attempt toward poison.
    failed: bool = False
    # Added to the hint of the job queued again (e.g. since when a write waits for its owner).
    carry: dict[str, str] | None = None


class ConnectionState(Protocol):
    """Reads a connection, and changes it through a transition: saved with version retry, then the
    status events published (the connections package's `apply`)."""

    def get(self, connection_id: str) -> Connection | None: ...

    def apply(
        self, connection_id: str, transition: Callable[[Connection], StatusChange | None]
    ) -> Connection | None: ...


class Leases(Protocol):
    """Mutual exclusion per connection with expiry (a crashed holder's lease runs out)."""

    def acquire(self, connection_id: str, owner: str, now: float, seconds: float) -> LeaseOutcome: ...

    def release(self, connection_id: str, owner: str) -> None: ...


def first_change(*changes: StatusChange | None) -> StatusChange | None:
    """Several transitions in one save: the portal status moved from the first `before` to the last
    `after` (None when it ends where it began)."""
    real = [c for c in changes if c is not None]
    if not real:
        return None
    before, after = real[0].before, real[-1].after
    return None if before is after else StatusChange(before=before, after=after)


def settle_failure(
    state: ConnectionState,
    connection: Connection,
    error: Exception,
    *,
    attempts: int,
    now: datetime,
    changes: int = 0,
) -> RunResult:
    """Record what `error` means for the connection and say what to do with the job.

    `attempts` counts this job's deliveries so far, this one included (poison detection)."""
    fault = classify(error)
    action = decide(fault, failures=connection.consecutive_failures + 1, receive_count=attempts)
    if action.kind is ActionKind.DEFER:
        state.apply(connection.id, lambda c: c.sync_paused(now))
        return RunResult(Outcome.DEFER, action.delay_seconds, changes, fault.message)
    if action.kind is ActionKind.BACKOFF:
        state.apply(
            connection.id,
            lambda c: first_change(
                c.sync_paused(now), c.provider_failed(fault.message, now, SUSTAINED_FAILURES)
            ),
        )
        return RunResult(Outcome.DEFER, action.delay_seconds, changes, fault.message, failed=True)
    if action.kind is ActionKind.REAUTH:
        state.apply(
            connection.id,
            lambda c: first_change(
                c.sync_paused(now), c.auth_failed(ErrorCode.REAUTH_REQUIRED, fault.message, now)
            ),
        )
        return RunResult(Outcome.DONE, changes=changes, reason=fault.message)
    if action.kind is ActionKind.CONFIG_REQUIRED:
        state.apply(connection.id, lambda c: c.config_needed(fault.message, now))
        return RunResult(Outcome.DONE, changes=changes, reason=fault.message)
    state.apply(connection.id, lambda c: c.sync_failed(fault.message, now))
    return RunResult(Outcome.FAIL, changes=changes, reason=fault.message, failed=True)
