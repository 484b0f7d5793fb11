"""Roles, permissions, levels and tiers: the vocabulary of design §4."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """Tenancy level a connection belongs to."""

    AGENCY = "agency"
    CLIENT = "client"
    USER = "user"


class Role(StrEnum):
    AGENCY_ADMIN = "agency_admin"
    AGENCY_STAFF = "agency_staff"
    CLIENT_USER = "client_user"
    PROSPECT = "prospect"

    @property
    def is_agency_role(self) -> bool:
        return self in (Role.AGENCY_ADMIN, Role.AGENCY_STAFF)


class Permission(StrEnum):
    VIEW = "view_integrations"
    MANAGE = "manage_integrations"


class Tier(StrEnum):
    """Agency plan, lowest first. Compare with `rank`, never with string order."""

    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"

    @property
    def rank(self) -> int:
        return _TIER_ORDER.index(self)

    def includes(self, required: Tier) -> bool:
        return self.rank >= required.rank


_TIER_ORDER = (Tier.STARTER, Tier.GROWTH, Tier.ENTERPRISE)
