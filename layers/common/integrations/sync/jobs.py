"""The one job model on the sync queue, produced by webhooks, the scheduler and connect."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.clock import utcnow


class JobKind(StrEnum):
    SYNC = "sync"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a job kind, not a secret
    RENEW_SUBSCRIPTION = "renew_subscription"
    # The provider removed one push subscription (hint `subscription_id`): make it again at once.
    RECREATE_SUBSCRIPTION = "recreate_subscription"
    # The provider asks to confirm one push subscription with a valid token (hint `subscription_id`).
    REAUTHORIZE_SUBSCRIPTION = "reauthorize_subscription"
    # Write one appointment's current version to one connection's calendar (or delete it there).
    PUSH_APPOINTMENT = "push_appointment"
    # Replay the owner's upcoming appointments into one connection's calendar ("Push existing data").
    PUSH_EXISTING = "push_existing"
    # Upsert (or delete) one platform contact in one CRM connection.
    PUSH_CONTACT = "push_contact"
    # Log one finished call on its contact in one CRM connection and move the deal.
    LOG_CALL = "log_call"
    # Deliver the connection's waiting notifications, in order (a chat channel).
    NOTIFY = "notify"
    # Send one requested mail from one mailbox (at most once per request id).
    SEND_EMAIL = "send_email"


class SyncJob(BaseModel):
    """A payload is a hint: the worker re-reads current state from the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: JobKind
    connection_id: str
    provider: str
    hint: dict[str, Any] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=utcnow)

    @property
    def attempt(self) -> int:
        """Failed runs before this delivery: a retried job is a new message, so SQS's receive count
        restarts, and this count carries on (poison detection)."""
        value = self.hint.get("attempt", 0)
        return value if isinstance(value, int) and value >= 0 else 0

    def again(self, now: datetime, *, reason: str, failed: bool) -> SyncJob:
        """The same job queued anew: received now (so a run that starts later still covers it), with
        the reason, and one more attempt when this run failed."""
        hint = {**self.hint, "reason": reason, "attempt": self.attempt + (1 if failed else 0)}
        return self.model_copy(update={"hint": hint, "received_at": now})


class JobSink(Protocol):
    """Where jobs go (store.queue): a failure raises, so callers never acknowledge what was not queued."""

    def send(self, job: SyncJob, delay_seconds: int = 0) -> None:
        """Queue one job, visible after `delay_seconds` (at most 900, SQS's limit)."""
        ...

    def send_many(self, jobs: list[SyncJob]) -> list[SyncJob]:
        """Send every job; returns the ones that were not accepted (the caller retries them)."""
        ...
