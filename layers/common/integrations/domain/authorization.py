"""Who may see and change which connections, and which providers are available: design §4, once."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from integrations.domain.access import Level, Permission, Role, Tier
from integrations.domain.agency import AgencySettings, role_group
from integrations.domain.errors import BadRequest, Forbidden, NotFound
from integrations.domain.principal import Principal


class Action(StrEnum):
    VIEW = "view"
    MANAGE = "manage"


class DenyReason(StrEnum):
    """Stable codes for why something is not allowed or not available."""

    NO_VIEW_PERMISSION = "missing_view_permission"
    NO_MANAGE_PERMISSION = "missing_manage_permission"
    AGENCY_ADMIN_ONLY = "agency_admin_only"
    NO_CLIENT = "client_required"
    PERSONAL_DISABLED_STAFF = "staff_personal_connections_disabled"
    PERSONAL_DISABLED_CONTACTS = "contact_personal_connections_disabled"
    TIER_TOO_LOW = "tier_too_low"
    DISABLED_BY_AGENCY = "disabled_by_agency"
    LEVEL_NOT_SUPPORTED = "level_not_supported"
    # What everyone but agency admins is told instead of the two above (white label: the plan stays private).
    NOT_AVAILABLE = "not_available"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: DenyReason | None = None
    message: str | None = None

    @classmethod
    def allow(cls) -> Decision:
        return cls(True)

    @classmethod
    def deny(cls, reason: DenyReason, message: str) -> Decision:
        return cls(False, reason, message)

    def raise_if_denied(self) -> None:
        if not self.allowed:
            assert self.reason is not None and self.message is not None
            raise Forbidden(self.message, code=self.reason.value)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose connections a request is about: always within the caller's own agency."""

    agency_id: str
    level: Level
    client_id: str | None
    user_id: str | None
    # For a person's own connections, the owner's role from the verified principal: which agency
    # switch covers them (personal_group). None where nobody in particular owns them, or unknown.
    owner_role: Role | None = None

    @property
    def owner_key(self) -> str:
        return f"{self.agency_id}#{self.client_id or '-'}"


def resolve_scope(principal: Principal, level: Level, requested_client_id: str | None = None) -> Scope:
    """Turn (caller, level, optional client) into a scope; a client id only means something for admins."""
    if level is Level.AGENCY:
        return Scope(principal.agency_id, level, None, None)
    if level is Level.CLIENT:
        if principal.role is Role.AGENCY_ADMIN:
            if not requested_client_id:
                raise BadRequest("Name the client with client_id.", code=DenyReason.NO_CLIENT.value)
            return Scope(principal.agency_id, level, requested_client_id, None)
        if requested_client_id and requested_client_id != principal.client_id:
            # Another tenant's data does not exist as far as this caller can tell.
            raise NotFound("No such client.", code="client_not_found")
        return Scope(principal.agency_id, level, principal.client_id, None)
    return Scope(principal.agency_id, level, principal.client_id, principal.sub, principal.role)


def authorize(principal: Principal, scope: Scope, action: Action, settings: AgencySettings) -> Decision:
    """May this caller view or manage connections in this scope?"""
    if scope.agency_id != principal.agency_id:
        return Decision.deny(DenyReason.NO_VIEW_PERMISSION, "Not allowed.")
    if scope.level is Level.AGENCY:
        if principal.role is not Role.AGENCY_ADMIN:
            return Decision.deny(
                DenyReason.AGENCY_ADMIN_ONLY, "Only agency admins manage agency integrations."
            )
        return Decision.allow()
    if scope.level is Level.CLIENT:
        return _authorize_client(principal, action)
    return _authorize_personal(principal, scope, settings)


def _authorize_client(principal: Principal, action: Action) -> Decision:
    if principal.role is Role.AGENCY_ADMIN:
        return Decision.allow()
    if principal.role is not Role.CLIENT_USER:
        return Decision.deny(DenyReason.NO_VIEW_PERMISSION, "Client integrations are for the client's users.")
    if not principal.has(Permission.VIEW):
        return Decision.deny(DenyReason.NO_VIEW_PERMISSION, "You need the view_integrations permission.")
    if action is Action.MANAGE and not principal.has(Permission.MANAGE):
        return Decision.deny(DenyReason.NO_MANAGE_PERMISSION, "You need the manage_integrations permission.")
    return Decision.allow()


def _authorize_personal(principal: Principal, scope: Scope, settings: AgencySettings) -> Decision:
    # A personal connection belongs to its person within the client context it was connected in
    # (where it is stored and listed): the same `sub` under another client_id is someone else here.
    if scope.user_id != principal.sub or scope.client_id != principal.client_id:
        return Decision.deny(DenyReason.NO_VIEW_PERMISSION, "Personal connections belong to their owner.")
    if principal.role is Role.CLIENT_USER and not principal.has(Permission.VIEW):
        return Decision.deny(DenyReason.NO_VIEW_PERMISSION, "You need the view_integrations permission.")
    # The same grouping pauses sync (domain.agency.personal_group): staff are the agency's people,
    # contacts a client's users and prospects.
    if role_group(principal.role) == "contact":
        if not settings.contact_personal_connections:
            return Decision.deny(
                DenyReason.PERSONAL_DISABLED_CONTACTS,
                "Your agency does not let its clients' people connect calendars or mail.",
            )
        return Decision.allow()
    if not settings.staff_personal_connections:
        return Decision.deny(
            DenyReason.PERSONAL_DISABLED_STAFF,
            "Your agency does not let staff connect personal calendars or mail.",
        )
    # A person's own calendars and mailboxes: seeing them is managing them.
    return Decision.allow()


def availability(
    provider_id: str, min_tier: Tier, allowed_levels: frozenset[Level], level: Level, settings: AgencySettings
) -> Decision:
    """Available = the provider works at this level, the agency's tier is high enough, and it is enabled."""
    if level not in allowed_levels:
        return Decision.deny(
            DenyReason.LEVEL_NOT_SUPPORTED, f"This integration cannot be connected at {level} level."
        )
    if not settings.tier.includes(min_tier):
        return Decision.deny(DenyReason.TIER_TOO_LOW, f"Available on the {min_tier.value} plan and above.")
    if not settings.enables(provider_id):
        return Decision.deny(DenyReason.DISABLED_BY_AGENCY, "Your agency has not enabled this integration.")
    return Decision.allow()


# Reasons that speak of the agency's plan or choices: only agency admins hear them.
_AGENCY_PRIVATE = frozenset({DenyReason.TIER_TOO_LOW, DenyReason.DISABLED_BY_AGENCY})


def explained_to(principal: Principal, decision: Decision) -> Decision:
    """An availability decision as this caller may hear it: clients never learn the agency's plan."""
    if decision.allowed or principal.role is Role.AGENCY_ADMIN or decision.reason not in _AGENCY_PRIVATE:
        return decision
    return Decision.deny(DenyReason.NOT_AVAILABLE, "Not available. Ask your agency if you need it.")


def may_see_integrations(principal: Principal, settings: AgencySettings) -> list[Level]:
    """The levels whose section the portal shows to this caller (empty: hide integrations)."""
    levels: list[Level] = []
    if principal.role is Role.AGENCY_ADMIN:
        levels += [Level.AGENCY, Level.CLIENT]
    elif principal.role is Role.CLIENT_USER and principal.has(Permission.VIEW):
        levels.append(Level.CLIENT)
    personal = resolve_scope(principal, Level.USER)
    if authorize(principal, personal, Action.VIEW, settings).allowed:
        levels.append(Level.USER)
    return levels
