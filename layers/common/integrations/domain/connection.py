"""A connected external account and its lifecycle: statuses and transitions written once (design §5)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.access import Level, Role
from integrations.domain.clock import utcnow as _utcnow

# Callers import the clock from here too; it lives in domain/clock.py, which needs no pydantic.
utcnow = _utcnow


class PortalStatus(StrEnum):
    """What the portal shows. `not_connected` belongs to a card with no connection."""

    CONNECTED = "connected"
    NOT_CONNECTED = "not_connected"
    ERROR = "error"
    SYNCING = "syncing"


class AuthHealth(StrEnum):
    OK = "ok"
    REAUTH_REQUIRED = "reauth_required"
    MISSING_SCOPES = "missing_scopes"
    # Sustained provider failure while refreshing; single failures only count up.
    PROVIDER_UNAVAILABLE = "provider_unavailable"


class SyncHealth(StrEnum):
    IDLE = "idle"
    SYNCING = "syncing"
    FAILED = "failed"
    CONFIG_REQUIRED = "config_required"


class ErrorCode(StrEnum):
    """Stable codes the portal and the health view show with status `error`."""

    REAUTH_REQUIRED = "reauth_required"
    MISSING_SCOPES = "missing_scopes"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    CONFIG_REQUIRED = "config_required"
    SYNC_FAILED = "sync_failed"


class NoticeCode(StrEnum):
    """What a card tells people besides its status: nothing for them to do, but worth knowing."""

    # The provider stopped delivering to a push subscription (Calendly disables one after a day of
    # failed deliveries); it is being made again, and what was missed is caught up.
    SUBSCRIPTION_RECREATING = "subscription_recreating"
    # Messages waited longer than the outbox keeps that many; the oldest were dropped.
    MESSAGES_DROPPED = "messages_dropped"


class Notice(BaseModel):
    """One notice on a connection: since when, how many things it counts, until when it shows."""

    model_config = ConfigDict(frozen=True)

    code: NoticeCode
    since: datetime
    count: int = 0
    # None: shown until cleared by what it is about.
    until: datetime | None = None

    def shows_at(self, now: datetime) -> bool:
        return self.until is None or now < self.until


class ConnectionError_(BaseModel):
    """Why a connection needs attention."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    at: datetime


class ExternalAccount(BaseModel):
    """The provider-side identity: stable id (for re-authorization) and a label for people."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str


class MailLogged(BaseModel):
    """The latest mail an inbound logging address logged, as its card shows it (no body, one address)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    subject: str = Field(default="", max_length=998)
    # The other party: the first recipient of an outbound mail, the sender of an inbound one.
    counterpart: str = Field(default="", max_length=320)


class StatusChange(BaseModel):
    """A transition that changed the portal status; events are emitted only for these."""

    model_config = ConfigDict(frozen=True)

    before: PortalStatus
    after: PortalStatus

    @property
    def is_error(self) -> bool:
        return self.after is PortalStatus.ERROR

    @property
    def is_recovery(self) -> bool:
        return self.before is PortalStatus.ERROR and self.after is not PortalStatus.ERROR


class Connection(BaseModel):
    """One external account connected at one level by one owner."""

    model_config = ConfigDict(validate_assignment=True)

    id: str
    provider: str
    level: Level
    agency_id: str
    client_id: str | None = None
    user_id: str | None = None
    # A person's own connection: the owner's role when they connected it (verified claims), which
    # says which agency switch covers it. None for agency and client connections, and for personal
    # ones made before the role was recorded (domain.agency.personal_group keeps their old grouping).
    owner_role: Role | None = None
    account: ExternalAccount
    oauth_scopes: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    auth_health: AuthHealth = AuthHealth.OK
    sync_health: SyncHealth = SyncHealth.IDLE
    # Auth and sync trouble are separate facts, each with its own explanation.
    auth_error: ConnectionError_ | None = None
    sync_error: ConnectionError_ | None = None
    consecutive_failures: int = 0
    last_sync_at: datetime | None = None
    # When the latest sync run began: jobs received before it are covered by that run.
    sync_started_at: datetime | None = None
    next_sync_at: datetime | None = None
    # The owner's sync controls: paused stops reading and pushing (maintenance goes on); the interval
    # is how often a connection is polled when nothing pushes (None: the engine's default).
    paused: bool = False
    sync_interval_minutes: int | None = None
    token_expires_at: datetime | None = None
    cursors: dict[str, Any] = Field(default_factory=dict)
    # Not errors and never part of the status: what the card says while something is being put right.
    notices: list[Notice] = Field(default_factory=list)
    # When a grant that never expires was last checked at the provider (maintenance, daily).
    grant_checked_at: datetime | None = None
    lookup_keys: list[str] = Field(default_factory=list)
    # A client's sub-account served through the agency's connection (its id): tokens are minted from
    # the agency's grant until the client connects its own account, which clears this.
    served_by: str | None = None
    # The verified email of the person who connected it, when their token carried one: the BCC
    # logging address's owner writes from it (see mail/inbound.py for how it decides direction).
    owner_email: str | None = None
    last_mail_logged: MailLogged | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 0

    @property
    def error(self) -> ConnectionError_ | None:
        """What the portal shows with status `error`: auth trouble first, since it needs the user."""
        return self.auth_error or self.sync_error

    @property
    def status(self) -> PortalStatus:
        """The one place where auth health and sync health become what the portal shows."""
        if self.auth_health is not AuthHealth.OK or self.sync_health in (
            SyncHealth.FAILED,
            SyncHealth.CONFIG_REQUIRED,
        ):
            return PortalStatus.ERROR
        if self.sync_health is SyncHealth.SYNCING:
            return PortalStatus.SYNCING
        return PortalStatus.CONNECTED

    # --- transitions: each returns the status change, or None when the portal status stays ---

    def reauthorized(
        self, oauth_scopes: list[str], account: ExternalAccount, now: datetime
    ) -> StatusChange | None:
        """The owner connected the same account again: keep id, config and cursors; clear auth trouble."""
        return self._transition(
            now,
            oauth_scopes=oauth_scopes,
            account=account,
            served_by=None,
            auth_health=AuthHealth.OK,
            consecutive_failures=0,
            auth_error=None,
            sync_health=SyncHealth.IDLE if self.sync_health is SyncHealth.FAILED else self.sync_health,
            sync_error=self.sync_error if self.sync_health is SyncHealth.CONFIG_REQUIRED else None,
        )

    def auth_failed(self, code: ErrorCode, message: str, now: datetime) -> StatusChange | None:
        """A definitive auth failure (invalid_grant, revoked, scopes withdrawn): action needed now."""
        health = AuthHealth.MISSING_SCOPES if code is ErrorCode.MISSING_SCOPES else AuthHealth.REAUTH_REQUIRED
        return self._transition(
            now, auth_health=health, auth_error=ConnectionError_(code=code, message=message, at=now)
        )

    def provider_failed(self, message: str, now: datetime, threshold: int) -> StatusChange | None:
        """A transient provider failure: counts, and only a sustained run of them becomes an error."""
        failures = self.consecutive_failures + 1
        if failures < threshold:
            return self._transition(now, consecutive_failures=failures)
        return self._transition(
            now,
            consecutive_failures=failures,
            auth_health=AuthHealth.PROVIDER_UNAVAILABLE
            if self.auth_health is AuthHealth.OK
            else self.auth_health,
            auth_error=self.auth_error
            or ConnectionError_(code=ErrorCode.PROVIDER_UNAVAILABLE, message=message, at=now),
        )

    def provider_succeeded(self, now: datetime) -> StatusChange | None:
        """A call to the provider worked: clears transient trouble (not a reauth or config need)."""
        if self.auth_health is AuthHealth.PROVIDER_UNAVAILABLE:
            return self._transition(now, consecutive_failures=0, auth_health=AuthHealth.OK, auth_error=None)
        if self.consecutive_failures:
            return self._transition(now, consecutive_failures=0)
        return None

    def sync_started(self, now: datetime, retry_at: datetime) -> StatusChange | None:
        """A run began; `retry_at` is when the scheduler looks again should this run never finish."""
        return self._transition(
            now, sync_health=SyncHealth.SYNCING, sync_started_at=now, next_sync_at=retry_at
        )

    def sync_scheduled(self, next_sync_at: datetime, now: datetime) -> StatusChange | None:
        """When the scheduler offers the connection next (maintenance only, or a paused connection)."""
        return self._transition(now, next_sync_at=next_sync_at)

    def paused_by_owner(self, now: datetime) -> StatusChange | None:
        return self._transition(
            now,
            paused=True,
            sync_health=SyncHealth.IDLE if self.sync_health is SyncHealth.SYNCING else self.sync_health,
        )

    def resumed(self, now: datetime) -> StatusChange | None:
        """Sync runs again, starting now."""
        return self._transition(now, paused=False, next_sync_at=now)

    def interval_set(self, minutes: int | None, now: datetime) -> StatusChange | None:
        """A new polling interval; the next run moves closer when the new interval says so."""
        changes: dict[str, Any] = {"sync_interval_minutes": minutes}
        if minutes is not None and self.last_sync_at is not None:
            sooner = self.last_sync_at + timedelta(minutes=minutes)
            if self.next_sync_at is None or sooner < self.next_sync_at:
                changes["next_sync_at"] = max(sooner, now)
        return self._transition(now, **changes)

    def sync_paused(self, now: datetime) -> StatusChange | None:
        """A run stopped early (out of time, rate limited, backing off): no longer syncing, no error."""
        if self.sync_health is not SyncHealth.SYNCING:
            return None
        return self._transition(now, sync_health=SyncHealth.IDLE)

    def cursor_saved(self, key: str, value: Any, now: datetime) -> StatusChange | None:
        """A checkpoint: one scope's cursor moved on (never a status change)."""
        return self._transition(now, cursors={**self.cursors, key: value})

    def cursor_saved_many(self, values: dict[str, Any], now: datetime) -> StatusChange | None:
        """A checkpoint of several cursors at once (a page's cursor and the progress it made)."""
        return self._transition(now, cursors={**self.cursors, **values})

    def noticed(
        self, code: NoticeCode, now: datetime, *, count: int = 0, until: datetime | None = None
    ) -> StatusChange | None:
        """Show a notice (never a status change); one still shown keeps its `since` and adds `count`."""
        kept = next((n for n in self.notices if n.code is code and n.shows_at(now)), None)
        notice = Notice(
            code=code,
            since=kept.since if kept is not None else now,
            count=(kept.count if kept is not None else 0) + count,
            until=until,
        )
        return self._transition(now, notices=[*(n for n in self.notices if n.code is not code), notice])

    def notice_cleared(self, code: NoticeCode, now: datetime) -> StatusChange | None:
        """What the notice was about is over."""
        if all(n.code is not code for n in self.notices):
            return None
        return self._transition(now, notices=[n for n in self.notices if n.code is not code])

    def notices_at(self, now: datetime) -> list[Notice]:
        """The notices a card shows at `now`."""
        return [n for n in self.notices if n.shows_at(now)]

    def grant_checked(self, now: datetime) -> StatusChange | None:
        """The provider still accepts the grant (a daily check of grants that never expire)."""
        return self._transition(now, grant_checked_at=now)

    @property
    def waits_for_person(self) -> bool:
        """Whether syncing needs the owner first: a lost grant, missing scopes or a missing setting."""
        return self.auth_health in (AuthHealth.REAUTH_REQUIRED, AuthHealth.MISSING_SCOPES) or (
            self.sync_health is SyncHealth.CONFIG_REQUIRED
        )

    def sync_succeeded(
        self, now: datetime, cursors: dict[str, Any], next_sync_at: datetime | None
    ) -> StatusChange | None:
        return self._transition(
            now,
            sync_health=SyncHealth.IDLE,
            sync_error=None,
            cursors={**self.cursors, **cursors},
            last_sync_at=now,
            next_sync_at=next_sync_at,
        )

    def sync_failed(self, message: str, now: datetime) -> StatusChange | None:
        return self._transition(
            now,
            sync_health=SyncHealth.FAILED,
            sync_error=ConnectionError_(code=ErrorCode.SYNC_FAILED, message=message, at=now),
        )

    def config_needed(self, message: str, now: datetime) -> StatusChange | None:
        return self._transition(
            now,
            sync_health=SyncHealth.CONFIG_REQUIRED,
            sync_error=ConnectionError_(code=ErrorCode.CONFIG_REQUIRED, message=message, at=now),
        )

    def configured(self, config: dict[str, Any], now: datetime) -> StatusChange | None:
        """New, validated config. Clears a config_required error."""
        clears = self.sync_health is SyncHealth.CONFIG_REQUIRED
        return self._transition(
            now,
            config=config,
            sync_health=SyncHealth.IDLE if clears else self.sync_health,
            sync_error=None if clears else self.sync_error,
        )

    def mail_logged(self, entry: MailLogged, now: datetime) -> StatusChange | None:
        """An inbound logging address logged a mail (never a status change); an older one never wins."""
        if self.last_mail_logged is not None and self.last_mail_logged.at > entry.at:
            return None
        return self._transition(now, last_mail_logged=entry)

    def _transition(self, now: datetime, **changes: Any) -> StatusChange | None:
        before = self.status
        for name, value in changes.items():
            setattr(self, name, value)
        self.updated_at = now
        after = self.status
        return None if before is after else StatusChange(before=before, after=after)
