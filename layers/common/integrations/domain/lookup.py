"""A lookup: how a provider's push (location, portal, channel, subscription…) finds its connection."""

from __future__ import annotations

from dataclasses import dataclass


def lookup_key(provider: str, kind: str, value: str) -> str:
    """The key a lookup is stored and listed under (the value may hold '#')."""
    return f"LOOKUP#{provider}#{kind}#{value}"


@dataclass(frozen=True, slots=True)
class Lookup:
    """Routes a provider's push (location, portal, channel, subscription…) to a connection."""

    provider: str
    kind: str
    value: str
    connection_id: str
    agency_id: str
    client_id: str | None
    # Verification material for that route (hashes of channel tokens, resource ids…), never a token.
    attributes: dict[str, str]

    @property
    def key(self) -> str:
        return lookup_key(self.provider, self.kind, self.value)
