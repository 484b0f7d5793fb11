"""Connect orchestration (design §6): start, authorize, callback, iCloud connect, agency OAuth apps.

No HTTP framework types here: the routes turn requests into these calls and these answers
(`Redirect`, `ErrorPage`, plain values) into responses. Browser-route failures never raise: they
become a redirect to the session's return_to with `result=error&code=<FlowErrorCode>`, or a
minimal error page when there is no trustworthy return_to.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from integrations.catalog.model import AuthKind
from integrations.domain.access import Level, Role
from integrations.domain.authorization import (
    Action,
    Scope,
    authorize,
    availability,
    explained_to,
    resolve_scope,
)
from integrations.domain.connection import (
    Connection,
    ExternalAccount,
)
from integrations.domain.errors import BadRequest, Conflict, Forbidden, IntegrationError, NotFound
from integrations.events import IntegrationConnected, PlatformEvent, status_events
from integrations.oauth import engine as oauth_engine
from integrations.oauth.errors import FlowError, FlowErrorCode
from integrations.oauth.sessions import BindOutcome, OAuthSession, SessionStore
from integrations.observability import SECRET_KEYS, get_logger
from integrations.providers import registry
from integrations.store.connections import Lookup, VersionConflict
from integrations.store.vault import Credentials, credential_ref

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from integrations.catalog.model import OAuthSpec, ProviderSpec
    from integrations.container import Services
    from integrations.domain.principal import Principal
    from integrations.oauth.apps import AgencyAppInfo, AgencyAppInput, AppCredentialStore
    from integrations.providers.base import AppCredentials

logger = get_logger()

COOKIE_PREFIX = "oauth_session_"
COOKIE_PATH = "/oauth/"
MAX_RETURN_TO = 2048


# --- inputs ---


class StartRequest(BaseModel):
    """Body of `POST /oauth/{provider}/start`."""

    model_config = ConfigDict(extra="forbid")

    level: Level
    client_id: str | None = Field(default=None, max_length=128)
    return_to: str = Field(min_length=1, max_length=MAX_RETURN_TO)


class PasswordConnectRequest(BaseModel):
    """Body of `POST /integrations/icloud_calendar/connect`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    apple_id: str = Field(min_length=3, max_length=320)
    app_password: SecretStr = Field(min_length=1, max_length=128)
    level: Level = Level.USER
    client_id: str | None = Field(default=None, max_length=128)


class AddressConnectRequest(BaseModel):
    """Body of `POST /integrations/bcc_email/connect`: whose logging address to reserve."""

    model_config = ConfigDict(extra="forbid")

    level: Level = Level.CLIENT
    client_id: str | None = Field(default=None, max_length=128)


# --- answers ---


@dataclass(frozen=True, slots=True)
class CookieSpec:
    name: str
    value: str
    max_age: int
    path: str
    secure: bool


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str
    cookies: list[CookieSpec] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ErrorPage:
    status: int
    code: str
    message: str
    cookies: list[CookieSpec] = field(default_factory=list)


BrowserAnswer = Redirect | ErrorPage


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


# --- helpers that are pure ---


def validate_return_to(value: str, allowed_origins: tuple[str, ...]) -> str:
    """return_to, normalized, if its origin is allowed; anything else is a 400 (never a redirect)."""
    invalid = BadRequest("return_to must be a page on an allowed origin.", code="invalid_return_to")
    if len(value) > MAX_RETURN_TO or any(ord(ch) < 0x21 or ch == "\\" for ch in value):
        raise invalid
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise invalid from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise invalid
    netloc = parts.hostname.lower() + (f":{port}" if port else "")
    origin = f"{parts.scheme}://{netloc}"
    if origin not in {o.lower().rstrip("/") for o in allowed_origins}:
        raise invalid
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def result_url(return_to: str, provider: str, result: str, **extra: str) -> str:
    """return_to with `integration`, `result` (and code/missing) set; earlier values replaced."""
    parts = urlsplit(return_to)
    ours = {"integration": provider, "result": result, **extra}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _RESULT_KEYS]
    query = urlencode(kept + list(ours.items()))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


_RESULT_KEYS = frozenset({"integration", "result", "code", "missing", "connection_id"})


def cookie_name(provider: str) -> str:
    return f"{COOKIE_PREFIX}{provider}"


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


# --- the service ---


class SyncJobs:
    """Initial sync jobs on the sync queue (the worker's `{kind, connection_id, provider, hint}`)."""

    def __init__(self, client: SQSClient | None, queue_url: str, clock: Callable[[], datetime]) -> None:
        self._sqs = client
        self._queue_url = queue_url
        self._clock = clock

    def connected(self, connection: Connection) -> None:
        if not self._queue_url or self._sqs is None:
            return
        body = {
            "kind": "sync",
            "connection_id": connection.id,
            "provider": connection.provider,
            "hint": {"reason": "connected"},
            "received_at": self._clock().isoformat(),
        }
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(body, separators=(",", ":")))


class Flow(Protocol):
    """What both authorization-code clients offer (the generic engine and Google's Flow)."""

    def authorization_url(
        self, spec: OAuthSpec, app: AppCredentials, *, redirect_uri: str, state: str, verifier: str | None
    ) -> str: ...

    def exchange_code(
        self, spec: OAuthSpec, app: AppCredentials, *, code: str, redirect_uri: str, verifier: str | None
    ) -> dict[str, Any]: ...


class OAuthService:
    def __init__(
        self,
        services: Services,
        sessions: SessionStore,
        apps: AppCredentialStore,
        sync_jobs: SyncJobs,
        *,
        flows: Mapping[str, Flow] | None = None,
        engine: oauth_engine.OAuth2Engine | None = None,
    ) -> None:
        self._s = services
        self._sessions = sessions
        self._apps = apps
        self._sync_jobs = sync_jobs
        self._engine = engine or oauth_engine.OAuth2Engine()
        if flows is None:
            from integrations.oauth.google_flow import GoogleFlow

            # Keyed by the catalog's OAuth app: Google's apps go through google-auth-oauthlib.
            flows = {"google": GoogleFlow()}
        self._flows: dict[str, Flow] = dict(flows)

    @property
    def apps(self) -> AppCredentialStore:
        return self._apps

    # --- 1. start (JWT) ---

    def start(self, principal: Principal, provider_id: str, request: StartRequest) -> str:
        """Check everything, store a session, and answer the URL the browser goes to next."""
        spec = self._s.catalog.get(provider_id)
        if spec.oauth is None:
            raise BadRequest(f"{spec.name} does not connect through OAuth.", code="not_oauth")
        return_to = validate_return_to(request.return_to, self._s.settings.allowed_return_origins)
        scope = self._allowed_scope(principal, spec, request.level, request.client_id)
        self._check_conflicts(spec, scope)
        app = self._apps.current(principal.agency_id, spec.oauth.app)
        from integrations.oauth.pkce import new_verifier

        session = self._sessions.new_session(
            provider=spec.id,
            level=scope.level,
            agency_id=scope.agency_id,
            client_id=scope.client_id,
            user_id=scope.user_id,
            requested_by=principal.sub,
            return_to=return_to,
            verifier=new_verifier() if spec.oauth.pkce else None,
            app_client_id=app.client_id,
        )
        state = self._sessions.create(session)
        logger.info("oauth session started", extra={"provider": spec.id, "level": scope.level.value})
        return f"{self._s.settings.public_api_url}/oauth/{spec.id}/authorize?{urlencode({'session': state})}"

    # --- 2. authorize (browser) ---

    def authorize(self, provider_id: str, state: str | None) -> BrowserAnswer:
        """Bind the session to this browser with a cookie and send it to the provider."""
        if not state:
            return _page(FlowErrorCode.SESSION_UNKNOWN)
        session = self._sessions.get(state)
        if session is None:
            return self._after_use(state)
        if session.provider != provider_id:
            self._sessions.consume(state)
            return self._fail(session, FlowErrorCode.PROVIDER_MISMATCH)
        if session.expired(self._s.clock()):
            self._sessions.consume(state)
            return self._fail(session, FlowErrorCode.SESSION_EXPIRED)
        cookie_value = secrets.token_urlsafe(32)
        outcome = self._sessions.bind_cookie(state, cookie_value)
        if outcome is BindOutcome.ALREADY_BOUND:
            return self._fail(session, FlowErrorCode.SESSION_USED)
        if outcome is BindOutcome.UNKNOWN:
            return self._after_use(state)
        try:
            spec = self._s.catalog.get(provider_id)
            assert spec.oauth is not None
            app = self._apps.for_client_id(session.agency_id, spec.oauth.app, session.app_client_id)
            url = self._flow(spec.oauth).authorization_url(
                spec.oauth,
                app,
                redirect_uri=self.redirect_uri(provider_id),
                state=state,
                verifier=session.verifier,
            )
        except Exception as exc:
            code = exc.code if isinstance(exc, IntegrationError) else type(exc).__name__
            logger.warning("authorize failed", extra={"provider": provider_id, "error_code": code})
            self._sessions.consume(state)
            return self._fail(session, FlowErrorCode.INTERNAL_ERROR)
        return Redirect(
            url, [self._cookie(provider_id, cookie_value, max_age=_cookie_age(session, self._s.clock()))]
        )

    # --- 3. callback (browser) ---

    def callback(
        self, provider_id: str, query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> BrowserAnswer:
        """Consume the session, check it, exchange the code, and create or re-authorize the connection."""
        state = query.get("state")
        clear = [self._cookie(provider_id, "", max_age=0)]
        if not state:
            return _page(FlowErrorCode.SESSION_UNKNOWN, clear)
        session = self._sessions.consume(state)
        if session is None:
            return self._after_use(state, clear)
        try:
            result = self._complete(provider_id, session, query, cookies)
        except FlowError as exc:
            logger.info("oauth callback refused", extra={"provider": provider_id, "error_code": exc.code})
            return self._fail(session, exc.flow_code, clear, missing=exc.missing)
        except Exception:
            # Already-stored pieces are harmless without a connection; the portal gets a stable code.
            logger.exception("oauth callback failed", extra={"provider": provider_id})
            return self._fail(session, FlowErrorCode.INTERNAL_ERROR, clear)
        logger.info(
            "connected",
            extra={
                "provider": provider_id,
                "connection_id": result.connection.id,
                "new_connection": result.created,
            },
        )
        location = result_url(session.return_to, provider_id, "connected")
        return Redirect(location, clear)

    def _complete(
        self, provider_id: str, session: OAuthSession, query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> ConnectResult:
        # Order matters: the session is already burnt; every check below ends this round trip.
        if session.provider != provider_id:
            raise FlowError(FlowErrorCode.PROVIDER_MISMATCH, "The callback came for another provider.")
        if session.expired(self._s.clock()):
            raise FlowError(FlowErrorCode.SESSION_EXPIRED, "The connect session expired.")
        if not session.cookie_matches(cookies.get(cookie_name(provider_id))):
            raise FlowError(FlowErrorCode.COOKIE_MISMATCH, "The callback came to another browser.")
        error = query.get("error")
        if error:
            code = FlowErrorCode.ACCESS_DENIED if error == "access_denied" else FlowErrorCode.PROVIDER_ERROR
            raise FlowError(code, "The provider did not authorize the connection.")
        code_value = query.get("code")
        if not code_value:
            raise FlowError(FlowErrorCode.PROVIDER_ERROR, "The provider sent no authorization code.")
        spec = self._s.catalog.get(provider_id)
        assert spec.oauth is not None
        try:
            app = self._apps.for_client_id(session.agency_id, spec.oauth.app, session.app_client_id)
            answer = self._flow(spec.oauth).exchange_code(
                spec.oauth,
                app,
                code=code_value,
                redirect_uri=self.redirect_uri(provider_id),
                verifier=session.verifier,
            )
        except IntegrationError as exc:
            logger.warning("code exchange failed", extra={"provider": provider_id, "error_code": exc.code})
            raise FlowError(FlowErrorCode.EXCHANGE_FAILED, "The provider did not accept the code.") from None
        access_token = str(answer["access_token"])
        module = registry.module_for(provider_id)
        granted = self._granted(spec, module, answer, access_token)
        missing = oauth_engine.missing_scopes(spec.oauth.required_scopes, granted)
        if missing:
            raise FlowError(
                FlowErrorCode.MISSING_SCOPES, "Some permissions were not granted.", missing=missing
            )
        try:
            account = module.identity(spec, answer, access_token)
        except Exception as exc:
            logger.warning("identity failed", extra={"provider": provider_id, "error": type(exc).__name__})
            raise FlowError(
                FlowErrorCode.IDENTITY_FAILED, "The provider did not say whose account it is."
            ) from None
        credentials = self._credentials(answer, app, granted)
        scope = Scope(session.agency_id, session.level, session.client_id, session.user_id)
        return self._connect(spec, scope, account, granted, credentials)

    def _granted(
        self, spec: ProviderSpec, module: Any, answer: dict[str, Any], access_token: str
    ) -> list[str]:
        assert spec.oauth is not None
        try:
            granted: list[str] | None = module.granted_scopes(spec, answer, access_token)
        except Exception as exc:
            logger.warning("granted scopes unknown", extra={"provider": spec.id, "error": type(exc).__name__})
            raise FlowError(
                FlowErrorCode.PROVIDER_ERROR, "The provider did not list the granted scopes."
            ) from None
        if granted is None:
            granted = oauth_engine.granted_scopes(spec.oauth, answer)
        if granted is None:
            # The provider does not report scopes: what was asked for is all we can know.
            granted = list(spec.oauth.scopes)
        return granted

    def _credentials(self, answer: dict[str, Any], app: AppCredentials, granted: list[str]) -> Credentials:
        now = self._s.clock()
        expires_in = answer.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float | str) and not isinstance(expires_in, bool):
            try:
                expires_at = now + timedelta(seconds=float(expires_in))
            except ValueError:
                expires_at = None
        refresh = answer.get("refresh_token")
        return Credentials(
            access_token=SecretStr(str(answer["access_token"])),
            refresh_token=SecretStr(str(refresh)) if refresh else None,
            token_type=str(answer.get("token_type") or "Bearer"),
            expires_at=expires_at,
            extra={
                "app_client_id": app.client_id,
                "granted_scopes": granted,
                "token_answer": public_facts(answer),
            },
        )

    # --- iCloud (JWT) ---

    def connect_with_password(
        self, principal: Principal, provider_id: str, request: PasswordConnectRequest
    ) -> ConnectResult:
        """Verify an Apple ID and app-specific password by CalDAV discovery, then connect."""
        from integrations.providers.icloud_calendar import discover

        spec = self._s.catalog.get(provider_id)
        if spec.auth is not AuthKind.CALDAV:
            raise BadRequest(f"{spec.name} does not connect with a password.", code="not_password_auth")
        scope = self._allowed_scope(principal, spec, request.level, request.client_id)
        self._check_conflicts(spec, scope)
        password = request.app_password.get_secret_value()
        found = discover(spec.urls["caldav"], request.apple_id, password)
        account = ExternalAccount(id=request.apple_id.lower(), label=request.apple_id)
        credentials = Credentials(
            secrets={"app_password": SecretStr(password)},
            extra={
                "username": request.apple_id,
                "principal_url": found.principal_url,
                "calendars": [{"url": c.url, "name": c.name} for c in found.calendars],
            },
        )
        try:
            return self._connect(spec, scope, account, [], credentials)
        except FlowError as exc:
            raise Conflict(exc.message, code=exc.code) from None

    # --- BCC logging address (JWT) ---

    def connect_inbound_address(
        self, principal: Principal, provider_id: str, request: AddressConnectRequest
    ) -> ConnectResult:
        """Reserve the owner's BCC logging address: one per owner, kept across reconnects."""
        spec = self._s.catalog.get(provider_id)
        if spec.auth is not AuthKind.INBOUND_EMAIL:
            raise BadRequest(f"{spec.name} does not connect with an address.", code="not_inbound_email")
        scope = self._allowed_scope(principal, spec, request.level, request.client_id)
        existing = next((c for c in self._s.connections.list_for_scope(scope) if c.provider == spec.id), None)
        if existing is not None:
            return ConnectResult(existing, created=False)
        # The local part is the routing key: unguessable, so nobody logs mail into another tenant's CRM.
        local_part = f"log-{secrets.token_hex(8)}"
        address = f"{local_part}@{self._s.settings.inbound_email_domain}"
        account = ExternalAccount(id=local_part, label=address)
        return self._connect(spec, scope, account, [], Credentials())

    # --- agency white-label apps (JWT, agency admins) ---

    def put_agency_app(self, principal: Principal, provider_id: str, given: AgencyAppInput) -> AgencyAppInfo:
        spec = self._agency_app_spec(principal, provider_id)
        assert spec.oauth is not None
        info = self._apps.put_agency_app(principal.agency_id, spec.oauth.app, given)
        logger.info("agency oauth app registered", extra={"provider": spec.id, "app": spec.oauth.app})
        return info

    def get_agency_app(self, principal: Principal, provider_id: str) -> AgencyAppInfo:
        spec = self._agency_app_spec(principal, provider_id)
        assert spec.oauth is not None
        info = self._apps.describe_agency_app(principal.agency_id, spec.oauth.app)
        if info is None:
            raise NotFound(
                "No OAuth app of the agency is registered for this provider.", code="agency_app_not_found"
            )
        return info

    def delete_agency_app(self, principal: Principal, provider_id: str) -> None:
        spec = self._agency_app_spec(principal, provider_id)
        assert spec.oauth is not None
        if not self._apps.delete_agency_app(principal.agency_id, spec.oauth.app):
            raise NotFound(
                "No OAuth app of the agency is registered for this provider.", code="agency_app_not_found"
            )
        logger.info("agency oauth app removed", extra={"provider": spec.id, "app": spec.oauth.app})

    def _agency_app_spec(self, principal: Principal, provider_id: str) -> ProviderSpec:
        if principal.role is not Role.AGENCY_ADMIN:
            raise Forbidden("Only agency admins manage the agency's OAuth apps.", code="agency_admin_only")
        spec = self._s.catalog.get(provider_id)
        if spec.oauth is None:
            raise BadRequest(f"{spec.name} does not use OAuth.", code="not_oauth")
        return spec

    # --- shared steps ---

    def redirect_uri(self, provider_id: str) -> str:
        """The callback URL registered at the provider: from configuration, never from Host."""
        return f"{self._s.settings.public_api_url}/oauth/{provider_id}/callback"

    def _flow(self, spec: OAuthSpec) -> Flow:
        return self._flows.get(spec.app, self._engine)

    def _allowed_scope(
        self, principal: Principal, spec: ProviderSpec, level: Level, client_id: str | None
    ) -> Scope:
        scope = resolve_scope(principal, level, client_id)
        settings = self._s.agencies.get(principal.agency_id)
        authorize(principal, scope, Action.MANAGE, settings).raise_if_denied()
        decision = availability(spec.id, spec.min_tier, spec.levels, level, settings)
        explained_to(principal, decision).raise_if_denied()
        return scope

    def _check_conflicts(self, spec: ProviderSpec, scope: Scope) -> None:
        if not spec.conflicts_with:
            return
        for existing in self._s.connections.list_for_scope(scope):
            if existing.provider in spec.conflicts_with:
                other = self._s.catalog.get(existing.provider)
                raise Conflict(
                    f"{spec.name} cannot be connected while {other.name} is connected; disconnect it first.",
                    code="conflicts_with",
                    details={"provider": existing.provider, "connection_id": existing.id},
                )

    def _connect(
        self,
        spec: ProviderSpec,
        scope: Scope,
        account: ExternalAccount,
        oauth_scopes: list[str],
        credentials: Credentials,
    ) -> ConnectResult:
        """Create the connection, or re-authorize the one for this account, and announce it."""
        existing = self._s.connections.list_for_scope(scope)
        if any(c.provider in spec.conflicts_with for c in existing):
            raise FlowError(FlowErrorCode.CONFLICT, "A conflicting integration was connected meanwhile.")
        mine = [c for c in existing if c.provider == spec.id]
        same = next((c for c in mine if c.account.id == account.id), None)
        change = None
        if same is not None:
            connection, change = self._reauthorize(same, account, oauth_scopes, credentials)
            created = False
        else:
            if mine and not spec.multiple_accounts:
                raise FlowError(
                    FlowErrorCode.ALREADY_CONNECTED, f"Another {spec.name} account is connected here already."
                )
            connection = self._create(spec, scope, account, oauth_scopes, credentials)
            created = True
        self._after_connect(spec, connection, credentials)
        events: list[PlatformEvent] = [IntegrationConnected.of(connection, reauthorized=not created)]
        events += status_events(connection, change)
        try:
            self._s.events.publish(*events)
        except Exception:
            logger.exception("connected event not published", extra={"connection_id": connection.id})
        return ConnectResult(connection, created)

    def _reauthorize(
        self,
        connection: Connection,
        account: ExternalAccount,
        oauth_scopes: list[str],
        credentials: Credentials,
    ) -> tuple[Connection, Any]:
        previous = self._s.vault.get(credential_ref(connection))
        if (
            previous is not None
            and credentials.refresh_token is None
            and credentials.access_token is not None
        ):
            # Some providers send a refresh token only on first consent: keep the one we have.
            credentials = credentials.model_copy(update={"refresh_token": previous.refresh_token})
        self._s.vault.put(credential_ref(connection), credentials)
        for _ in range(3):
            now = self._s.clock()
            change = connection.reauthorized(oauth_scopes, account, now)
            connection.token_expires_at = credentials.expires_at
            try:
                return self._s.connections.save(connection), change
            except VersionConflict:
                fresh = self._s.connections.get(connection.id)
                if fresh is None:
                    raise
                connection = fresh
        raise VersionConflict("The connection kept changing; try again.")

    def _create(
        self,
        spec: ProviderSpec,
        scope: Scope,
        account: ExternalAccount,
        oauth_scopes: list[str],
        credentials: Credentials,
    ) -> Connection:
        now = self._s.clock()
        connection = Connection(
            id=uuid.uuid4().hex,
            provider=spec.id,
            level=scope.level,
            agency_id=scope.agency_id,
            client_id=scope.client_id,
            user_id=scope.user_id,
            account=account,
            oauth_scopes=oauth_scopes,
            token_expires_at=credentials.expires_at,
            created_at=now,
            updated_at=now,
        )
        required = [f.label for f in spec.config_schema if f.required]
        if required:
            # Nothing works until the required settings are chosen: the card says so from the start.
            # (A new connection: no status change to announce, so the transition's answer is unused.)
            connection.config_needed(f"Choose: {', '.join(required)}.", now)
        # Credentials first: a connection must never exist without them.
        self._s.vault.put(credential_ref(connection), credentials)
        return self._s.connections.create(connection)

    def _after_connect(self, spec: ProviderSpec, connection: Connection, credentials: Credentials) -> None:
        """Provider set-up (lookups, subscriptions) and the initial sync: logged, never fatal."""
        from integrations.webhooks.routing import merge_lookups
        from integrations.webhooks.subscriptions import subscribe_at_connect

        module = registry.module_for(spec.id)
        groups: list[list[Lookup]] = []
        try:
            groups.append(module.on_connect(spec, connection, credentials))
        except Exception:
            logger.exception("on_connect failed", extra={"provider": spec.id, "connection_id": connection.id})
        if credentials.access_token is not None:
            try:
                token = credentials.access_token.get_secret_value()
                groups.append(subscribe_at_connect(spec, connection, token))
            except Exception:
                # Pushes are a speed-up: scheduled sync still covers the connection without them.
                logger.exception(
                    "subscribe failed", extra={"provider": spec.id, "connection_id": connection.id}
                )
        try:
            self._s.connections.put_lookups(connection, merge_lookups(*groups))
        except Exception:
            logger.exception(
                "lookups not written", extra={"provider": spec.id, "connection_id": connection.id}
            )
        try:
            self._sync_jobs.connected(connection)
        except Exception:
            logger.exception("initial sync not queued", extra={"connection_id": connection.id})

    def _cookie(self, provider_id: str, value: str, *, max_age: int) -> CookieSpec:
        secure = self._s.settings.public_api_url.startswith("https://")
        return CookieSpec(
            name=cookie_name(provider_id), value=value, max_age=max_age, path=COOKIE_PATH, secure=secure
        )

    def _fail(
        self,
        session: OAuthSession,
        code: FlowErrorCode,
        cookies: list[CookieSpec] | None = None,
        missing: list[str] | None = None,
    ) -> Redirect:
        extra = {"code": code.value}
        if missing:
            extra["missing"] = " ".join(missing)
        return Redirect(result_url(session.return_to, session.provider, "error", **extra), cookies or [])

    def _after_use(self, state: str, cookies: list[CookieSpec] | None = None) -> BrowserAnswer:
        used = self._sessions.used(state)
        if used is None:
            return _page(FlowErrorCode.SESSION_UNKNOWN, cookies)
        location = result_url(used.return_to, used.provider, "error", code=FlowErrorCode.SESSION_USED.value)
        return Redirect(location, cookies or [])


def _cookie_age(session: OAuthSession, now: datetime) -> int:
    return max(1, int((session.expires_at - now).total_seconds()))


_PAGE_MESSAGES = {
    FlowErrorCode.SESSION_UNKNOWN: "This connect link is not valid. Start again from the portal.",
}


def _page(code: FlowErrorCode, cookies: list[CookieSpec] | None = None) -> ErrorPage:
    message = _PAGE_MESSAGES.get(code, "The connection could not be completed. Start again from the portal.")
    return ErrorPage(status=400, code=code.value, message=message, cookies=cookies or [])


def build_oauth_service(services: Services | None = None) -> OAuthService:
    """The process's OAuthService over the real adapters (called once, at the function's edge)."""
    from integrations import aws
    from integrations.container import build_services
    from integrations.oauth.apps import AppCredentialStore
    from integrations.oauth.tokens import install

    services = services or build_services()
    settings = services.settings
    apps = AppCredentialStore(
        aws.secretsmanager(), settings.app_secret_prefix, settings.agency_app_secret_prefix
    )
    install(services, apps)
    return OAuthService(
        services,
        SessionStore(aws.dynamodb(), settings.state_table_name, services.clock),
        apps,
        SyncJobs(aws.sqs() if settings.sync_queue_url else None, settings.sync_queue_url, services.clock),
    )
