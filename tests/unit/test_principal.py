"""Identity comes only from verified claims; anything missing or unknown is 401."""

from __future__ import annotations

import pytest

from integrations.domain.access import Permission, Role
from integrations.domain.errors import Unauthenticated
from integrations.domain.principal import Principal, parse_claim_list


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("[view_integrations manage_integrations]", ["view_integrations", "manage_integrations"]),
        (["view_integrations"], ["view_integrations"]),
        ("[]", []),
        ("view_integrations,manage_integrations", ["view_integrations", "manage_integrations"]),
        (None, []),
        (42, []),
    ],
)
def test_array_claims_in_both_renderings(raw: object, want: list[str]) -> None:
    assert parse_claim_list(raw) == want


def test_principal_from_http_api_claims() -> None:
    claims = {
        "sub": "u1",
        "agency_id": "ag",
        "client_id": "c1",
        "role": "client_user",
        "permissions": "[view_integrations]",
    }

    who = Principal.from_claims(claims)

    assert who.role is Role.CLIENT_USER
    assert who.permissions == frozenset({Permission.VIEW})
    assert who.client_id == "c1"


def test_unknown_permissions_are_ignored_not_trusted() -> None:
    who = Principal.from_claims(
        {"sub": "u", "agency_id": "a", "client_id": "c", "role": "client_user", "permissions": ["admin"]}
    )

    assert who.permissions == frozenset()


def test_agency_staff_never_carry_a_client_from_the_token() -> None:
    who = Principal.from_claims({"sub": "u", "agency_id": "a", "client_id": "c", "role": "agency_admin"})

    assert who.client_id is None


@pytest.mark.parametrize(
    "claims",
    [
        None,
        {},
        {"sub": "u", "agency_id": "a"},
        {"sub": "u", "role": "client_user", "client_id": "c"},
        {"sub": "u", "agency_id": "a", "role": "superuser"},
        {"sub": "u", "agency_id": "a", "role": "client_user"},
        {"sub": 5, "agency_id": "a", "role": "agency_admin"},
    ],
)
def test_incomplete_or_unknown_claims_are_unauthenticated(claims: dict[str, object] | None) -> None:
    with pytest.raises(Unauthenticated):
        Principal.from_claims(claims)
