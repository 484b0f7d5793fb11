"""The one job model on the sync queue, produced by webhooks, the scheduler and connect."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.connection import utcnow


class JobKind(StrEnum):
    SYNC = "sync"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a job kind, not a secret
    RENEW_SUBSCRIPTION = "renew_subscription"
    # Write one appointment's current version to one connection's calendar (or delete it there).
    PUSH_APPOINTMENT = "push_appointment"
    # Replay the owner's upcoming appointments into one connection's calendar ("Push existing data").
    PUSH_EXISTING = "push_existing"


class SyncJob(BaseModel):
    """A payload is a hint: the worker re-reads current state from the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: JobKind
    connection_id: str
    provider: str
    hint: dict[str, Any] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=utcnow)


class JobSink(Protocol):
    """Where jobs go (store.queue): a failure raises, so callers never acknowledge what was not queued."""

    def send(self, job: SyncJob) -> None: ...

    def send_many(self, jobs: list[SyncJob]) -> list[SyncJob]:
        """Send every job; returns the ones that were not accepted (the caller retries them)."""
        ...
