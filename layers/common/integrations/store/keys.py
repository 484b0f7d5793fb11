"""Key layout of the main table, written once. Every key that lists data starts with the caller's agency."""

from __future__ import annotations

from integrations.domain.access import Level
from integrations.domain.lookup import lookup_key

CONNECTION_SK = "CONNECTION"
CREDENTIALS_SK = "CREDENTIALS"
SETTINGS_SK = "SETTINGS"
LOOKUP_SK = "LOOKUP"
BY_OWNER = "ByOwner"
BY_AGENCY_HEALTH = "ByAgencyHealth"
DUE_FOR_SYNC = "DueForSync"
NONE = "-"


def connection_pk(connection_id: str) -> str:
    return f"CONN#{connection_id}"


def agency_pk(agency_id: str) -> str:
    return f"AGENCY#{agency_id}"


def owner_partition(agency_id: str, client_id: str | None) -> str:
    """ByOwner partition: one agency's client (or the agency itself): one Query lists its connections."""
    return f"OWNER#{agency_id}#{client_id or NONE}"


def owner_sort(level: Level, user_id: str | None, provider: str, connection_id: str) -> str:
    return f"{level.value}#{user_id or NONE}#{provider}#{connection_id}"


def owner_prefix(level: Level, user_id: str | None) -> str:
    return f"{level.value}#{user_id or NONE}#"


def health_partition(agency_id: str) -> str:
    return f"HEALTH#{agency_id}"


def health_sort(status: str, provider: str, client_id: str | None, connection_id: str) -> str:
    return f"{status}#{provider}#{client_id or NONE}#{connection_id}"


def lookup_pk(provider: str, kind: str, value: str) -> str:
    return lookup_key(provider, kind, value)
