"""Portal use cases. Routes parse and shape; every rule is applied here, through the domain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from integrations.catalog.config_validation import Choices, check_choices, validate_config
from integrations.catalog.model import AuthKind, ConfigField, ProviderSpec
from integrations.connections.resubscribe import moves_subscriptions, resubscribe
from integrations.domain.access import Level, Role
from integrations.domain.agency import AgencySettings, AgencySettingsUpdate
from integrations.domain.authorization import (
    Action,
    Scope,
    authorize,
    availability,
    explained_to,
    may_see_integrations,
    resolve_scope,
)
from integrations.domain.connection import Connection, ErrorCode, PortalStatus
from integrations.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from integrations.domain.principal import Principal
from integrations.events import IntegrationConfigChanged
from integrations.portal.views import (
    Card,
    CardList,
    ConnectionView,
    HealthItem,
    HealthPageView,
    MailLoggedView,
    MeView,
    OptionList,
    OptionView,
    PushProgressView,
    ServeSubAccount,
    SettingsView,
    StatusError,
    SubAccountList,
    SubAccountView,
    SyncChange,
    SyncView,
    WorkflowWebhookSecretView,
    WorkflowWebhookView,
)
from integrations.portal.words import speaks_to_agency, status_label
from integrations.providers.registry import module_for

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from integrations.catalog.loader import Catalog
    from integrations.connections.apply import ConnectionTransitions
    from integrations.connections.disconnect import Disconnector
    from integrations.connections.served import ServedAccounts
    from integrations.domain.credentials import Credentials
    from integrations.domain.lookup import Lookup
    from integrations.store.agencies import AgencyRepository
    from integrations.store.connections import ConnectionRepository
    from integrations.sync.controls import SyncControls
    from integrations.webhooks.subscriptions import SubscriptionContext


class PortalService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        connections: ConnectionRepository,
        agencies: AgencyRepository,
        transitions: ConnectionTransitions,
        fresh_credentials: Callable[[Connection], Credentials],
        disconnector: Disconnector,
        sync_controls: Callable[[], SyncControls],
        clock: Callable[[], datetime],
        logger: Logger,
        subscriptions: Callable[[], SubscriptionContext] | None = None,
        served: Callable[[], ServedAccounts] | None = None,
        public_api_url: str = "",
    ) -> None:
        self._public_api_url = public_api_url
        self._clock = clock
        # Sub-accounts an agency-level connection serves for clients (built on first use).
        self._served = served
        # Push subscriptions that follow the config (a watch channel on the chosen calendar); built on
        # first use, so the keys and secrets they need cost nothing at cold start.
        self._subscriptions = subscriptions
        self._catalog = catalog
        self._connections = connections
        self._agencies = agencies
        self._transitions = transitions
        # Refreshes a token first when it is about to expire (the token manager, built on first use).
        self._fresh_credentials = fresh_credentials
        self._disconnector = disconnector
        # Built on first use: reading a card never builds the sync engine's adapters.
        self._sync_controls = sync_controls
        self._log = logger

    # --- who am I ---

    def me(self, principal: Principal) -> MeView:
        settings = self._agencies.get(principal.agency_id)
        levels = may_see_integrations(principal, settings)
        can_manage = any(
            authorize(principal, _scope_for_manage_check(principal, level), Action.MANAGE, settings).allowed
            for level in levels
        )
        return MeView(show_integrations=bool(levels), can_manage=can_manage, levels=levels)

    # --- cards ---

    def cards(self, principal: Principal, level: Level, client_id: str | None) -> CardList:
        """The cards of one level: one GetItem for the agency's settings, one Query for the connections."""
        scope = resolve_scope(principal, level, client_id)
        settings = self._agencies.get(principal.agency_id)
        authorize(principal, scope, Action.VIEW, settings).raise_if_denied()
        can_manage = authorize(principal, scope, Action.MANAGE, settings).allowed
        by_provider: dict[str, list[Connection]] = {}
        for connection in self._connections.list_for_scope(scope):
            by_provider.setdefault(connection.provider, []).append(connection)
        cards = [
            self._card(principal, spec, level, settings, by_provider, can_manage)
            for spec in self._catalog
            if level in spec.levels
        ]
        return CardList(integrations=cards)

    def _card(
        self,
        principal: Principal,
        spec: ProviderSpec,
        level: Level,
        settings: AgencySettings,
        by_provider: dict[str, list[Connection]],
        can_manage: bool,
    ) -> Card:
        decision = availability(spec.id, spec.min_tier, spec.levels, level, settings)
        conflict = next(
            ((self._catalog.get(p), by_provider[p][0]) for p in spec.conflicts_with if by_provider.get(p)),
            None,
        )
        return Card.build(
            spec,
            explained_to(principal, decision),
            by_provider.get(spec.id, []),
            conflict,
            self._clock(),
            can_manage=can_manage,
            agency=speaks_to_agency(principal),
            settings=settings,
        )

    # --- one connection ---

    def connection(self, principal: Principal, connection_id: str) -> ConnectionView:
        connection, can_manage = self._authorized(principal, connection_id, Action.VIEW)
        return self._view(connection, can_manage, speaks_to_agency(principal))

    def update_config(
        self, principal: Principal, connection_id: str, read_config: Callable[[], dict[str, Any]]
    ) -> ConnectionView:
        """Check the caller, then read the new config (so its problems come after 403/404) and apply it."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        config = read_config()
        spec = self._catalog.get(connection.provider)
        normalized = validate_config(spec, config)
        check_choices(spec, normalized, connection.config, self._choices(connection, spec))
        before = dict(connection.config)  # apply() may change `connection` itself
        waited = connection.sync_error is not None and connection.sync_error.code is ErrorCode.CONFIG_REQUIRED
        applied = self._transitions.apply(
            connection,
            lambda c, now: c.configured(normalized, now),
            announce=lambda c, _: [IntegrationConfigChanged.of(c, config=normalized)],
        )
        if applied is None:
            raise NotFound("No such connection.", code="connection_not_found")
        if self._subscriptions is not None and moves_subscriptions(
            spec, self._subscriptions(), before, normalized
        ):
            self._move_subscriptions(spec, applied.connection)
        if waited and not applied.connection.waits_for_person:
            self._resume_after_fix(applied.connection)
        return self._view(applied.connection, True, speaks_to_agency(principal))

    def _resume_after_fix(self, connection: Connection) -> None:
        """The config fixed what the connection waited for: run it now, so what waited (messages,
        pushes) goes out at once instead of at the next scheduled sync. Best effort."""
        try:
            self._sync_controls().sync_now(connection)
        except Exception as exc:  # the scheduler runs it anyway
            self._log.warning("sync after config fix not queued", extra={"error": type(exc).__name__})

    def _move_subscriptions(self, spec: ProviderSpec, connection: Connection) -> None:
        """Watch what the new config names, then stop the old watch; best effort (sync still polls)."""
        assert self._subscriptions is not None
        try:
            credentials = self._fresh_credentials(connection)
            if credentials.access_token is None:
                return
            token = credentials.access_token.get_secret_value()
            resubscribe(spec, connection, token, self._subscriptions(), self._connections)
        except Exception as exc:
            self._log.warning(
                "subscriptions not moved to the new config",
                extra={"connection_id": connection.id, "error": type(exc).__name__},
            )

    def _choices(self, connection: Connection, spec: ProviderSpec) -> Choices:
        """The provider's current options for a field, read as the options route reads them."""
        credentials: list[Credentials] = []

        def values(field: ConfigField, parent: str | None) -> list[str]:
            # A refused grant (a 401 / 403 from the provider) turns the card to reauth_required at once.
            with self._transitions.reauth_on_refusal(connection):
                if not credentials:
                    credentials.append(self._fresh_credentials(connection))
                options = module_for(spec.id).options(spec, connection, credentials[0], field.name, parent)
            return [o.value for o in options]

        return values

    def options(self, principal: Principal, connection_id: str, field: str, parent: str | None) -> OptionList:
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        spec = self._catalog.get(connection.provider)
        config_field = spec.config_field(field)
        if config_field is None or config_field.options_source is None:
            raise NotFound(f"{spec.name} has no options for '{field}'.", code="unknown_field")
        if config_field.depends_on and not parent:
            raise ValidationFailed(
                f"Choose {config_field.depends_on} first.",
                code="parent_required",
                details=[
                    {"field": "depends_on", "message": f"the value of {config_field.depends_on} is required"}
                ],
            )
        # A refused grant (a 401 / 403 from the provider) turns the card to reauth_required at once.
        with self._transitions.reauth_on_refusal(connection):
            credentials = self._fresh_credentials(connection)
            options = module_for(spec.id).options(spec, connection, credentials, config_field.name, parent)
        return OptionList(options=[OptionView(value=o.value, label=o.label) for o in options])

    def send_test_message(self, principal: Principal, connection_id: str) -> ConnectionView:
        """Post a test message where the connection's notifications go (manage permission)."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        spec = self._catalog.get(connection.provider)
        # A refused grant (a 401 / 403 from the provider) turns the card to reauth_required at once.
        with self._transitions.reauth_on_refusal(connection):
            credentials = self._fresh_credentials(connection)
            module_for(spec.id).send_test_message(spec, connection, credentials)
        return self._view(connection, True, speaks_to_agency(principal))

    def disconnect(self, principal: Principal, connection_id: str) -> None:
        """Revoke and unsubscribe (best effort), announce, then delete credentials, lookups and connection."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        self._disconnector.disconnect(connection)

    # --- sub-accounts an agency-level connection serves (agency admins) ---

    def sub_accounts(self, principal: Principal, connection_id: str) -> SubAccountList:
        """The agency connection's sub-accounts as the provider lists them, and whom each serves."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        with self._transitions.reauth_on_refusal(connection):
            found = self._served_accounts().list(connection)
        return SubAccountList(sub_accounts=[SubAccountView(**vars_of(a)) for a in found])

    def serve_sub_account(
        self,
        principal: Principal,
        connection_id: str,
        sub_account_id: str,
        read_body: Callable[[], ServeSubAccount],
    ) -> ConnectionView:
        """Map a client to a sub-account: the client's card shows it connected through the agency."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        body = read_body()
        with self._transitions.reauth_on_refusal(connection):
            served = self._served_accounts().serve(connection, body.client_id, sub_account_id)
        return self._view(served, True, speaks_to_agency(principal))

    def stop_serving(self, principal: Principal, connection_id: str, sub_account_id: str) -> None:
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        self._served_accounts().stop(connection, sub_account_id)

    def _served_accounts(self) -> ServedAccounts:
        if self._served is None:
            raise Conflict("Sub-accounts are not available here.", code="sub_accounts_not_supported")
        return self._served()

    # --- the URL a CRM workflow asks for calls through (manage) ---

    def workflow_webhook(self, principal: Principal, connection_id: str) -> WorkflowWebhookView:
        """The workflow URL and whether a secret is set; never the secret (only its digest is kept)."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        module = module_for(connection.provider)
        url = module.workflow_url(connection, self._public_api_url)
        held = self._workflow_lookup(connection)
        return WorkflowWebhookView(
            url=url, secret_set=held is not None and held.connection_id == connection.id
        )

    def rotate_workflow_webhook(self, principal: Principal, connection_id: str) -> WorkflowWebhookSecretView:
        """Issue a new secret, shown once; the previous one is refused from now on."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        held = self._workflow_lookup(connection)
        if held is not None and held.connection_id != connection.id:
            # Another connection (another client's, for the same location) owns the workflow URL.
            raise Conflict(
                "Another connection receives this account's workflow calls.", code="workflow_webhook_taken"
            )
        issued = module_for(connection.provider).issue_workflow_secret(connection, self._public_api_url)
        self._connections.put_lookups(connection, [issued.lookup])
        return WorkflowWebhookSecretView(url=issued.url, secret=issued.secret)

    def _workflow_lookup(self, connection: Connection) -> Lookup | None:
        kind = module_for(connection.provider).workflow_lookup
        if kind is None:
            return None
        return self._connections.get_lookup(connection.provider, kind, connection.account.id)

    # --- sync controls (manage) ---

    def sync_now(self, principal: Principal, connection_id: str) -> ConnectionView:
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        self._sync_controls().sync_now(connection)
        return self._view(connection, True, speaks_to_agency(principal))

    def change_sync(
        self, principal: Principal, connection_id: str, read_change: Callable[[], tuple[SyncChange, bool]]
    ) -> ConnectionView:
        """Pause / resume and the interval; the body is read after the caller is checked."""
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        change, interval_given = read_change()
        saved = self._sync_controls().change(
            connection,
            paused=change.paused,
            interval_minutes=change.interval_minutes,
            reset_interval=interval_given and change.interval_minutes is None,
        )
        return self._view(saved, True, speaks_to_agency(principal))

    def push_existing(self, principal: Principal, connection_id: str) -> PushProgressView:
        connection, _ = self._authorized(principal, connection_id, Action.MANAGE)
        return PushProgressView.of(self._sync_controls().push_existing(connection))

    # --- agency ---

    def health(
        self,
        principal: Principal,
        status: PortalStatus | None,
        provider: str | None,
        cursor: str | None,
        limit: int,
    ) -> HealthPageView:
        _require_agency_admin(principal)
        if provider is not None and provider not in self._catalog:
            raise ValidationFailed(
                f"Unknown provider '{provider}'.",
                code="unknown_provider",
                details=[{"field": "provider", "message": "is not a provider in the catalog"}],
            )
        page = self._connections.health_page(
            principal.agency_id, status=status, provider=provider, cursor=cursor, limit=limit
        )
        now = self._clock()
        settings = self._agencies.get(principal.agency_id)
        return HealthPageView(
            items=[HealthItem.of(c, self._catalog.get(c.provider), now, settings) for c in page.connections],
            next_cursor=page.next_cursor,
        )

    def settings(self, principal: Principal) -> SettingsView:
        _require_agency_admin(principal)
        return _settings_view(self._agencies.get(principal.agency_id))

    def update_settings(
        self, principal: Principal, read_update: Callable[[], AgencySettingsUpdate]
    ) -> SettingsView:
        """Check the caller is an agency admin, then read the update (its problems come after 403)."""
        _require_agency_admin(principal)
        update = read_update()
        if update.enabled_providers is not None:
            unknown = [p for p in update.enabled_providers if p not in self._catalog]
            if unknown:
                raise ValidationFailed(
                    f"Unknown providers: {', '.join(unknown)}.",
                    code="unknown_provider",
                    details=[{"field": "enabled_providers", "message": f"unknown: {', '.join(unknown)}"}],
                )
        current = self._agencies.get(principal.agency_id)
        saved = self._agencies.save(current.model_copy(update=update.model_dump()))
        return _settings_view(saved)

    # --- helpers ---

    def _authorized(
        self, principal: Principal, connection_id: str, action: Action
    ) -> tuple[Connection, bool]:
        """Load a connection the caller may see (else 404), then check the action (else 403)."""
        connection = self._connections.get(connection_id)
        if connection is None or not _is_visible_owner(principal, connection):
            raise NotFound("No such connection.", code="connection_not_found")
        settings = self._agencies.get(principal.agency_id)
        scope = Scope(connection.agency_id, connection.level, connection.client_id, connection.user_id)
        view = authorize(principal, scope, Action.VIEW, settings)
        if not view.allowed:
            raise NotFound("No such connection.", code="connection_not_found")
        manage = authorize(principal, scope, Action.MANAGE, settings)
        if action is Action.MANAGE:
            manage.raise_if_denied()
        return connection, manage.allowed

    def _view(self, connection: Connection, can_manage: bool, agency: bool) -> ConnectionView:
        spec = self._catalog.get(connection.provider)
        return ConnectionView(
            id=connection.id,
            provider=connection.provider,
            level=connection.level,
            client_id=connection.client_id,
            user_id=connection.user_id,
            account_id=connection.account.id,
            account_label=connection.account.label,
            status=connection.status,
            status_label=status_label(connection.status),
            error=StatusError.of(connection.error, spec, connection, agency=agency),
            oauth_scopes=connection.oauth_scopes,
            config=connection.config,
            config_schema=spec.config_schema,
            last_sync_at=connection.last_sync_at,
            next_sync_at=connection.next_sync_at,
            sync=SyncView.of(connection, spec, self._clock(), self._agencies.get(connection.agency_id)),
            created_at=connection.created_at,
            updated_at=connection.updated_at,
            can_manage=can_manage,
            served_by=connection.served_by,
            inbound_address=connection.account.label if spec.auth is AuthKind.INBOUND_EMAIL else None,
            last_mail_logged=MailLoggedView.of(connection.last_mail_logged)
            if spec.auth is AuthKind.INBOUND_EMAIL
            else None,
        )


def _is_visible_owner(principal: Principal, connection: Connection) -> bool:
    """Is this connection within what the caller's tenancy could ever see? (Otherwise: 404.)"""
    if connection.agency_id != principal.agency_id:
        return False
    if connection.level is Level.USER:
        # Its person, in the client context it was connected in: as listed (domain.authorization).
        return connection.user_id == principal.sub and connection.client_id == principal.client_id
    if connection.level is Level.AGENCY:
        return principal.role is Role.AGENCY_ADMIN
    return principal.role is Role.AGENCY_ADMIN or connection.client_id == principal.client_id


def _require_agency_admin(principal: Principal) -> None:
    if principal.role is not Role.AGENCY_ADMIN:
        raise Forbidden("Only agency admins can do this.", code="agency_admin_only")


def _scope_for_manage_check(principal: Principal, level: Level) -> Scope:
    if level is Level.CLIENT and principal.role is Role.AGENCY_ADMIN:
        return Scope(principal.agency_id, level, "*", None)
    return resolve_scope(principal, level)


def _settings_view(settings: AgencySettings) -> SettingsView:
    return SettingsView(
        tier=settings.tier,
        enabled_providers=settings.enabled_providers,
        staff_personal_connections=settings.staff_personal_connections,
        contact_personal_connections=settings.contact_personal_connections,
    )


def vars_of(account: object) -> dict[str, object]:
    """A dataclass's fields as a dict (slots dataclasses have no __dict__)."""
    from dataclasses import asdict, is_dataclass

    assert is_dataclass(account) and not isinstance(account, type)
    return asdict(account)
