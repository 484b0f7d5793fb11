"""An agency's settings: its plan (from the platform) and what it lets its people connect."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from integrations.domain.access import Tier


class AgencySettings(BaseModel):
    """What the agency chose, plus the tier the platform's `Agency Plan Changed` event set."""

    model_config = ConfigDict(extra="forbid")

    agency_id: str
    tier: Tier = Tier.STARTER
    # None means "every provider in the catalog"; a list narrows it.
    enabled_providers: list[str] | None = None
    staff_personal_connections: bool = True
    contact_personal_connections: bool = True
    version: int = 0

    def enables(self, provider: str) -> bool:
        return self.enabled_providers is None or provider in self.enabled_providers


class AgencySettingsUpdate(BaseModel):
    """What an agency admin may change; the tier is deliberately absent."""

    model_config = ConfigDict(extra="forbid")

    enabled_providers: list[str] | None = Field(
        default=None, description="Providers the agency offers; null for every provider in the catalog."
    )
    # Strict: `0`, `1` or `"true"` are refused, not read as booleans.
    staff_personal_connections: StrictBool = Field(
        default=True,
        description="Whether agency staff and client users may connect personal calendars and mail.",
    )
    contact_personal_connections: StrictBool = Field(
        default=True, description="Whether contacts (prospects) may connect personal calendars and mail."
    )
