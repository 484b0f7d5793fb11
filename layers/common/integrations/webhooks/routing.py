"""How a push finds its connection: the lookup items written at connect time, and what they hold.

A lookup item is `LOOKUP#<provider>#<kind>#<value>` in the main table (domain.lookup.Lookup). Each
provider's kinds are named in its own folder (`providers/<id>/webhook.py`): they are the contract
between whoever writes them (the provider's `on_connect`, its subscription manager) and the plug-in
whose routing keys name them. Attributes hold verification material only as digests
(`signatures.secret_digest`) or KMS ciphertext, never a usable secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from integrations.domain.lookup import Lookup

if TYPE_CHECKING:
    from integrations.domain.connection import Connection


class Attr:
    """Names of lookup attributes (all strings)."""

    # SHA-256 digests of a per-channel shared secret (a watch channel's token, a workflow secret) and
    # of the one it replaced (accepted until the next rotation).
    TOKEN_SHA256 = "token_sha256"  # noqa: S105 - an attribute name
    PREVIOUS_TOKEN_SHA256 = "previous_token_sha256"  # noqa: S105 - an attribute name
    # Subscription clientState digests (Microsoft Graph).
    CLIENT_STATE_SHA256 = "client_state_sha256"
    PREVIOUS_CLIENT_STATE_SHA256 = "previous_client_state_sha256"
    # A watch channel's watched resource (needed to verify and to stop the channel) and its calendar.
    RESOURCE_ID = "resource_id"
    CALENDAR_ID = "calendar_id"
    # Provider-side subscription id or URI, for renewal and removal.
    SUBSCRIPTION = "subscription"
    # ISO-8601 UTC expiry of a channel, subscription or watch (renewal jobs read it).
    EXPIRES_AT = "expires_at"
    # base64 KMS ciphertext of a subscription's own signing key (see keyring.SigningKeyBox).
    SIGNING_KEY_CIPHERTEXT = "signing_key_ciphertext"
    # A mailbox watch: the history id the watch answered with.
    HISTORY_ID = "history_id"


def make_lookup(connection: Connection, kind: str, value: str, **attributes: str) -> Lookup:
    """A lookup item routing `kind`/`value` pushes of `connection`'s provider to it."""
    return Lookup(
        provider=connection.provider,
        kind=kind,
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
