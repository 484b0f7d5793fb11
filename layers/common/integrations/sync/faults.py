"""What the sync engine does when a provider call fails: one table, no I/O (design §8, Faults).

| failure                                  | action                                                   |
|------------------------------------------|----------------------------------------------------------|
| 429 / rate limited, with Retry-After     | defer the job by Retry-After (visibility), not a failure |
| 5xx, timeout, connection reset           | back off with jitter; `provider_unavailable` only after  |
|                                          | `SUSTAINED_FAILURES` in a row; Recovered on next success |
| 401, invalid_grant, revoked              | `reauth_required` at once; the job ends                  |
| expired cursor (Google 410, Gmail 404,   | full resync of that scope (no duplicate, orphans deleted)|
| Graph 410 syncStateNotFound, CalDAV 403) |                                                          |
| anything else, or a job seen too often   | poison: to the DLQ, and `sync_failed` with a message     |

The worker classifies the exception it caught into a `Fault`, asks `decide()` for an `Action`, and
carries it out; it never looks at a provider id or an HTTP status itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.sync.errors import ConfigRequired, CursorExpired

# A run of this many transient failures turns the card to `error` / `provider_unavailable`.
SUSTAINED_FAILURES = 5
# Backoff: base * 2**(failures-1), capped, full jitter (AWS Architecture Blog, "Exponential Backoff
# And Jitter"); SQS caps a message's visibility timeout at 12 hours, we stay far below it.
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 900.0
# Retry-After beyond this is clamped: a deferred job is re-queued with the wait as its delay, and SQS
# delays a message by 15 minutes at most (a longer wait is simply deferred again).
MAX_DEFER_SECONDS = 900.0
# SQS receive count after which a job that keeps failing unexpectedly is poison.
POISON_RECEIVES = 5


class FaultKind(StrEnum):
    """Why a provider call (or a step around it) failed, as the engine sees it."""

    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    REAUTH = "reauth"
    CURSOR_EXPIRED = "cursor_expired"
    CONFIG = "config"
    UNEXPECTED = "unexpected"


class ActionKind(StrEnum):
    """What the worker does about a fault."""

    # Make the job visible again after `delay_seconds`; the connection's health is untouched.
    DEFER = "defer"
    # Count a transient failure, then retry after `delay_seconds`.
    BACKOFF = "backoff"
    # Mark the connection `reauth_required`; acknowledge the job (retrying cannot help).
    REAUTH = "reauth"
    # Drop the cursor of the failing scope and run a full resync now.
    FULL_RESYNC = "full_resync"
    # Mark the connection `config_required`; acknowledge (the action waits for the config fix).
    CONFIG_REQUIRED = "config_required"
    # Dead-letter the job and mark the connection `sync_failed`.
    POISON = "poison"


@dataclass(frozen=True, slots=True)
class Fault:
    """A classified failure. `retry_after` is the provider's own wait, when it sent one."""

    kind: FaultKind
    message: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    delay_seconds: float = 0.0
    message: str = ""


def backoff_delay(failures: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff for the `failures`-th consecutive failure (1-based)."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, failures - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def decide(fault: Fault, *, failures: int, receive_count: int, rng: random.Random | None = None) -> Action:
    """The action for `fault`, given the connection's consecutive failures so far (this one included)
    and how often SQS has delivered this job."""
    if fault.kind is FaultKind.RATE_LIMITED:
        wait = fault.retry_after if fault.retry_after is not None else backoff_delay(1, rng)
        return Action(ActionKind.DEFER, min(MAX_DEFER_SECONDS, max(1.0, wait)), fault.message)
    if fault.kind is FaultKind.UNAVAILABLE:
        return Action(ActionKind.BACKOFF, backoff_delay(failures, rng), fault.message)
    if fault.kind is FaultKind.REAUTH:
        return Action(ActionKind.REAUTH, message=fault.message)
    if fault.kind is FaultKind.CURSOR_EXPIRED:
        return Action(ActionKind.FULL_RESYNC, message=fault.message)
    if fault.kind is FaultKind.CONFIG:
        return Action(ActionKind.CONFIG_REQUIRED, message=fault.message)
    if receive_count >= POISON_RECEIVES:
        return Action(ActionKind.POISON, message=fault.message)
    # An unexpected error may be a passing glitch: retry like a transient failure until it is poison.
    return Action(ActionKind.BACKOFF, backoff_delay(receive_count, rng), fault.message)


def is_sustained(failures: int) -> bool:
    """Whether a run of transient failures is long enough to tell the person."""
    return failures >= SUSTAINED_FAILURES


def classify(error: BaseException) -> Fault:
    """The engine's view of an exception raised by an adapter or the token manager."""
    from integrations.http import ProviderApiError, RateLimited

    message = getattr(error, "message", None) or type(error).__name__
    if isinstance(error, RateLimited):
        return Fault(FaultKind.RATE_LIMITED, message, error.retry_after)
    # A 403 that is really a rate limit (Google's `rateLimitExceeded`) is the adapter's to translate
    # into RateLimited: only the provider's folder knows its error bodies.
    if isinstance(error, ReauthRequired) or (
        isinstance(error, ProviderApiError) and error.status in (401, 403)
    ):
        return Fault(FaultKind.REAUTH, "The provider no longer accepts this connection's grant.")
    if isinstance(error, CursorExpired):
        return Fault(FaultKind.CURSOR_EXPIRED, message)
    if isinstance(error, ConfigRequired):
        return Fault(FaultKind.CONFIG, message)
    if isinstance(error, ProviderUnavailable):
        return Fault(FaultKind.UNAVAILABLE, message)
    # The class only: an unexpected exception's text may quote provider data.
    return Fault(FaultKind.UNEXPECTED, f"Sync failed unexpectedly ({type(error).__name__}).")
