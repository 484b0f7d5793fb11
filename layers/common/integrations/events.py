"""Typed platform events (design §9): what this service publishes and what it consumes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.access import Level, Tier
from integrations.domain.connection import Connection, ErrorCode, PortalStatus, utcnow

SOURCE = "integrations"
PLATFORM_SOURCE = "platform"


class PlatformEvent(BaseModel):
    """Base of every event detail; `detail_type` is the EventBridge DetailType."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    detail_type: ClassVar[str]


class ConnectionRef(PlatformEvent):
    """Who and what a connection event is about. Never carries credentials."""

    connection_id: str
    provider: str
    level: Level
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    account_label: str = ""
    occurred_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def of(cls, connection: Connection, **extra: Any) -> Any:
        return cls(
            connection_id=connection.id,
            provider=connection.provider,
            level=connection.level,
            agency_id=connection.agency_id,
            client_id=connection.client_id,
            user_id=connection.user_id,
            account_label=connection.account.label,
            **extra,
        )


class IntegrationConnected(ConnectionRef):
    detail_type = "Integration Connected"
    reauthorized: bool = False


class IntegrationDisconnected(ConnectionRef):
    detail_type = "Integration Disconnected"


class IntegrationErrored(ConnectionRef):
    detail_type = "Integration Errored"
    error_code: ErrorCode
    message: str


class IntegrationRecovered(ConnectionRef):
    detail_type = "Integration Recovered"
    status: PortalStatus


class IntegrationConfigChanged(ConnectionRef):
    detail_type = "Integration Config Changed"
    config: dict[str, Any]


class CallRequested(PlatformEvent):
    """A provider workflow (GHL) asked the platform to place a call."""

    detail_type = "Call Requested"
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    contact_id: str | None = None
    phone: str | None = None
    name: str | None = None
    email: str | None = None
    workflow_id: str | None = None
    received_at: datetime = Field(default_factory=utcnow)


class CalendarEventChanged(PlatformEvent):
    detail_type = "Calendar Event Changed"
    connection_id: str
    provider: str
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    calendar_id: str
    event_id: str
    change: Literal["upserted", "deleted"]
    start: datetime | None = None
    end: datetime | None = None
    busy: bool = True


class AgencyPlanChanged(PlatformEvent):
    """In: the platform changed an agency's plan; the tier is never the agency's to set."""

    detail_type = "Agency Plan Changed"
    agency_id: str
    tier: Tier


OUTBOUND: tuple[type[PlatformEvent], ...] = (
    IntegrationConnected,
    IntegrationDisconnected,
    IntegrationErrored,
    IntegrationRecovered,
    IntegrationConfigChanged,
    CallRequested,
    CalendarEventChanged,
)
INBOUND: tuple[type[PlatformEvent], ...] = (AgencyPlanChanged,)


class EventPublisher(Protocol):
    """Publishes events to the bus (store.bus). Failures raise: callers decide if an event is essential."""

    def publish(self, *events: PlatformEvent) -> None: ...


def status_events(connection: Connection, change: Any) -> list[PlatformEvent]:
    """The events a status change means: Errored on entering error, Recovered on leaving it."""
    if change is None:
        return []
    if change.is_error and connection.error is not None:
        return [
            IntegrationErrored.of(
                connection, error_code=connection.error.code, message=connection.error.message
            )
        ]
    if change.is_recovery:
        return [IntegrationRecovered.of(connection, status=change.after)]
    return []
