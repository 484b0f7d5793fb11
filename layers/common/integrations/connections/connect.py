"""Connect by auth kind: OAuth (after the code exchange), password (CalDAV) and inbound address.

Whatever the kind, connecting the same external account at the same level and owner again
re-authorizes the existing connection in place (same id, config and cursors, design §5); another
account where the provider allows only one is `already_connected`; a catalog conflict is
`conflicts_with`. The kind comes from the catalog entry's `auth`, never from the provider id.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from integrations.catalog.model import AuthKind
from integrations.catalog.scopes import granted_scopes, missing_scopes
from integrations.domain.access import Level, Role
from integrations.domain.authorization import (
    Action,
    Scope,
    authorize,
    availability,
    explained_to,
    resolve_scope,
)
from integrations.domain.connection import Connection, ExternalAccount, StatusChange
from integrations.domain.credentials import Credentials
from integrations.domain.errors import BadRequest, Conflict, ValidationFailed
from integrations.events import IntegrationConnected
from integrations.observability import SECRET_KEYS, get_logger
from integrations.providers import registry
from integrations.store.vault import credential_ref

if TYPE_CHECKING:
    from integrations.catalog.loader import Catalog
    from integrations.catalog.model import ProviderSpec
    from integrations.connections.after_connect import AfterConnect, JobSink
    from integrations.connections.apply import ConnectionTransitions
    from integrations.connections.disconnect import Revoke
    from integrations.domain.agency import AgencySettings
    from integrations.domain.credentials import AppCredentials
    from integrations.domain.principal import Principal
    from integrations.store.connections import ConnectionRepository
    from integrations.store.vault import TokenVault
    from integrations.webhooks.subscriptions import SubscriptionContext

logger = get_logger()


class ConnectRequest(BaseModel):
    """Body of `POST /integrations/{provider}/connect`; the provider's auth kind says which fields apply."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    level: Level | None = Field(
        default=None, description="Default: the provider's only level, else `client`."
    )
    client_id: str | None = Field(default=None, max_length=128)
    apple_id: str | None = Field(
        default=None,
        min_length=3,
        max_length=320,
        description="Password providers (iCloud): the account name. Required for them, refused otherwise.",
    )
    app_password: SecretStr | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Password providers (iCloud): an app-specific password. Required for them, "
        "refused otherwise.",
    )


# Which body fields each auth kind takes (the others are refused, as an unknown field would be).
_PASSWORD_FIELDS = ("apple_id", "app_password")
_FIELDS_OF_KIND: Mapping[AuthKind, tuple[str, ...]] = {
    AuthKind.CALDAV: _PASSWORD_FIELDS,
    AuthKind.INBOUND_EMAIL: (),
}


@dataclass(frozen=True, slots=True)
class ConnectResult:
    connection: Connection
    created: bool

    def to_body(self) -> dict[str, Any]:
        c = self.connection
        return {
            "id": c.id,
            "provider": c.provider,
            "level": c.level.value,
            "account_label": c.account.label,
            "status": c.status.value,
            "error": c.error.model_dump(mode="json") if c.error else None,
            "created": self.created,
        }


class ConnectionRecords(Protocol):
    """The reads and the first write of connections (store.connections.ConnectionRepository)."""

    def list_for_scope(self, scope: Scope) -> list[Connection]: ...

    def create(self, connection: Connection) -> Connection: ...


class AgencySettingsSource(Protocol):
    def get(self, agency_id: str) -> AgencySettings: ...


def public_facts(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The token answer without anything secret: account ids, team, bot user, expiry, scopes."""

    def clean(value: Any, depth: int) -> Any:
        if isinstance(value, Mapping):
            if depth > 2:
                return None
            return {
                str(k): clean(v, depth + 1)
                for k, v in value.items()
                if str(k).lower() not in SECRET_KEYS
                and "token" not in str(k).lower()
                and "secret" not in str(k).lower()
            }
        if isinstance(value, list):
            return [clean(v, depth + 1) for v in value[:50]]
        if isinstance(value, str):
            return value[:512]
        return value if isinstance(value, int | float | bool) or value is None else str(value)[:512]

    return clean(answer, 0)  # type: ignore[no-any-return]


class Connector:
    """Creates or re-authorizes connections, whatever the provider's auth kind."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        connections: ConnectionRecords,
        agencies: AgencySettingsSource,
        vault: TokenVault,
        transitions: ConnectionTransitions,
        after_connect: AfterConnect,
        inbound_email_domain: str,
        clock: Callable[[], datetime],
        revoke: Revoke,
        retire: Callable[[Connection], None] | None = None,
    ) -> None:
        self._revoke = revoke
        # Removes a connection the agency served for a client once the client connects its own.
        self._retire = retire
        self._catalog = catalog
        self._connections = connections
        self._agencies = agencies
        self._vault = vault
        self._transitions = transitions
        self._after = after_connect
        self._inbound_domain = inbound_email_domain
        self._clock = clock

    # --- checks every kind makes before anything is stored ---

    def allowed_scope(
        self, principal: Principal, spec: ProviderSpec, level: Level, client_id: str | None
    ) -> Scope:
        """The owner the caller may connect for at `level` (403 with the reason otherwise)."""
        scope = resolve_scope(principal, level, client_id)
        settings = self._agencies.get(principal.agency_id)
        authorize(principal, scope, Action.MANAGE, settings).raise_if_denied()
        decision = availability(spec.id, spec.min_tier, spec.levels, level, settings)
        # Only agency admins hear which plan would unlock it (white label: clients never see the plan).
        explained_to(principal, decision).raise_if_denied()
        return scope

    def check_conflicts(
        self, spec: ProviderSpec, scope: Scope, existing: list[Connection] | None = None
    ) -> None:
        """409 `conflicts_with` naming the connection to remove first (catalog `conflicts_with`)."""
        if not spec.conflicts_with:
            return
        for connection in existing if existing is not None else self._connections.list_for_scope(scope):
            if connection.provider in spec.conflicts_with:
                other = self._catalog.get(connection.provider)
                raise Conflict(
                    f"{spec.name} cannot be connected while {other.name} is connected; disconnect it first.",
                    code="conflicts_with",
                    details={"provider": connection.provider, "connection_id": connection.id},
                )

    # --- the generic route: password and inbound address kinds ---

    def connect(self, principal: Principal, provider_id: str, request: ConnectRequest) -> ConnectResult:
        """`POST /integrations/{provider}/connect`, dispatched on the catalog entry's auth kind."""
        spec = self._catalog.get(provider_id)
        if spec.auth is AuthKind.OAUTH2:
            raise BadRequest(
                f"{spec.name} connects through OAuth: use POST /oauth/{spec.id}/start.",
                code="use_oauth_start",
            )
        _check_fields(spec.auth, request)
        level = request.level or _default_level(spec)
        if spec.auth is AuthKind.CALDAV:
            return self._connect_password(principal, spec, level, request)
        return self._connect_address(principal, spec, level, request)

    def _connect_password(
        self, principal: Principal, spec: ProviderSpec, level: Level, request: ConnectRequest
    ) -> ConnectResult:
        """Verify the account name and password at the provider (its folder's hook), then connect."""
        assert request.apple_id is not None and request.app_password is not None
        scope = self.allowed_scope(principal, spec, level, request.client_id)
        self.check_conflicts(spec, scope)
        credentials = registry.module_for(spec.id).password_credentials(
            spec, request.apple_id, request.app_password.get_secret_value()
        )
        account = ExternalAccount(id=request.apple_id.lower(), label=request.apple_id)
        return self._connect(spec, scope, account, [], credentials)

    def _connect_address(
        self, principal: Principal, spec: ProviderSpec, level: Level, request: ConnectRequest
    ) -> ConnectResult:
        """Reserve the owner's inbound logging address: one per owner, kept across reconnects."""
        scope = self.allowed_scope(principal, spec, level, request.client_id)
        existing = next((c for c in self._connections.list_for_scope(scope) if c.provider == spec.id), None)
        if existing is not None:
            return ConnectResult(existing, created=False)
        # The local part is the routing key: unguessable, so nobody logs mail into another tenant's CRM.
        local_part = f"log-{secrets.token_hex(8)}"
        account = ExternalAccount(id=local_part, label=f"{local_part}@{self._inbound_domain}")
        # Who reserved it writes from this address: logged mail from it is outbound (mail/inbound.py).
        return self._connect(spec, scope, account, [], Credentials(), owner_email=principal.email)

    # --- OAuth: what follows the code exchange ---

    def connect_oauth(
        self, spec: ProviderSpec, scope: Scope, answer: dict[str, Any], app: AppCredentials
    ) -> ConnectResult:
        """Granted scopes, identity and credentials from a token answer, then create or re-authorize.

        Raises FlowError with the round trip's code (missing_scopes, identity_failed, conflicts…).
        """
        from integrations.domain.flow import FlowError, FlowErrorCode

        assert spec.oauth is not None
        access_token = str(answer["access_token"])
        module = registry.module_for(spec.id)
        granted = self._granted(spec, answer, access_token)
        missing = missing_scopes(spec.oauth, granted)
        if missing:
            self._revoke_refused(spec, scope, answer, app, granted, account=None)
            raise FlowError(
                FlowErrorCode.MISSING_SCOPES, "Some permissions were not granted.", missing=missing
            )
        try:
            account = module.identity(spec, answer, access_token)
        except Exception as exc:
            logger.warning("identity failed", extra={"provider": spec.id, "error": type(exc).__name__})
            raise FlowError(
                FlowErrorCode.IDENTITY_FAILED, "The provider did not say whose account it is."
            ) from None
        credentials = self._oauth_credentials(answer, app, granted)
        try:
            return self._connect(spec, scope, account, granted, credentials)
        except Conflict as exc:
            known = {c.value for c in FlowErrorCode}
            if exc.code not in known:
                raise
            self._revoke_refused(spec, scope, answer, app, granted, account=account)
            raise FlowError(FlowErrorCode(exc.code), exc.message) from None

    def _revoke_refused(
        self,
        spec: ProviderSpec,
        scope: Scope,
        answer: dict[str, Any],
        app: AppCredentials,
        granted: list[str],
        *,
        account: ExternalAccount | None,
    ) -> None:
        """Best effort: a grant we refuse after the exchange must not stay alive at the provider.

        Skipped where the provider has no revoke hook, and where revoking could reach a grant a
        connection of this owner still uses through the same OAuth app (Google revokes the whole
        account's grant; an unknown account counts as possibly the same).
        """
        assert spec.oauth is not None
        if not spec.revocable:
            return
        for other in self._connections.list_for_scope(scope):
            other_oauth = self._catalog.get(other.provider).oauth
            same_app = other_oauth is not None and other_oauth.app == spec.oauth.app
            if same_app and (account is None or other.account.id == account.id):
                logger.info("refused grant kept: its app is in use here", extra={"provider": spec.id})
                return
        try:
            self._revoke(spec, self._oauth_credentials(answer, app, granted), app)
        except Exception as exc:  # the refusal stands whatever the provider answers
            logger.warning(
                "refused grant not revoked", extra={"provider": spec.id, "error": type(exc).__name__}
            )
            return
        logger.info("refused grant revoked", extra={"provider": spec.id})

    def _granted(self, spec: ProviderSpec, answer: dict[str, Any], access_token: str) -> list[str]:
        from integrations.domain.flow import FlowError, FlowErrorCode

        assert spec.oauth is not None
        try:
            granted = registry.module_for(spec.id).granted_scopes(spec, answer, access_token)
        except Exception as exc:
            logger.warning("granted scopes unknown", extra={"provider": spec.id, "error": type(exc).__name__})
            raise FlowError(
                FlowErrorCode.PROVIDER_ERROR, "The provider did not list the granted scopes."
            ) from None
        if granted is None:
            granted = granted_scopes(spec.oauth, answer)
        if granted is None:
            # The provider does not report scopes: what was asked for is all we can know.
            granted = list(spec.oauth.scopes)
        return granted

    def _oauth_credentials(
        self, answer: dict[str, Any], app: AppCredentials, granted: list[str]
    ) -> Credentials:
        refresh = answer.get("refresh_token")
        return Credentials(
            access_token=SecretStr(str(answer["access_token"])),
            refresh_token=SecretStr(str(refresh)) if refresh else None,
            token_type=str(answer.get("token_type") or "Bearer"),
            expires_at=_expiry(self._clock(), answer.get("expires_in")),
            extra={
                "app_client_id": app.client_id,
                "granted_scopes": granted,
                "token_answer": public_facts(answer),
            },
        )

    # --- create or re-authorize ---

    def _connect(
        self,
        spec: ProviderSpec,
        scope: Scope,
        account: ExternalAccount,
        oauth_scopes: list[str],
        credentials: Credentials,
        *,
        owner_email: str | None = None,
    ) -> ConnectResult:
        """Create the connection, or re-authorize the one for this account; then the after-connect steps."""
        existing = self._connections.list_for_scope(scope)
        # Checked again here: a conflicting integration may have been connected since the start.
        self.check_conflicts(spec, scope, existing)
        everything = [c for c in existing if c.provider == spec.id]
        # The client's own connection always wins over one the agency serves: those make no conflict
        # and are retired once the own one exists (the same account is simply taken over).
        served = [c for c in everything if c.served_by is not None]
        mine = [c for c in everything if c.served_by is None]
        same = next((c for c in everything if c.account.id == account.id), None)
        if same is not None:
            connection = self._reauthorize(same, account, oauth_scopes, credentials, scope.owner_role)
            self._after.run(spec, connection, credentials)
            self._retire_served([c for c in served if c.id != connection.id])
            return ConnectResult(connection, created=False)
        if mine and not spec.multiple_accounts:
            raise Conflict(
                f"Another {spec.name} account is connected here already.",
                code="already_connected",
                details={"provider": spec.id, "connection_id": mine[0].id},
            )
        connection = self._create(spec, scope, account, oauth_scopes, credentials, owner_email=owner_email)
        self._after.run(spec, connection, credentials)
        self._transitions.publish(connection, [IntegrationConnected.of(connection)])
        self._retire_served(served)
        return ConnectResult(connection, created=True)

    def connect_served(
        self,
        spec: ProviderSpec,
        scope: Scope,
        account: ExternalAccount,
        credentials: Credentials,
        served_by: str,
    ) -> ConnectResult:
        """A client's sub-account served through the agency's connection `served_by`: created (or its
        minted token replaced) like any connection; 409 `client_has_own_connection` when the client
        has connected this provider itself, which always wins."""
        existing = [c for c in self._connections.list_for_scope(scope) if c.provider == spec.id]
        own = next((c for c in existing if c.served_by is None), None)
        if own is not None:
            raise Conflict(
                f"This client has connected its own {spec.name} account; it is used instead.",
                code="client_has_own_connection",
                details={"connection_id": own.id},
            )
        same = next((c for c in existing if c.account.id == account.id), None)
        if same is not None:
            self._vault.put(credential_ref(same), credentials)
            return ConnectResult(same, created=False)
        self._retire_served(existing)
        connection = self._create(spec, scope, account, [], credentials, served_by=served_by)
        self._after.run(spec, connection, credentials)
        self._transitions.publish(connection, [IntegrationConnected.of(connection)])
        return ConnectResult(connection, created=True)

    def _retire_served(self, served: list[Connection]) -> None:
        for connection in served:
            if self._retire is None:
                return
            try:
                self._retire(connection)
            except Exception:  # the own connection stands; the served one fails to mint and says so
                logger.exception("served connection not retired", extra={"connection_id": connection.id})

    def _reauthorize(
        self,
        connection: Connection,
        account: ExternalAccount,
        oauth_scopes: list[str],
        credentials: Credentials,
        owner_role: Role | None = None,
    ) -> Connection:
        """Same account, level and owner again: new credentials, same id, config and cursors (and
        the owner's role, recorded now if the connection predates it)."""
        ref = credential_ref(connection)
        previous = self._vault.get(ref)
        if (
            previous is not None
            and credentials.refresh_token is None
            and credentials.access_token is not None
        ):
            # Some providers send a refresh token only on first consent: keep the one we have.
            credentials = credentials.model_copy(update={"refresh_token": previous.refresh_token})
        self._vault.put(ref, credentials)

        def reauthorized(c: Connection, now: datetime) -> StatusChange | None:
            c.token_expires_at = credentials.expires_at
            if c.level is Level.USER and owner_role is not None:
                c.owner_role = owner_role
            return c.reauthorized(oauth_scopes, account, now)

        applied = self._transitions.apply(
            connection,
            reauthorized,
            announce=lambda c, _: [IntegrationConnected.of(c, reauthorized=True)],
        )
        if applied is None:
            raise Conflict("The connection was removed meanwhile; connect again.", code="connection_removed")
        return applied.connection

    def _create(
        self,
        spec: ProviderSpec,
        scope: Scope,
        account: ExternalAccount,
        oauth_scopes: list[str],
        credentials: Credentials,
        *,
        served_by: str | None = None,
        owner_email: str | None = None,
    ) -> Connection:
        now = self._clock()
        connection = Connection(
            id=uuid.uuid4().hex,
            provider=spec.id,
            level=scope.level,
            agency_id=scope.agency_id,
            client_id=scope.client_id,
            user_id=scope.user_id,
            owner_role=scope.owner_role if scope.level is Level.USER else None,
            account=account,
            oauth_scopes=oauth_scopes,
            token_expires_at=credentials.expires_at,
            served_by=served_by,
            owner_email=owner_email,
            created_at=now,
            updated_at=now,
        )
        required = [f.label for f in spec.config_schema if f.required]
        if required:
            # Nothing works until the required settings are chosen: the card says so from the start.
            # (A new connection: no status change to announce, so the transition's answer is unused.)
            connection.config_needed(f"Choose: {', '.join(required)}.", now)
        # Credentials first: a connection must never exist without them.
        self._vault.put(credential_ref(connection), credentials)
        return self._connections.create(connection)


def _check_fields(kind: AuthKind, request: ConnectRequest) -> None:
    """422 naming each field the auth kind requires but is missing, or does not take but was sent."""
    takes = _FIELDS_OF_KIND.get(kind, ())
    problems = [
        {"field": name, "message": "is required"} for name in takes if getattr(request, name) is None
    ] + [
        {"field": name, "message": "is not an accepted field"}
        for name in _PASSWORD_FIELDS
        if name not in takes and name in request.model_fields_set
    ]
    problems += _text_problems(takes, request)
    if problems:
        summary = ", ".join(f"{p['field']} {p['message']}" for p in problems)
        raise ValidationFailed(
            f"The request is not valid: {summary}.", code="invalid_request", details=problems
        )


# Password providers send these over HTTP Basic auth, which carries ASCII only; an Apple ID is an
# email address and an app-specific password is `xxxx-xxxx-xxxx-xxxx`, so anything else is a typo.
# A user name holds no ':' either (Basic's separator) nor spaces.
_BASIC_AUTH_TEXT: Mapping[str, tuple[re.Pattern[str], str]] = {
    "apple_id": (
        re.compile(r"[!-9;-~]+"),
        "must be your Apple ID's email address, in plain ASCII characters without spaces or ':'",
    ),
    "app_password": (
        re.compile(r"[ -~]+"),
        "must be the app-specific password as Apple shows it (xxxx-xxxx-xxxx-xxxx), in plain ASCII",
    ),
}


def _text_problems(takes: tuple[str, ...], request: ConnectRequest) -> list[dict[str, str]]:
    """The fields the auth kind takes whose text could not be sent as it must be."""
    problems = []
    for name in takes:
        value = getattr(request, name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        pattern, message = _BASIC_AUTH_TEXT.get(name, (None, ""))
        if pattern is not None and isinstance(text, str) and not pattern.fullmatch(text):
            problems.append({"field": name, "message": message})
    return problems


def _default_level(spec: ProviderSpec) -> Level:
    if len(spec.levels) == 1:
        return next(iter(spec.levels))
    return Level.CLIENT


def _expiry(now: datetime, expires_in: Any) -> datetime | None:
    """`now + expires_in` seconds, or None when the answer gives no usable lifetime."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
        return None
    try:
        return now + timedelta(seconds=float(expires_in))
    except ValueError:
        return None


def build_connector(
    *,
    catalog: Catalog,
    connections: ConnectionRepository,
    agencies: AgencySettingsSource,
    vault: TokenVault,
    transitions: ConnectionTransitions,
    jobs: JobSink | None,
    subscriptions: SubscriptionContext,
    inbound_email_domain: str,
    clock: Callable[[], datetime],
    revoke: Revoke,
    retire: Callable[[Connection], None] | None = None,
) -> Connector:
    """The Connector with its after-connect steps (push subscriptions, lookups, the first sync job)."""
    from integrations.connections.after_connect import AfterConnect

    return Connector(
        catalog=catalog,
        connections=connections,
        agencies=agencies,
        vault=vault,
        transitions=transitions,
        after_connect=AfterConnect(connections, jobs, clock, subscriptions=subscriptions),
        inbound_email_domain=inbound_email_domain,
        clock=clock,
        revoke=revoke,
        retire=retire,
    )
