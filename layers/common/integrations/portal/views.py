"""What the portal API answers: pydantic models, so the OpenAPI document describes the real shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from integrations.catalog.model import AuthKind, ConfigField, ProviderSpec
from integrations.domain.access import Level, Tier
from integrations.domain.agency import PAUSED_BY_AGENCY, AgencySettings
from integrations.domain.authorization import Decision
from integrations.domain.connection import (
    Connection,
    ConnectionError_,
    ErrorCode,
    MailLogged,
    Notice,
    NoticeCode,
    PortalStatus,
)
from integrations.portal import words
from integrations.sync.import_progress import ImportProgress
from integrations.sync.intervals import DEFAULT_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES, MIN_INTERVAL_MINUTES
from integrations.sync.progress import PushProgress


class ErrorBody(BaseModel):
    """Every error answer: a stable machine-readable code and a message for a person."""

    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="What went wrong, for a person.")
    details: Any | None = Field(default=None, description="Per-field problems for validation errors.")


class MeView(BaseModel):
    show_integrations: bool
    can_manage: bool
    levels: list[Level]


class StatusError(BaseModel):
    """Why a connection shows status `error`: a stable code for machines, words and advice for people."""

    code: ErrorCode = Field(
        description="Stable machine-readable reason: reauth_required, missing_scopes, "
        "provider_unavailable, config_required or sync_failed. Never meant to be shown to people."
    )
    message: str = Field(description="What is wrong, in plain words for the person reading.")
    advice: str = Field(description="What to do about it, in plain words.")
    missing: list[str] = Field(
        default_factory=list,
        description="For missing_scopes: the consent screen's labels of the boxes left unticked. "
        "For config_required: the labels of the settings still to choose.",
    )
    at: datetime = Field(description="When the problem was first seen.")

    @classmethod
    def of(
        cls, error: ConnectionError_ | None, spec: ProviderSpec, connection: Connection, *, agency: bool
    ) -> StatusError | None:
        if error is None:
            return None
        said = words.explain(error.code, spec, connection, agency=agency)
        return cls(
            code=error.code, message=said.message, advice=said.advice, missing=said.missing, at=error.at
        )


class PushProgressView(BaseModel):
    """ "Push existing data": progress while it runs, then the confirmation."""

    state: Literal["pushing", "done", "interrupted"]
    total: int = Field(description="Upcoming appointments to push (counted when the push started).")
    pushed: int
    failed: int
    calendar_id: str
    calendar_label: str = Field(description="The calendar's name as the person knows it.")
    started_at: datetime | None
    finished_at: datetime | None
    message: str = Field(
        description='In words: "Pushing 12 of 300 appointments to Work" or the confirmation.'
    )

    @classmethod
    def of(cls, progress: PushProgress) -> PushProgressView:
        return cls(
            state=progress.state,
            total=progress.total,
            pushed=progress.pushed,
            failed=progress.failed,
            calendar_id=progress.calendar_id,
            calendar_label=progress.calendar_label,
            started_at=progress.started_at,
            finished_at=progress.finished_at,
            message=progress.summary() if progress.state == "done" else progress.running_summary(),
        )


class ImportProgressView(BaseModel):
    """A CRM's initial contact import: progress while it runs, then the confirmation."""

    state: Literal["importing", "done"]
    imported: int = Field(description="Contacts read so far.")
    total: int | None = Field(
        description="Contacts to import, when the provider says (HubSpot, GoHighLevel); null otherwise: "
        "show the count only."
    )
    started_at: datetime
    finished_at: datetime | None
    message: str = Field(
        description='In words: "Importing 1,200 of 10,000 contacts from Acme" or the confirmation.'
    )

    @classmethod
    def of(cls, progress: ImportProgress, connection: Connection) -> ImportProgressView:
        return cls(
            state=progress.state,
            imported=progress.imported,
            total=progress.total,
            started_at=progress.started_at,
            finished_at=progress.finished_at,
            message=progress.summary(connection.account.label),
        )


class NoticeView(BaseModel):
    """Something the card says besides its status; nothing for the person to do."""

    code: NoticeCode = Field(
        description="Stable machine-readable code: subscription_recreating (the provider stopped sending "
        "updates and the subscription is being made again; cleared once it is) or messages_dropped "
        "(messages waited beyond what is kept and the oldest were dropped; shown for a week)."
    )
    message: str = Field(description="The same, in plain words.")
    since: datetime
    count: int = Field(description="How many things it is about (messages dropped); else 0.")

    @classmethod
    def of(cls, notice: Notice, spec: ProviderSpec) -> NoticeView:
        return cls(
            code=notice.code, message=words.notice(notice, spec), since=notice.since, count=notice.count
        )


class SyncView(BaseModel):
    """The connection's sync on the card: when it ran, when it runs next, and the owner's controls."""

    syncing: bool = Field(description="A sync run is under way.")
    paused: bool = Field(description="The owner paused sync: nothing is read or pushed until resumed.")
    interval_minutes: int = Field(description="How often the connection is polled when nothing pushes.")
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    push_existing: PushProgressView | None = Field(description='The latest "Push existing data", if any.')
    contacts_import: ImportProgressView | None = Field(
        default=None, description="CRMs: the initial import of the account's contacts, once it has begun."
    )
    paused_by_agency: bool = Field(
        default=False,
        description="The agency switched personal connections off for this person's group: nothing is "
        "read or pushed until it switches them on again.",
    )
    state_reason: Literal["sync.paused_by_agency"] | None = Field(
        default=None, description="Why sync is stopped when the owner did not stop it; null otherwise."
    )
    state_message: str | None = Field(default=None, description="The same, in words for people.")
    notices: list[NoticeView] = Field(
        description="What the card says while something is being put right (never a status change)."
    )

    @classmethod
    def of(
        cls,
        connection: Connection,
        spec: ProviderSpec,
        now: datetime,
        settings: AgencySettings | None = None,
    ) -> SyncView:
        progress = PushProgress.of(connection)
        imported = ImportProgress.of(connection)
        stopped = settings is not None and settings.stops(connection)
        return cls(
            syncing=connection.status is PortalStatus.SYNCING,
            paused=connection.paused,
            interval_minutes=connection.sync_interval_minutes or DEFAULT_INTERVAL_MINUTES,
            last_sync_at=connection.last_sync_at,
            next_sync_at=None if connection.paused or stopped else connection.next_sync_at,
            push_existing=PushProgressView.of(progress) if progress is not None else None,
            contacts_import=ImportProgressView.of(imported, connection) if imported is not None else None,
            paused_by_agency=stopped,
            state_reason=PAUSED_BY_AGENCY if stopped else None,
            state_message="Your agency has switched off sync for these calendars." if stopped else None,
            notices=[NoticeView.of(n, spec) for n in connection.notices_at(now)],
        )


class SyncChange(BaseModel):
    """Pause or resume sync, and set how often it polls (omit a field to keep it)."""

    model_config = ConfigDict(extra="forbid")

    paused: StrictBool | None = None
    interval_minutes: StrictInt | None = Field(
        default=None,
        description=f"From {MIN_INTERVAL_MINUTES} to {MAX_INTERVAL_MINUTES}; null returns to the default "
        f"({DEFAULT_INTERVAL_MINUTES}).",
    )


class MailLoggedView(BaseModel):
    """The latest mail a BCC logging address logged: no body, and only the other party's address."""

    subject: str
    counterpart: str = Field(
        description="Who the mail was exchanged with: the first recipient of a mail the owner sent, "
        "else the sender."
    )
    at: datetime = Field(description="When it was logged.")

    @classmethod
    def of(cls, logged: MailLogged | None) -> MailLoggedView | None:
        if logged is None:
            return None
        return cls(subject=logged.subject, counterpart=logged.counterpart, at=logged.at)


class ConnectionSummary(BaseModel):
    """One connected account on a card."""

    id: str
    account_label: str = Field(description="The external account, as the provider names it (e.g. an email).")
    status: PortalStatus
    status_label: str = Field(description="The status as the portal shows it: Connected, Error, Syncing.")
    error: StatusError | None = Field(description="Set with status error: why, and what to do.")
    last_sync_at: datetime | None
    sync: SyncView
    inbound_address: str | None = Field(
        default=None,
        description="Inbound-address integrations (the BCC logging address): the address to copy into "
        "BCC. Null for the others.",
    )
    last_mail_logged: MailLoggedView | None = Field(
        default=None, description="Inbound-address integrations: the latest mail logged, if any."
    )

    @classmethod
    def of(
        cls,
        connection: Connection,
        spec: ProviderSpec,
        now: datetime,
        *,
        agency: bool,
        settings: AgencySettings | None = None,
    ) -> ConnectionSummary:
        inbound = spec.auth is AuthKind.INBOUND_EMAIL
        last = connection.last_mail_logged if inbound else None
        return cls(
            id=connection.id,
            account_label=connection.account.label,
            status=connection.status,
            status_label=words.status_label(connection.status),
            error=StatusError.of(connection.error, spec, connection, agency=agency),
            last_sync_at=connection.last_sync_at,
            sync=SyncView.of(connection, spec, now, settings),
            inbound_address=connection.account.label if inbound else None,
            last_mail_logged=MailLoggedView.of(last),
        )


class ConsentPermission(BaseModel):
    """One box on the provider's consent screen."""

    scope: str = Field(description="The OAuth scope, as the callback's `missing` parameter names it.")
    label: str = Field(description="The consent screen's words for it.")
    required: bool = Field(description="Whether the integration needs it (unticking it fails the connect).")


class CardConflict(BaseModel):
    """A connected integration that excludes this one (e.g. one-way vs two-way Google Calendar)."""

    provider: str
    name: str
    connection_id: str
    message: str = Field(description="Why this card cannot be connected now, said before anyone clicks.")


class Card(BaseModel):
    """One integration of the catalog at one level, with the caller's connections of it.

    Texts are for the person reading and never name the agency's plan unless that person is an
    agency admin; codes are for machines and are not meant to be shown.
    """

    provider: str = Field(description="Catalog id of the provider.")
    name: str
    description: str
    logo_url: str = Field(description="Path of the provider's logo on the portal's origin.")
    category: str = Field(description="crm, calendar, scheduling, chat or email.")
    min_tier: Tier | None = Field(
        description="Agency admins only: the plan this integration needs. Null for everyone else, "
        "so a white-label agency's clients never learn its plan."
    )
    available: bool
    unavailable_reason: str | None = Field(
        description="Why it cannot be connected, for the person reading. Clients are told only that it is "
        "not available and to ask their agency; agency admins are told the plan or setting behind it."
    )
    unavailable_code: str | None = Field(
        description="Stable code: tier_too_low or disabled_by_agency (agency admins only), not_available "
        "(everyone else)."
    )
    conflict: CardConflict | None = Field(
        description="Set when a connected integration excludes this one; connecting answers 409 until it is "
        "disconnected."
    )
    status: PortalStatus = Field(
        description="The most urgent status among its connections (error, syncing, connected), "
        "or not_connected without any."
    )
    status_label: str = Field(description="The status as the portal shows it: Connected, Not connected, …")
    connections: list[ConnectionSummary] = Field(description="Oldest first.")
    can_manage: bool = Field(description="Whether the caller may connect, configure and disconnect here.")
    auth: str = Field(
        description="oauth2 (connect through the provider's consent screen), caldav (Apple ID and "
        "app-specific password) or inbound_email (a BCC address is reserved)."
    )
    multiple_accounts: bool = Field(description="Whether one owner may connect several accounts.")
    permissions: list[ConsentPermission] = Field(
        description="What the provider's consent screen asks for, with its own labels."
    )
    config_schema: list[ConfigField] = Field(description="The settings a connection of it takes.")

    @classmethod
    def build(
        cls,
        spec: ProviderSpec,
        availability: Decision,
        connections: list[Connection],
        conflict: tuple[ProviderSpec, Connection] | None,
        now: datetime,
        *,
        can_manage: bool,
        agency: bool,
        settings: AgencySettings | None = None,
    ) -> Card:
        """A card as this caller may see it: the plan only for agency admins, words for every status."""
        statuses = {c.status for c in connections}
        status = next((s for s in _STATUS_PRIORITY if s in statuses), PortalStatus.NOT_CONNECTED)
        return cls(
            provider=spec.id,
            name=spec.name,
            description=spec.description,
            logo_url=spec.logo_url,
            category=spec.category.value,
            min_tier=spec.min_tier if agency else None,
            available=availability.allowed,
            unavailable_reason=availability.message,
            unavailable_code=availability.reason.value if availability.reason else None,
            conflict=_conflict_view(spec, conflict),
            status=status,
            status_label=words.status_label(status),
            connections=[
                ConnectionSummary.of(c, spec, now, agency=agency, settings=settings)
                for c in sorted(connections, key=_created)
            ],
            can_manage=can_manage,
            auth=spec.auth.value,
            multiple_accounts=spec.multiple_accounts,
            permissions=_permissions(spec),
            config_schema=spec.config_schema,
        )


# Worst first: a card shows the most urgent status among its connections.
_STATUS_PRIORITY = (PortalStatus.ERROR, PortalStatus.SYNCING, PortalStatus.CONNECTED)


def _created(connection: Connection) -> datetime:
    return connection.created_at


def _conflict_view(
    spec: ProviderSpec, conflict: tuple[ProviderSpec, Connection] | None
) -> CardConflict | None:
    if conflict is None:
        return None
    other, connection = conflict
    return CardConflict(
        provider=other.id,
        name=other.name,
        connection_id=connection.id,
        message=words.conflict_message(spec, other),
    )


def _permissions(spec: ProviderSpec) -> list[ConsentPermission]:
    if spec.oauth is None:
        return []
    required = set(spec.oauth.required_scopes)
    return [
        ConsentPermission(scope=s, label=spec.oauth.scope_label(s), required=s in required)
        for s in spec.oauth.scopes
    ]


class CardList(BaseModel):
    integrations: list[Card]


class ConnectionView(BaseModel):
    id: str
    provider: str
    level: Level
    client_id: str | None
    user_id: str | None
    account_id: str
    account_label: str
    status: PortalStatus
    status_label: str
    error: StatusError | None
    oauth_scopes: list[str]
    config: dict[str, Any]
    config_schema: list[ConfigField]
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    sync: SyncView
    created_at: datetime
    updated_at: datetime
    can_manage: bool
    # Set when the agency's connection serves this client's account (no own connection yet).
    served_by: str | None = None
    inbound_address: str | None = Field(
        default=None, description="Inbound-address integrations: the address to copy into BCC."
    )
    last_mail_logged: MailLoggedView | None = Field(
        default=None, description="Inbound-address integrations: the latest mail logged, if any."
    )


class ConfigUpdate(BaseModel):
    config: dict[str, Any] = Field(
        description="The whole config; validated against the provider's config schema."
    )


class OptionView(BaseModel):
    value: str
    label: str


class OptionList(BaseModel):
    options: list[OptionView]


class HealthOwner(BaseModel):
    """Whose connection it is."""

    kind: Literal["agency", "client", "person"] = Field(
        description="agency and client: a shared connection; person: someone's own calendar or mailbox."
    )
    client_id: str | None
    user_id: str | None
    group: Literal["staff", "contact"] | None = Field(
        description="For a person: agency staff, or a contact of a client (its users and prospects)."
    )
    label: str = Field(description="The owner in plain words.")


class GrantLapse(BaseModel):
    """When the provider ends the grant if nobody renews it (refresh-token lifetime, not access tokens)."""

    lapses_at: datetime = Field(description="Estimated end of the grant if it is not renewed before.")
    lapses_soon: bool = Field(description="Within two weeks, or already past: someone should look.")
    message: str = Field(description="The same, in plain words.")
    note: str | None = Field(
        description="A caveat for every grant of this provider, e.g. Google's 7-day limit for OAuth apps "
        "still in testing."
    )


class HealthItem(BaseModel):
    connection_id: str
    client_id: str | None
    user_id: str | None
    level: Level
    personal: bool = Field(
        description="A person's own calendar or mailbox (user level), not a client's or the agency's."
    )
    owner: HealthOwner
    provider: str
    provider_name: str
    account_label: str
    status: PortalStatus
    status_label: str
    error: StatusError | None
    last_sync_at: datetime | None
    token_expires_at: datetime | None = Field(
        description="When the current access token expires; it is renewed on use and is no cause for alarm."
    )
    grant: GrantLapse | None = Field(
        description="Null where the provider's grants do not lapse by time (HubSpot, Calendly, Slack)."
    )
    state_reason: Literal["sync.paused_by_agency"] | None = Field(
        default=None,
        description="sync.paused_by_agency: the agency's settings switched this person's connections off.",
    )

    @classmethod
    def of(
        cls, connection: Connection, spec: ProviderSpec, now: datetime, settings: AgencySettings | None = None
    ) -> HealthItem:
        """One row of the agency's health view (read by agency admins only)."""
        owner = words.owner_of(connection)
        lapse = words.grant_lapse(spec, connection, now)
        return cls(
            connection_id=connection.id,
            client_id=connection.client_id,
            user_id=connection.user_id,
            level=connection.level,
            personal=connection.level is Level.USER,
            owner=HealthOwner(
                kind=owner.kind,
                client_id=connection.client_id,
                user_id=connection.user_id,
                group=owner.group,
                label=owner.label,
            ),
            provider=connection.provider,
            provider_name=spec.name,
            account_label=connection.account.label,
            status=connection.status,
            status_label=words.status_label(connection.status),
            error=StatusError.of(connection.error, spec, connection, agency=True),
            last_sync_at=connection.last_sync_at,
            token_expires_at=connection.token_expires_at,
            state_reason=PAUSED_BY_AGENCY if settings is not None and settings.stops(connection) else None,
            grant=GrantLapse(
                lapses_at=lapse.lapses_at, lapses_soon=lapse.soon, message=lapse.message, note=lapse.note
            )
            if lapse
            else None,
        )


class HealthPageView(BaseModel):
    items: list[HealthItem]
    next_cursor: str | None


class SettingsView(BaseModel):
    tier: Tier
    enabled_providers: list[str] | None
    staff_personal_connections: bool
    contact_personal_connections: bool


class WorkflowWebhookView(BaseModel):
    """Where a CRM workflow posts call requests; the secret itself is shown only when issued."""

    url: str
    secret_set: bool


class WorkflowWebhookSecretView(BaseModel):
    """Shown once: send it as `Authorization: Bearer <secret>` from the workflow's webhook action."""

    url: str
    secret: str


class SubAccountView(BaseModel):
    """One sub-account of an agency-level connection (a GHL location) and the client it serves."""

    id: str
    label: str
    client_id: str | None = None
    connection_id: str | None = None
    served_by_agency: bool = False


class SubAccountList(BaseModel):
    sub_accounts: list[SubAccountView]


class ServeSubAccount(BaseModel):
    """Which client the sub-account serves."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
