"""The OAuth round trip (design §6): start, authorize, callback; and agencies' own OAuth apps.

The callback ends in connections.connect (granted scopes, identity, create or re-authorize). No
HTTP framework types here: the routes turn requests into these calls and these answers
(`Redirect`, `ErrorPage`, plain values) into responses. Browser-route failures never raise: they
become a redirect to the session's return_to with `result=error&code=<FlowErrorCode>`, or a
minimal error page when there is no trustworthy return_to.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from integrations.domain.access import Level, Role
from integrations.domain.authorization import Scope
from integrations.domain.connection import utcnow
from integrations.domain.errors import BadRequest, Forbidden, IntegrationError, NotFound
from integrations.domain.flow import FlowError, FlowErrorCode
from integrations.oauth import engine as oauth_engine
from integrations.oauth.sessions import BindOutcome, OAuthSession, SessionStore
from integrations.observability import get_logger

if TYPE_CHECKING:
    from integrations.catalog.loader import Catalog
    from integrations.catalog.model import OAuthSpec, ProviderSpec
    from integrations.connections.connect import Connector, ConnectResult
    from integrations.domain.credentials import AppCredentials
    from integrations.domain.principal import Principal
    from integrations.oauth.apps import AgencyAppInfo, AgencyAppInput, AppCredentialStore

logger = get_logger()

COOKIE_PREFIX = "oauth_session_"
CONFIRM_COOKIE_PREFIX = "oauth_confirm_"
COOKIE_PATH = "/oauth/"
MAX_RETURN_TO = 2048


# --- inputs ---


class StartRequest(BaseModel):
    """Body of `POST /oauth/{provider}/start`."""

    model_config = ConfigDict(extra="forbid")

    level: Level
    client_id: str | None = Field(default=None, max_length=128)
    return_to: str = Field(min_length=1, max_length=MAX_RETURN_TO)


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


@dataclass(frozen=True, slots=True)
class ConfirmPage:
    """Asks the person whether to go on: the link did not come from the portal (a forwarded link)."""

    provider_name: str
    tenant: str
    requested_by: str
    confirm_url: str
    cookies: list[CookieSpec] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Navigation:
    """What the browser said about where the authorize navigation came from (Fetch Metadata, Referer)."""

    sec_fetch_site: str | None = None
    referer: str | None = None
    # The confirmation page's token, from the query and from this browser's cookie.
    confirm: str | None = None
    confirm_cookie: str | None = None


BrowserAnswer = Redirect | ErrorPage | ConfirmPage


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


def confirm_cookie_name(provider: str) -> str:
    return f"{CONFIRM_COOKIE_PREFIX}{provider}"


def from_portal(navigation: Navigation, allowed_origins: tuple[str, ...]) -> bool:
    """Did the portal send this browser here? Same-origin/same-site Fetch Metadata, or an allowed Referer.

    Anything else (`none`: typed or opened from a mail; `cross-site` from elsewhere; no header at all)
    may be a forwarded link, so the person is asked first.
    """
    if (navigation.sec_fetch_site or "").strip().lower() in ("same-origin", "same-site"):
        return True
    if not navigation.referer:
        return False
    try:
        parts = urlsplit(navigation.referer)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    origin = f"{parts.scheme}://{parts.hostname.lower()}" + (f":{port}" if port else "")
    return origin in {o.lower().rstrip("/") for o in allowed_origins}


# --- the service ---


class Flow(Protocol):
    """What both authorization-code clients offer (the generic engine and Google's Flow)."""

    def authorization_url(
        self, spec: OAuthSpec, app: AppCredentials, *, redirect_uri: str, state: str, verifier: str | None
    ) -> str: ...

    def exchange_code(
        self,
        spec: OAuthSpec,
        app: AppCredentials,
        *,
        code: str,
        redirect_uri: str,
        verifier: str | None,
        level: Level | None = None,
    ) -> dict[str, Any]: ...


class OAuthService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        sessions: SessionStore,
        apps: AppCredentialStore,
        connector: Connector,
        public_api_url: str,
        allowed_return_origins: tuple[str, ...],
        clock: Callable[[], datetime] = utcnow,
        flows: Mapping[str, Flow] | None = None,
        engine: oauth_engine.OAuth2Engine | None = None,
    ) -> None:
        self._catalog = catalog
        self._public_api_url = public_api_url
        self._allowed_return_origins = allowed_return_origins
        self._clock = clock
        self._sessions = sessions
        self._apps = apps
        self._connector = connector
        self._engine = engine or oauth_engine.OAuth2Engine()
        if flows is None:
            from integrations.oauth.google_flow import GoogleFlow

            # Keyed by the catalog's `oauth.flow`: the providers whose own client library runs it.
            flows = {"google_auth_oauthlib": GoogleFlow()}
        self._flows: dict[str, Flow] = dict(flows)

    @property
    def connector(self) -> Connector:
        """The connection lifecycle's connect step (also behind `POST /integrations/{provider}/connect`)."""
        return self._connector

    @property
    def apps(self) -> AppCredentialStore:
        return self._apps

    # --- 1. start (JWT) ---

    def start(
        self, principal: Principal, provider_id: str, request: StartRequest, requested_by_label: str = ""
    ) -> str:
        """Check everything, store a session, and answer the URL the browser goes to next."""
        spec = self._catalog.get(provider_id)
        if spec.oauth is None:
            raise BadRequest(f"{spec.name} does not connect through OAuth.", code="not_oauth")
        return_to = validate_return_to(request.return_to, self._allowed_return_origins)
        scope = self._connector.allowed_scope(principal, spec, request.level, request.client_id)
        self._connector.check_conflicts(spec, scope)
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
            requested_by_label=requested_by_label[:200],
            owner_role=scope.owner_role,
        )
        state = self._sessions.create(session)
        logger.info("oauth session started", extra={"provider": spec.id, "level": scope.level.value})
        return f"{self._public_api_url}/oauth/{spec.id}/authorize?{urlencode({'session': state})}"

    # --- 2. authorize (browser) ---

    def authorize(
        self, provider_id: str, state: str | None, navigation: Navigation | None = None
    ) -> BrowserAnswer:
        """Bind the session to this browser with a cookie and send it to the provider.

        A navigation that did not come from the portal is asked to confirm first (a confirmation
        page naming the provider, the tenant and who started it); the session binds only then.
        """
        navigation = navigation or Navigation()
        if not state:
            return _page(FlowErrorCode.SESSION_UNKNOWN)
        checked = self._live_session(provider_id, state)
        if not isinstance(checked, OAuthSession):
            return checked
        session = checked
        confirm = self._confirmed(navigation)
        if confirm is None:
            # Not from the portal, or a confirm link in another browser (forwarded): ask this person.
            return self._offer_confirmation(provider_id, state, session)
        confirm = confirm or None
        cookie_value = secrets.token_urlsafe(32)
        outcome = self._sessions.bind_cookie(state, cookie_value, confirm)
        if outcome is BindOutcome.ALREADY_BOUND:
            return self._fail(session, FlowErrorCode.SESSION_USED)
        if outcome is BindOutcome.UNKNOWN:
            return self._after_use(state)
        if outcome is BindOutcome.CONFIRM_MISMATCH:
            return self._offer_confirmation(provider_id, state, session)
        cookies = [
            self._cookie(provider_id, cookie_value, max_age=_cookie_age(session, self._clock())),
        ]
        if confirm is not None:
            cookies.append(self._cookie(provider_id, "", max_age=0, name=confirm_cookie_name(provider_id)))
        try:
            spec = self._catalog.get(provider_id)
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
        return Redirect(url, cookies)

    def _live_session(self, provider_id: str, state: str) -> OAuthSession | BrowserAnswer:
        """The session if it is usable here; else the answer that ends the round trip."""
        session = self._sessions.get(state)
        if session is None:
            return self._after_use(state)
        if session.provider != provider_id:
            self._sessions.consume(state)
            return self._fail(session, FlowErrorCode.PROVIDER_MISMATCH)
        if session.expired(self._clock()):
            self._sessions.consume(state)
            return self._fail(session, FlowErrorCode.SESSION_EXPIRED)
        return session

    def _confirmed(self, navigation: Navigation) -> str | None:
        """The confirm token to spend ("" when the portal sent the browser); None: ask the person."""
        if navigation.confirm is not None:
            held = navigation.confirm_cookie
            if held and secrets.compare_digest(navigation.confirm.encode(), held.encode()):
                return navigation.confirm
            return None
        return "" if from_portal(navigation, self._allowed_return_origins) else None

    def _offer_confirmation(self, provider_id: str, state: str, session: OAuthSession) -> BrowserAnswer:
        """The confirmation page, with a fresh single-use token held by this browser's cookie too."""
        token = secrets.token_urlsafe(32)
        outcome = self._sessions.offer_confirmation(state, token)
        if outcome is BindOutcome.UNKNOWN:
            return self._after_use(state)
        if outcome is not BindOutcome.BOUND:
            return self._fail(session, FlowErrorCode.SESSION_USED)
        spec = self._catalog.get(provider_id)
        query = urlencode({"session": state, "confirm": token})
        max_age = _cookie_age(session, self._clock())
        return ConfirmPage(
            provider_name=spec.name,
            tenant=_tenant_label(session),
            requested_by=session.requested_by_label or session.requested_by,
            confirm_url=f"{self._public_api_url}/oauth/{provider_id}/authorize?{query}",
            cookies=[
                self._cookie(provider_id, token, max_age=max_age, name=confirm_cookie_name(provider_id))
            ],
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
        if session.expired(self._clock()):
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
        spec = self._catalog.get(provider_id)
        assert spec.oauth is not None
        try:
            app = self._apps.for_client_id(session.agency_id, spec.oauth.app, session.app_client_id)
            answer = self._flow(spec.oauth).exchange_code(
                spec.oauth,
                app,
                code=code_value,
                redirect_uri=self.redirect_uri(provider_id),
                verifier=session.verifier,
                # The token asked for fits the level being connected (a GHL agency gets a Company token).
                level=session.level,
            )
        except IntegrationError as exc:
            logger.warning("code exchange failed", extra={"provider": provider_id, "error_code": exc.code})
            raise FlowError(FlowErrorCode.EXCHANGE_FAILED, "The provider did not accept the code.") from None
        scope = Scope(
            session.agency_id, session.level, session.client_id, session.user_id, session.owner_role
        )
        return self._connector.connect_oauth(spec, scope, answer, app)

    # --- agency white-label apps (JWT, agency admins) ---

    def put_agency_app(
        self, principal: Principal, provider_id: str, read: Callable[[], AgencyAppInput]
    ) -> AgencyAppInfo:
        """Check the caller and the provider, then read the credentials (problems come after 403/404)."""
        spec = self._agency_app_spec(principal, provider_id)
        assert spec.oauth is not None
        info = self._apps.put_agency_app(principal.agency_id, spec.oauth.app, read())
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
        spec = self._catalog.get(provider_id)
        if spec.oauth is None:
            raise BadRequest(f"{spec.name} does not use OAuth.", code="not_oauth")
        return spec

    # --- shared steps ---

    def redirect_uri(self, provider_id: str) -> str:
        """The callback URL registered at the provider: from configuration, never from Host."""
        return f"{self._public_api_url}/oauth/{provider_id}/callback"

    def _flow(self, spec: OAuthSpec) -> Flow:
        return self._flows.get(spec.flow, self._engine)

    def _cookie(self, provider_id: str, value: str, *, max_age: int, name: str | None = None) -> CookieSpec:
        secure = self._public_api_url.startswith("https://")
        return CookieSpec(
            name=name or cookie_name(provider_id),
            value=value,
            max_age=max_age,
            path=COOKIE_PATH,
            secure=secure,
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


def _tenant_label(session: OAuthSession) -> str:
    """Whose connection this becomes, in the words of the confirmation page."""
    if session.level is Level.USER:
        where = (
            f"client {session.client_id} of agency {session.agency_id}"
            if session.client_id
            else f"agency {session.agency_id}"
        )
        return f"a personal connection in {where}"
    if session.client_id:
        return f"client {session.client_id} of agency {session.agency_id}"
    return f"agency {session.agency_id}"


def _cookie_age(session: OAuthSession, now: datetime) -> int:
    return max(1, int((session.expires_at - now).total_seconds()))


_PAGE_MESSAGES = {
    FlowErrorCode.SESSION_UNKNOWN: "This connect link is not valid. Start again from the portal.",
}


def _page(code: FlowErrorCode, cookies: list[CookieSpec] | None = None) -> ErrorPage:
    message = _PAGE_MESSAGES.get(code, "The connection could not be completed. Start again from the portal.")
    return ErrorPage(status=400, code=code.value, message=message, cookies=cookies or [])
