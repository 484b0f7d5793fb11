"""What differs between the providers' OAuth servers, as data, and the catalog overrides that point at them.

Sources for every switch: /work/shared/providers/*.md (Google §1, Microsoft §4.1, GHL §1.2, HubSpot §2.1,
Calendly §3.1, Slack §4.1).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ClientAuth(StrEnum):
    POST = "client_secret_post"
    BASIC = "client_secret_basic"


class Pkce(StrEnum):
    # Every authorization request must carry an S256 challenge (no provider here asks it of web apps).
    REQUIRED = "required"
    # Optional for confidential web apps, and verified when sent: a code issued for a challenge is
    # exchanged only with its verifier (Google, Microsoft, HubSpot, Calendly, Slack).
    OPTIONAL = "optional"
    # Not part of the provider's protocol (GHL): parameters are ignored.
    UNSUPPORTED = "unsupported"


class RefreshPolicy(StrEnum):
    # Google, HubSpot: the same refresh token keeps working.
    REUSE = "reuse"
    # GHL, Calendly: each refresh returns a new refresh token and the used one dies.
    ROTATE_SINGLE_USE = "rotate_single_use"
    # Microsoft: a new refresh token every time, old ones stay valid until they expire.
    ROTATE_KEEP_OLD = "rotate_keep_old"
    # Slack without token rotation: no refresh tokens at all.
    NONE = "none"


@dataclass(frozen=True, slots=True)
class AppDialect:
    """One OAuth app's protocol switches."""

    app: str
    title: str
    authorize_paths: tuple[str, ...]
    exchange_path: str
    revoke_path: str | None
    scope_separator: str
    client_auth: frozenset[ClientAuth]
    pkce: Pkce
    response_type_required: bool
    refresh: RefreshPolicy
    # Provider access-token lifetime in seconds; None = never expires (Slack bot tokens).
    access_ttl: int | None
    account_label: str
    default_account: str
    account_pattern: str

    def valid_account(self, account: str) -> bool:
        return re.fullmatch(self.account_pattern, account) is not None


_EMAIL = r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}"

DIALECTS: dict[str, AppDialect] = {
    d.app: d
    for d in (
        AppDialect(
            app="google",
            title="Google",
            authorize_paths=("/google/o/oauth2/v2/auth",),
            exchange_path="/google/token",
            revoke_path="/google/revoke",
            scope_separator=" ",
            client_auth=frozenset({ClientAuth.POST, ClientAuth.BASIC}),
            pkce=Pkce.OPTIONAL,
            response_type_required=True,
            refresh=RefreshPolicy.REUSE,
            access_ttl=3599,
            account_label="Google account (email)",
            default_account="alex@example.com",
            account_pattern=_EMAIL,
        ),
        AppDialect(
            app="ghl",
            title="HighLevel",
            authorize_paths=("/ghl/oauth/chooselocation", "/ghl/v2/oauth/chooselocation"),
            exchange_path="/ghl/oauth/token",
            revoke_path=None,
            scope_separator=" ",
            client_auth=frozenset({ClientAuth.POST}),
            pkce=Pkce.UNSUPPORTED,
            response_type_required=True,
            refresh=RefreshPolicy.ROTATE_SINGLE_USE,
            access_ttl=86399,
            account_label="Sub-account (location id)",
            default_account="Sbx7LocQ2mK9fT4wR1pZ",
            account_pattern=r"[A-Za-z0-9]{6,40}",
        ),
        AppDialect(
            app="hubspot",
            title="HubSpot",
            authorize_paths=("/hubspot/oauth/authorize",),
            exchange_path="/hubspot/oauth/v1/token",
            revoke_path="/hubspot/oauth/v1/refresh-tokens/<token>",
            scope_separator=" ",
            client_auth=frozenset({ClientAuth.POST}),
            pkce=Pkce.OPTIONAL,
            # HubSpot's authorize URL takes no response_type; one that is sent must say `code`.
            response_type_required=False,
            refresh=RefreshPolicy.REUSE,
            access_ttl=1800,
            account_label="HubSpot account (hub id)",
            default_account="24681357",
            account_pattern=r"[1-9][0-9]{2,11}",
        ),
        AppDialect(
            app="calendly",
            title="Calendly",
            authorize_paths=("/calendly/oauth/authorize",),
            exchange_path="/calendly/oauth/token",
            revoke_path="/calendly/oauth/revoke",
            scope_separator=" ",
            # Web (confidential) clients authenticate with HTTP Basic at Calendly.
            client_auth=frozenset({ClientAuth.BASIC}),
            pkce=Pkce.OPTIONAL,
            response_type_required=True,
            refresh=RefreshPolicy.ROTATE_SINGLE_USE,
            access_ttl=7200,
            account_label="Calendly user (email)",
            default_account="alex@example.com",
            account_pattern=_EMAIL,
        ),
        AppDialect(
            app="slack",
            title="Slack",
            authorize_paths=("/slack/oauth/v2/authorize",),
            exchange_path="/slack/api/oauth.v2.access",
            revoke_path="/slack/api/auth.revoke",
            scope_separator=",",
            # Slack prefers HTTP Basic and also accepts the credentials in the body.
            client_auth=frozenset({ClientAuth.BASIC, ClientAuth.POST}),
            pkce=Pkce.OPTIONAL,
            response_type_required=False,
            refresh=RefreshPolicy.NONE,
            access_ttl=None,
            account_label="Workspace",
            default_account="Acme Sandbox",
            account_pattern=r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}",
        ),
        AppDialect(
            app="microsoft",
            title="Microsoft",
            authorize_paths=("/microsoft/<tenant>/oauth2/v2.0/authorize",),
            exchange_path="/microsoft/<tenant>/oauth2/v2.0/token",
            revoke_path=None,
            scope_separator=" ",
            client_auth=frozenset({ClientAuth.POST, ClientAuth.BASIC}),
            pkce=Pkce.OPTIONAL,
            response_type_required=True,
            refresh=RefreshPolicy.ROTATE_KEEP_OLD,
            access_ttl=3599,
            account_label="Microsoft account (email)",
            default_account="alex@example.com",
            account_pattern=_EMAIL,
        ),
    )
}


def catalog_overrides(base_url: str) -> dict[str, Any]:
    """INTEGRATIONS_CATALOG_OVERRIDES content that points every provider the sandbox serves at it."""
    b = base_url.rstrip("/")
    google_oauth = {
        "authorize_url": f"{b}/google/o/oauth2/v2/auth",
        "token_url": f"{b}/google/token",
        "revoke_url": f"{b}/google/revoke",
    }
    google_urls = {"userinfo": f"{b}/google/userinfo", "jwks": f"{b}/google/oauth2/v3/certs"}
    return {
        "ghl": {
            "oauth": {
                "authorize_url": f"{b}/ghl/v2/oauth/chooselocation",
                "token_url": f"{b}/ghl/oauth/token",
            },
            "api_base_url": f"{b}/ghl",
        },
        "hubspot": {
            "oauth": {
                "authorize_url": f"{b}/hubspot/oauth/authorize",
                "token_url": f"{b}/hubspot/oauth/v1/token",
                "revoke_url": f"{b}/hubspot/oauth/v1/refresh-tokens/{{token}}",
            },
            "api_base_url": f"{b}/hubspot",
        },
        "google_calendar": {
            "oauth": google_oauth,
            "api_base_url": f"{b}/google/calendar/v3",
            "urls": google_urls,
        },
        "google_calendar_oneway": {
            "oauth": google_oauth,
            "api_base_url": f"{b}/google/calendar/v3",
            "urls": google_urls,
        },
        "gmail": {
            "oauth": google_oauth,
            "api_base_url": f"{b}/google/gmail/v1",
            "urls": google_urls,
        },
        # iCloud has no OAuth: its CalDAV server stands in for caldav.icloud.com.
        "icloud_calendar": {"urls": {"caldav": f"{b}/icloud/"}},
        "calendly": {
            "oauth": {
                "authorize_url": f"{b}/calendly/oauth/authorize",
                "token_url": f"{b}/calendly/oauth/token",
                "revoke_url": f"{b}/calendly/oauth/revoke",
            },
            "api_base_url": f"{b}/calendly",
        },
        "slack": {
            "oauth": {
                "authorize_url": f"{b}/slack/oauth/v2/authorize",
                "token_url": f"{b}/slack/api/oauth.v2.access",
                "revoke_url": f"{b}/slack/api/auth.revoke",
            },
            "api_base_url": f"{b}/slack/api",
        },
        "outlook_calendar": {
            "oauth": {
                "authorize_url": f"{b}/microsoft/common/oauth2/v2.0/authorize",
                "token_url": f"{b}/microsoft/common/oauth2/v2.0/token",
            },
            "api_base_url": f"{b}/microsoft/graph/v1.0",
        },
        "outlook_mail": {
            "oauth": {
                "authorize_url": f"{b}/microsoft/common/oauth2/v2.0/authorize",
                "token_url": f"{b}/microsoft/common/oauth2/v2.0/token",
            },
            "api_base_url": f"{b}/microsoft/graph/v1.0",
        },
    }


# --- Stable identities behind what a person types on the consent page -------------------------------


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("/".join(parts).encode()).digest()


def stable_digits(length: int, *parts: str) -> str:
    """A number of `length` digits, not starting with 0, fixed for `parts`."""
    value = int.from_bytes(_digest(*parts), "big")
    return str(10 ** (length - 1) + value % (9 * 10 ** (length - 1)))


def stable_alnum(length: int, *parts: str) -> str:
    """A mixed-case alphanumeric id (GHL style), fixed for `parts`."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    value = int.from_bytes(_digest(*parts), "big")
    out = []
    for _ in range(length):
        value, rem = divmod(value, len(alphabet))
        out.append(alphabet[rem])
    return "".join(out)


def stable_uuid(*parts: str) -> str:
    return str(uuid.UUID(bytes=_digest(*parts)[:16], version=4))


def display_name(email: str) -> str:
    """`alex.doe@example.com` → `Alex Doe`."""
    local = email.split("@", 1)[0]
    return " ".join(p.capitalize() for p in re.split(r"[._+-]+", local) if p) or local
