"""An agency's settings: its plan (from the platform) and what it lets its people connect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from integrations.domain.access import Level, Role, Tier

if TYPE_CHECKING:
    from integrations.domain.connection import Connection

# What the card and the health view say of a connection the agency's settings stop.
PAUSED_BY_AGENCY = "sync.paused_by_agency"


PersonalGroup = Literal["staff", "contact"]


def role_group(role: Role) -> PersonalGroup:
    """The agency switch that covers a person of this role: `staff_personal_connections` for the
    agency's admins and staff, `contact_personal_connections` for a client's users and prospects."""
    return "staff" if role.is_agency_role else "contact"


def personal_group(connection: Connection) -> PersonalGroup | None:
    """For a person's own connection, the group the agency's personal-connection switches name.
    None for agency and client connections, which no such switch touches.

    The owner's role is recorded at connect time. A connection made before that has none: it keeps
    the grouping it always had, by where it was connected (no client: agency staff; under a client:
    that client's people), which is what the role says for every connection made since.
    """
    if connection.level is not Level.USER:
        return None
    if connection.owner_role is not None:
        return role_group(connection.owner_role)
    return "staff" if connection.client_id is None else "contact"


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

    def stops(self, connection: Connection) -> bool:
        """Whether the agency switched personal connections off for this connection's group: it then
        neither syncs nor takes pushes until the switch is on again (nothing is deleted)."""
        group = personal_group(connection)
        if group == "staff":
            return not self.staff_personal_connections
        if group == "contact":
            return not self.contact_personal_connections
        return False


class AgencySettingsUpdate(BaseModel):
    """What an agency admin may change; the tier is deliberately absent."""

    model_config = ConfigDict(extra="forbid")

    enabled_providers: list[str] | None = Field(
        default=None, description="Providers the agency offers; null for every provider in the catalog."
    )
    # Strict: `0`, `1` or `"true"` are refused, not read as booleans.
    staff_personal_connections: StrictBool = Field(
        default=True,
        description="Whether agency staff (and admins) may connect personal calendars and mail; off "
        "also pauses the sync of the ones they connected.",
    )
    contact_personal_connections: StrictBool = Field(
        default=True,
        description="Whether a client's people (client users and prospects) may connect personal "
        "calendars and mail; off also pauses the sync of the ones they connected.",
    )
