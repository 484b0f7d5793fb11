"""What the portal API answers: pydantic models, so the OpenAPI document describes the real shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from integrations.catalog.model import ConfigField
from integrations.domain.access import Level, Tier
from integrations.domain.connection import Connection, ConnectionError_, PortalStatus


class ErrorBody(BaseModel):
    """Every error answer: a stable machine-readable code and a message for a person."""

    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="What went wrong, for a person.")
    details: Any | None = Field(default=None, description="Per-field problems for validation errors.")


class MeView(BaseModel):
    show_integrations: bool
    can_manage: bool
    levels: list[Level]


class ConnectionSummary(BaseModel):
    id: str
    account_label: str
    status: PortalStatus
    error: ConnectionError_ | None
    last_sync_at: datetime | None

    @classmethod
    def of(cls, connection: Connection) -> ConnectionSummary:
        return cls(
            id=connection.id,
            account_label=connection.account.label,
            status=connection.status,
            error=connection.error,
            last_sync_at=connection.last_sync_at,
        )


class Card(BaseModel):
    provider: str
    name: str
    description: str
    logo_url: str
    category: str
    min_tier: Tier
    available: bool
    unavailable_reason: str | None
    unavailable_code: str | None
    status: PortalStatus
    connections: list[ConnectionSummary]
    can_manage: bool
    auth: str
    multiple_accounts: bool
    config_schema: list[ConfigField]


class CardList(BaseModel):
    integrations: list[Card]


class ConnectionView(BaseModel):
    id: str
    provider: str
    level: Level
    client_id: str | None
    user_id: str | None
    account_id: str
    account_label: str
    status: PortalStatus
    error: ConnectionError_ | None
    oauth_scopes: list[str]
    config: dict[str, Any]
    config_schema: list[ConfigField]
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    created_at: datetime
    updated_at: datetime
    can_manage: bool


class ConfigUpdate(BaseModel):
    config: dict[str, Any] = Field(
        description="The whole config; validated against the provider's config schema."
    )


class OptionView(BaseModel):
    value: str
    label: str


class OptionList(BaseModel):
    options: list[OptionView]


class HealthItem(BaseModel):
    connection_id: str
    client_id: str | None
    user_id: str | None
    level: Level
    provider: str
    account_label: str
    status: PortalStatus
    error: ConnectionError_ | None
    last_sync_at: datetime | None
    token_expires_at: datetime | None


class HealthPageView(BaseModel):
    items: list[HealthItem]
    next_cursor: str | None


class SettingsView(BaseModel):
    tier: Tier
    enabled_providers: list[str] | None
    staff_personal_connections: bool
    contact_personal_connections: bool
