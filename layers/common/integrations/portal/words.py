"""What the portal says to people: status labels, error explanations and advice, grant lapses, owners.

Codes stay in the API for machines; every text here is plain words a client of a white-label agency
can read. Only agency admins hear about the agency's plan or the platform behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from integrations.catalog.model import ProviderSpec
from integrations.domain.access import Level, Role
from integrations.domain.agency import personal_group
from integrations.domain.connection import Connection, ErrorCode, Notice, NoticeCode, PortalStatus
from integrations.domain.principal import Principal

STATUS_LABELS: dict[PortalStatus, str] = {
    PortalStatus.CONNECTED: "Connected",
    PortalStatus.NOT_CONNECTED: "Not connected",
    PortalStatus.ERROR: "Error",
    PortalStatus.SYNCING: "Syncing",
}

# A grant is flagged this long before it lapses: time for a person to notice and act.
LAPSE_WARNING = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a connection needs attention, and what to do, for the person reading."""

    message: str
    advice: str
    # What is missing in the words the person saw: consent-screen boxes, or settings' labels.
    missing: list[str]


def status_label(status: PortalStatus) -> str:
    """The label the portal shows for a status."""
    return STATUS_LABELS[status]


def speaks_to_agency(principal: Principal) -> bool:
    """Agency admins run the white-label platform; everyone else is the agency's client or its people."""
    return principal.role is Role.AGENCY_ADMIN


def _escalation(agency: bool) -> str:
    return "contact support" if agency else "contact your agency"


def explain(code: ErrorCode, spec: ProviderSpec, connection: Connection, *, agency: bool) -> Explanation:
    """Plain words and advice for a connection's error code; never the code itself."""
    name = spec.name
    if code is ErrorCode.REAUTH_REQUIRED:
        return Explanation(
            f"{name} no longer accepts this connection: access was removed or has expired.",
            f"Reconnect the account and allow access on {name}'s screen.",
            [],
        )
    if code is ErrorCode.MISSING_SCOPES:
        missing = missing_permission_labels(spec, connection.oauth_scopes)
        listed = f": {'; '.join(missing)}" if missing else ""
        return Explanation(
            f"{name} did not grant every permission this integration needs{listed}.",
            f"Reconnect and tick every box on {name}'s consent screen.",
            missing,
        )
    if code is ErrorCode.PROVIDER_UNAVAILABLE:
        return Explanation(
            f"{name} is not answering.",
            f"We keep trying on our own. Try again later; if it keeps failing, {_escalation(agency)}.",
            [],
        )
    if code is ErrorCode.CONFIG_REQUIRED:
        fields = missing_setting_labels(spec, connection)
        listed = ", ".join(fields) if fields else "the required settings"
        return Explanation(
            f"Settings needed before this works: {listed}.",
            f"Open Configure and choose {listed}.",
            fields,
        )
    return Explanation(
        f"Syncing with {name} failed.",
        f"We retry on our own. Try again later; if it keeps failing, {_escalation(agency)}.",
        [],
    )


def notice(said: Notice, spec: ProviderSpec) -> str:
    """A card's notice in plain words."""
    if said.code is NoticeCode.SUBSCRIPTION_RECREATING:
        return (
            f"{spec.name} stopped sending us updates, so we are setting them up again. "
            "Nothing is lost: what happened meanwhile is caught up."
        )
    noun = "message was" if said.count == 1 else "messages were"
    return (
        f"{said.count} {noun} dropped since {said.since.date().isoformat()}: too many were waiting to be "
        f"posted to {spec.name}, so the oldest went first."
    )


def missing_permission_labels(spec: ProviderSpec, granted: list[str]) -> list[str]:
    """The consent screen's labels of the required scopes that were not granted."""
    if spec.oauth is None:
        return []
    have = set(granted)
    return [spec.oauth.scope_label(s) for s in spec.oauth.required_scopes if s not in have]


def missing_setting_labels(spec: ProviderSpec, connection: Connection) -> list[str]:
    """Labels of required settings that have no value yet."""
    return [f.label for f in spec.config_schema if f.required and connection.config.get(f.name) in (None, "")]


def conflict_message(spec: ProviderSpec, other: ProviderSpec) -> str:
    """Why a card cannot be connected while another integration is, said before anyone clicks."""
    return (
        f"{spec.name} cannot be used together with {other.name}, which is connected. "
        f"Disconnect {other.name} first to use this one."
    )


@dataclass(frozen=True, slots=True)
class Lapse:
    lapses_at: datetime
    soon: bool
    message: str
    # A caveat that holds for every grant of this provider (Google: apps still in testing).
    note: str | None


def grant_lapse(spec: ProviderSpec, connection: Connection, now: datetime) -> Lapse | None:
    """When the connection's grant lapses if nobody renews it; None where grants do not lapse by time.

    The clock runs from the last refresh. A refresh stores the new access token's expiry, so that
    expiry stands in for it (off by one access-token lifetime: an hour or a day, against months).
    """
    lifetime = spec.oauth.grant_lifetime if spec.oauth else None
    if lifetime is None:
        return None
    last_renewed = connection.token_expires_at or connection.created_at
    lapses_at = last_renewed + timedelta(days=lifetime.unused_days)
    soon = lapses_at - now <= LAPSE_WARNING
    day = lapses_at.date().isoformat()
    if lapses_at <= now:
        message = f"Not renewed for {lifetime.unused_days} days: {spec.name} has probably ended access."
    elif soon:
        message = f"Not renewed lately: {spec.name} ends access on {day} unless it is used before then."
    else:
        message = f"Renewed in time ({spec.name} ends access unused for {lifetime.unused_days} days)."
    note = (
        f"Grants from an OAuth app still in testing end {lifetime.testing_days} days after consent."
        if lifetime.testing_days
        else None
    )
    return Lapse(lapses_at, soon, message, note)


@dataclass(frozen=True, slots=True)
class Owner:
    kind: Literal["agency", "client", "person"]
    # For a person: "staff" (agency staff and admins) or "contact" (a client's users and prospects),
    # the two groups the agency's settings switch personal connections on and off for.
    group: Literal["staff", "contact"] | None
    label: str


def owner_of(connection: Connection) -> Owner:
    """Whose connection this is: the agency, a client, or a person and the side they are on."""
    if connection.level is Level.AGENCY:
        return Owner("agency", None, "Agency")
    if connection.level is Level.CLIENT:
        return Owner("client", None, f"Client {connection.client_id}")
    person = connection.user_id or "unknown person"
    if personal_group(connection) == "staff":
        return Owner("person", "staff", f"{person} (agency staff)")
    return Owner("person", "contact", f"{person} (contact at {connection.client_id})")
