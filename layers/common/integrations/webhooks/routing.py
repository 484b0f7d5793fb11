"""How a push finds its connection: the lookup items written at connect time, and what they hold.

A lookup item is `LOOKUP#<provider>#<kind>#<value>` in the main table (domain.lookup.Lookup). The
kinds below are the contract between whoever writes them (provider modules' `on_connect`, the
subscription managers, `app_level_lookups`) and the receiver that reads them. Attributes hold
verification material only as digests (`secret_digest`) or KMS ciphertext, never a usable secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from integrations.domain.lookup import Lookup
from integrations.webhooks.parsing import RoutingKind
from integrations.webhooks.request import GHL_LOCATION_PARAM, GHL_WORKFLOW_PARAM
from integrations.webhooks.verification import secret_digest

if TYPE_CHECKING:
    from integrations.domain.connection import Connection

# RoutingKind (what a push names) -> lookup kind (what is stored). Provider modules already write
# `location`, `company`, `portal`, `team`, `user` and `email` with these exact names (a test checks).
LOOKUP_KINDS: Mapping[RoutingKind, str] = {
    RoutingKind.GOOGLE_CHANNEL: "channel",
    RoutingKind.GMAIL_ADDRESS: "email",
    RoutingKind.CALENDLY_SUBSCRIPTION: "subscription",
    RoutingKind.CALENDLY_USER: "user",
    RoutingKind.GHL_LOCATION: "location",
    RoutingKind.GHL_COMPANY: "company",
    RoutingKind.GHL_WORKFLOW: "workflow",
    RoutingKind.HUBSPOT_PORTAL: "portal",
    RoutingKind.GRAPH_SUBSCRIPTION: "subscription",
    RoutingKind.SLACK_TEAM: "team",
}


class Attr:
    """Names of lookup attributes (all strings)."""

    # SHA-256 digests of a per-channel shared secret (Google channel token, GHL workflow secret) and of
    # the one it replaced (accepted until the next rotation).
    TOKEN_SHA256 = "token_sha256"  # noqa: S105 - an attribute name
    PREVIOUS_TOKEN_SHA256 = "previous_token_sha256"  # noqa: S105 - an attribute name
    # Microsoft Graph clientState digests.
    CLIENT_STATE_SHA256 = "client_state_sha256"
    PREVIOUS_CLIENT_STATE_SHA256 = "previous_client_state_sha256"
    # Google: the watched resource (needed to verify and to call channels.stop) and its calendar.
    RESOURCE_ID = "resource_id"
    CALENDAR_ID = "calendar_id"
    # Provider-side subscription id or URI (Graph id, Calendly URI), for renewal and removal.
    SUBSCRIPTION = "subscription"
    # ISO-8601 UTC expiry of a channel, subscription or watch (renewal jobs read it).
    EXPIRES_AT = "expires_at"
    # Calendly: base64 KMS ciphertext of the subscription's signing key (see keyring.SigningKeyBox).
    SIGNING_KEY_CIPHERTEXT = "signing_key_ciphertext"
    # Gmail: the mailbox history id `users.watch` answered with.
    HISTORY_ID = "history_id"


def lookup_kind(kind: RoutingKind) -> str:
    """The stored lookup kind for a routing kind."""
    return LOOKUP_KINDS[kind]


def make_lookup(connection: Connection, kind: RoutingKind, value: str, **attributes: str) -> Lookup:
    """A lookup item routing `kind`/`value` pushes of `connection`'s provider to it."""
    return Lookup(
        provider=connection.provider,
        kind=lookup_kind(kind),
        value=value,
        connection_id=connection.id,
        agency_id=connection.agency_id,
        client_id=connection.client_id,
        attributes={k: v for k, v in attributes.items() if v},
    )


def parse_lookup_key(key: str) -> tuple[str, str, str] | None:
    """(provider, kind, value) of a stored `LOOKUP#provider#kind#value` key (the value may hold '#')."""
    parts = key.split("#", 3)
    if len(parts) != 4 or parts[0] != "LOOKUP":
        return None
    return parts[1], parts[2], parts[3]


def merge_lookups(*groups: Iterable[Lookup]) -> list[Lookup]:
    """One list without two items for the same key (a transaction refuses that); later groups win."""
    merged: dict[str, Lookup] = {}
    for group in groups:
        for item in group:
            merged[item.key] = item
    return list(merged.values())


# --------------------------------------------------------------------------- app-level webhooks

GHL_COMPANY_PREFIX = "company:"


def app_level_lookups(provider: str, connection: Connection) -> list[Lookup]:
    """Lookups for providers whose webhooks are configured once per app and name the account:
    GHL (location, or company for agency installs), HubSpot (portal id), Slack (team id).

    Keys equal what the provider modules' `on_connect` writes, so calling both is harmless (merge
    them with `merge_lookups` before one `put_lookups`).
    """
    account_id = connection.account.id
    if not account_id:
        return []
    if provider == "ghl":
        if account_id.startswith(GHL_COMPANY_PREFIX):
            return [make_lookup(connection, RoutingKind.GHL_COMPANY, account_id[len(GHL_COMPANY_PREFIX) :])]
        return [make_lookup(connection, RoutingKind.GHL_LOCATION, account_id)]
    if provider == "hubspot":
        return [make_lookup(connection, RoutingKind.HUBSPOT_PORTAL, account_id)]
    if provider == "slack":
        return [make_lookup(connection, RoutingKind.SLACK_TEAM, account_id)]
    return []


# --------------------------------------------------------------------------- GHL workflow call requests


@dataclass(frozen=True, slots=True, repr=False)
class WorkflowSecret:
    """A GHL workflow secret, shown to the agency once: the action sends it as `Authorization: Bearer`."""

    secret: str
    url: str
    lookup: Lookup

    def __repr__(self) -> str:
        return f"WorkflowSecret(url={self.url!r})"


def workflow_url(public_api_url: str, location_id: str) -> str:
    """The URL a GHL workflow's Custom Webhook action posts call requests to."""
    return (
        f"{public_api_url.rstrip('/')}/webhooks/ghl?{GHL_WORKFLOW_PARAM}=call"
        f"&{GHL_LOCATION_PARAM}={quote(location_id, safe='')}"
    )


def issue_workflow_secret(
    connection: Connection, public_api_url: str, previous: Lookup | None = None
) -> WorkflowSecret:
    """A new random workflow secret for the connection's GHL location; the lookup stores its digest
    (and the digest it replaces, so workflows keep working until they are updated)."""
    location_id = connection.account.id
    if not location_id or location_id.startswith(GHL_COMPANY_PREFIX):
        raise ValueError("Workflow call requests need a location-level GoHighLevel connection.")
    secret = secrets.token_urlsafe(32)
    lookup = make_lookup(
        connection,
        RoutingKind.GHL_WORKFLOW,
        location_id,
        **{
            Attr.TOKEN_SHA256: secret_digest(secret),
            Attr.PREVIOUS_TOKEN_SHA256: previous.attributes.get(Attr.TOKEN_SHA256, "") if previous else "",
        },
    )
    return WorkflowSecret(secret=secret, url=workflow_url(public_api_url, location_id), lookup=lookup)
