"""The caller, built only from claims that API Gateway's JWT authorizer has verified."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from integrations.domain.access import Permission, Role
from integrations.domain.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    agency_id: str
    role: Role
    permissions: frozenset[Permission]
    client_id: str | None = None
    # The verified `email` claim, lower-cased, when the token carries one.
    email: str | None = None

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any] | None) -> Principal:
        """Parse verified JWT claims; anything missing or unknown is 401, never a guess."""
        if not claims:
            raise Unauthenticated("A signed-in user is required.", code="missing_token")
        sub = _text(claims.get("sub"))
        agency_id = _text(claims.get("agency_id"))
        role_value = _text(claims.get("role"))
        if not sub or not agency_id or not role_value:
            raise Unauthenticated("The token lacks sub, agency_id or role.", code="invalid_claims")
        try:
            role = Role(role_value)
        except ValueError:
            raise Unauthenticated(f"Unknown role '{role_value}'.", code="invalid_claims") from None
        client_id = _text(claims.get("client_id")) or None
        if role in (Role.CLIENT_USER, Role.PROSPECT) and client_id is None:
            raise Unauthenticated("Client users and prospects need a client_id claim.", code="invalid_claims")
        if role.is_agency_role:
            # Agency staff act for the agency; a client is named per request, never by the token.
            client_id = None
        permissions = frozenset(
            Permission(p) for p in parse_claim_list(claims.get("permissions")) if p in _PERMISSION_VALUES
        )
        return cls(
            sub=sub,
            agency_id=agency_id,
            role=role,
            permissions=permissions,
            client_id=client_id,
            email=_email(claims.get("email")),
        )

    def has(self, permission: Permission) -> bool:
        # An agency admin administers every client of the agency.
        return self.role is Role.AGENCY_ADMIN or permission in self.permissions


_PERMISSION_VALUES = frozenset(p.value for p in Permission)


def parse_claim_list(value: Any) -> list[str]:
    """Accept a real list, or HTTP API's rendering of an array claim: "[a b]" (or "a,b")."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [part.strip().strip('"') for part in text.replace(",", " ").split() if part.strip()]
    if isinstance(value, Iterable):
        return [str(item) for item in value]
    return []


def _email(value: Any) -> str | None:
    """A plausible address from the email claim, else None (a bad claim is no claim, not a 401)."""
    text = _text(value).lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or len(text) > 320 or any(c.isspace() for c in text):
        return None
    return text


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
