"""The full matrix of role x permissions x level x tier x agency settings -> allowed / reason.

The expectations are written as a separate, plain statement of design §4, so the rules in
integrations.domain.authorization are checked against the spec rather than against themselves.
"""

from __future__ import annotations

import itertools

import pytest

from integrations.domain.access import Level, Permission, Role, Tier
from integrations.domain.agency import AgencySettings
from integrations.domain.authorization import (
    Action,
    DenyReason,
    Scope,
    authorize,
    availability,
    may_see_integrations,
    resolve_scope,
)
from integrations.domain.errors import BadRequest, NotFound
from integrations.domain.principal import Principal

PERMISSION_SETS = [frozenset(), frozenset({Permission.VIEW}), frozenset({Permission.VIEW, Permission.MANAGE})]
SETTINGS = [
    AgencySettings(agency_id="ag", staff_personal_connections=staff, contact_personal_connections=contacts)
    for staff, contacts in itertools.product([True, False], repeat=2)
]


def principal(role: Role, permissions: frozenset[Permission]) -> Principal:
    client = None if role.is_agency_role else "client-a"
    return Principal(sub="u1", agency_id="ag", role=role, permissions=permissions, client_id=client)


def expected(
    role: Role, perms: frozenset[Permission], level: Level, action: Action, s: AgencySettings
) -> DenyReason | None:
    """Design §4 restated: None means allowed."""
    view = role is Role.AGENCY_ADMIN or Permission.VIEW in perms
    manage = role is Role.AGENCY_ADMIN or Permission.MANAGE in perms
    if level is Level.AGENCY:
        return None if role is Role.AGENCY_ADMIN else DenyReason.AGENCY_ADMIN_ONLY
    if level is Level.CLIENT:
        if role is Role.AGENCY_ADMIN:
            return None
        if role is not Role.CLIENT_USER or not view:
            return DenyReason.NO_VIEW_PERMISSION
        if action is Action.MANAGE and not manage:
            return DenyReason.NO_MANAGE_PERMISSION
        return None
    if role is Role.CLIENT_USER and not view:
        return DenyReason.NO_VIEW_PERMISSION
    # README: the staff switch covers the agency's people, the contact switch a client's users and prospects.
    if role in (Role.CLIENT_USER, Role.PROSPECT):
        return None if s.contact_personal_connections else DenyReason.PERSONAL_DISABLED_CONTACTS
    return None if s.staff_personal_connections else DenyReason.PERSONAL_DISABLED_STAFF


MATRIX = list(itertools.product(Role, PERMISSION_SETS, Level, Action, SETTINGS))


@pytest.mark.parametrize(("role", "perms", "level", "action", "settings"), MATRIX)
def test_authorization_matrix(
    role: Role, perms: frozenset[Permission], level: Level, action: Action, settings: AgencySettings
) -> None:
    who = principal(role, perms)
    scope = resolve_scope(who, level, "client-a" if role is Role.AGENCY_ADMIN else None)

    decision = authorize(who, scope, action, settings)

    want = expected(role, perms, level, action, settings)
    assert decision.allowed is (want is None)
    assert decision.reason is want
    assert (decision.message is None) is (want is None)


@pytest.mark.parametrize(
    ("tier", "min_tier", "enabled", "level", "levels", "want"),
    [
        (tier, min_tier, enabled, level, levels, None)
        if level in levels and tier.includes(min_tier) and enabled
        else (
            tier,
            min_tier,
            enabled,
            level,
            levels,
            DenyReason.LEVEL_NOT_SUPPORTED
            if level not in levels
            else DenyReason.TIER_TOO_LOW
            if not tier.includes(min_tier)
            else DenyReason.DISABLED_BY_AGENCY,
        )
        for tier, min_tier, enabled, level, levels in itertools.product(
            Tier,
            Tier,
            [True, False],
            Level,
            [frozenset({Level.CLIENT, Level.USER}), frozenset({Level.AGENCY})],
        )
    ],
)
def test_availability_matrix(
    tier: Tier, min_tier: Tier, enabled: bool, level: Level, levels: frozenset[Level], want: DenyReason | None
) -> None:
    settings = AgencySettings(agency_id="ag", tier=tier, enabled_providers=None if enabled else ["other"])

    decision = availability("hubspot", min_tier, levels, level, settings)

    assert decision.allowed is (want is None)
    assert decision.reason is want


def test_tiers_are_ordered_by_rank_not_by_name() -> None:
    assert Tier.ENTERPRISE.includes(Tier.GROWTH)
    assert Tier.GROWTH.includes(Tier.STARTER)
    assert not Tier.STARTER.includes(Tier.GROWTH)
    assert not Tier.GROWTH.includes(Tier.ENTERPRISE)


def test_tier_message_names_the_plan() -> None:
    settings = AgencySettings(agency_id="ag", tier=Tier.STARTER)

    decision = availability("hubspot", Tier.GROWTH, frozenset({Level.CLIENT}), Level.CLIENT, settings)

    assert decision.message == "Available on the growth plan and above."


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("other_client", ["client-b", None])
def test_a_personal_scope_of_another_client_context_is_not_the_persons(
    action: Action, other_client: str | None
) -> None:
    # The same person (sub) under another client_id: their personal connections there are not theirs here.
    who = principal(Role.CLIENT_USER, frozenset({Permission.VIEW, Permission.MANAGE}))
    own = resolve_scope(who, Level.USER)
    elsewhere = Scope(own.agency_id, Level.USER, other_client, who.sub)

    assert authorize(who, own, action, SETTINGS[0]).allowed
    decision = authorize(who, elsewhere, action, SETTINGS[0])
    assert not decision.allowed
    assert decision.reason is DenyReason.NO_VIEW_PERMISSION


def test_client_user_naming_another_client_gets_not_found() -> None:
    with pytest.raises(NotFound):
        resolve_scope(principal(Role.CLIENT_USER, PERMISSION_SETS[2]), Level.CLIENT, "client-b")


def test_agency_admin_must_name_a_client() -> None:
    with pytest.raises(BadRequest) as raised:
        resolve_scope(principal(Role.AGENCY_ADMIN, frozenset()), Level.CLIENT)
    assert raised.value.code == "client_required"


def test_scope_never_leaves_the_callers_agency() -> None:
    admin = principal(Role.AGENCY_ADMIN, frozenset())

    scope = resolve_scope(admin, Level.CLIENT, "client-of-anyone")

    assert scope.agency_id == "ag"


@pytest.mark.parametrize(
    ("role", "perms", "staff", "want"),
    [
        (Role.AGENCY_ADMIN, frozenset(), True, [Level.AGENCY, Level.CLIENT, Level.USER]),
        (Role.AGENCY_ADMIN, frozenset(), False, [Level.AGENCY, Level.CLIENT]),
        (Role.CLIENT_USER, PERMISSION_SETS[1], True, [Level.CLIENT, Level.USER]),
        (Role.CLIENT_USER, PERMISSION_SETS[1], False, [Level.CLIENT, Level.USER]),
        (Role.CLIENT_USER, frozenset(), True, []),
        (Role.AGENCY_STAFF, frozenset(), True, [Level.USER]),
        (Role.AGENCY_STAFF, frozenset(), False, []),
        (Role.PROSPECT, frozenset(), False, [Level.USER]),
    ],
)
def test_levels_shown_in_the_portal(
    role: Role, perms: frozenset[Permission], staff: bool, want: list[Level]
) -> None:
    settings = AgencySettings(agency_id="ag", staff_personal_connections=staff)

    assert may_see_integrations(principal(role, perms), settings) == want
