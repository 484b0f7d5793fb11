"""Authorization servers: consent page, token endpoint and revocation, in each provider's dialect.

Checks follow RFC 6749 / RFC 7636 and what each provider documents (see /work/shared/providers):
exact redirect URI match, client authentication as the provider does it, single-use codes whose
replay revokes what they produced, S256-only PKCE verified whenever a challenge was sent (ignored
where the provider has no PKCE), rotation rules per provider.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from infra.local.sandbox import identity
from infra.local.sandbox.config import providers_by_app
from infra.local.sandbox.core import (
    Reply,
    Route,
    Sandbox,
    basic_credentials,
    bearer_token,
    html_response,
    is_form,
    json_response,
)
from infra.local.sandbox.dialects import DIALECTS, AppDialect, ClientAuth, Pkce, RefreshPolicy
from infra.local.sandbox.keys import APP_CREDENTIALS, GOOGLE_KEY_ID, google_signing_key
from infra.local.sandbox.state import AuthCode, Grant, TokenProblem

_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
_MS_TENANT = re.compile(r"common|organizations|consumers|[0-9a-fA-F-]{36}|[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

# Request parameters carried through the consent form as hidden fields.
_CARRIED = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "access_type",
    "prompt",
    "include_granted_scopes",
    "nonce",
    "response_mode",
    "login_hint",
    "optional_scope",
)

# Scopes each provider accepts besides those the catalog requests (OpenID basics and close relatives).
_EXTRA_SCOPES = {
    "google": {
        "email",
        "profile",
        "https://www.googleapis.com/auth/userinfo.profile",
        "https://www.googleapis.com/auth/calendar",
        "https://www.googleapis.com/auth/calendar.events.readonly",
        "https://www.googleapis.com/auth/gmail.readonly",
    },
    "microsoft": {"profile", "Calendars.Read", "Mail.Read", "Mail.Send"},
    "hubspot": {"crm.objects.companies.read", "crm.schemas.deals.read"},
    "ghl": {
        "calendars.readonly",
        "calendars/events.readonly",
        "users.readonly",
        "oauth.readonly",
        "oauth.write",
    },
    "calendly": {"scheduled_events:write", "event_types:write", "availability:read", "groups:read"},
    "slack": {"channels:history", "users:read", "im:write"},
}

_SCOPE_LABELS = {
    "openid": "Associate you with your personal info",
    "email": "See your primary email address",
    "https://www.googleapis.com/auth/userinfo.email": "See your primary email address",
    "https://www.googleapis.com/auth/calendar.events": "View and edit events on all your calendars",
    "https://www.googleapis.com/auth/calendar.readonly": "See and download any calendar you can access",
    "https://www.googleapis.com/auth/gmail.modify": "Read, compose, and send emails from your Gmail account",
    "offline_access": "Maintain access to data you have given it access to",
    "User.Read": "Sign you in and read your profile",
    "Calendars.ReadWrite": "Have full access to your calendars",
}


@cache
def known_scopes(app: str) -> frozenset[str]:
    """Scopes the sandbox app accepts: every scope the catalog requests for it, plus close relatives."""
    from integrations.catalog.loader import load_catalog

    scopes = set(_EXTRA_SCOPES.get(app, set()))
    for spec in load_catalog(overrides_path=""):
        if spec.oauth is not None and spec.oauth.app == app:
            scopes.update(spec.oauth.scopes)
    return frozenset(scopes)


@cache
def scope_labels(app: str) -> dict[str, str]:
    """The consent screen's words per scope: the catalog's (the real provider's wording), then our own."""
    from integrations.catalog.loader import load_catalog

    labels = dict(_SCOPE_LABELS)
    for spec in load_catalog(overrides_path=""):
        if spec.oauth is not None and spec.oauth.app == app:
            labels.update(spec.oauth.scope_labels)
    return labels


class OAuthError(Exception):
    """A token/revoke endpoint error; rendered in the app's own format by `_token_error`."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        *,
        slack: str | None = None,
        hubspot: str | None = None,
        aadsts: int | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.slack = slack
        self.hubspot = hubspot
        self.aadsts = aadsts


def _token_error(app: str, exc: OAuthError) -> Response:
    if app == "slack":
        return json_response({"ok": False, "error": exc.slack or exc.error})
    body: dict[str, Any] = {"error": exc.error, "error_description": exc.description}
    if app == "hubspot":
        # HubSpot's v1 endpoints answer with status/message; RFC fields are kept for generic clients.
        body = {
            "status": exc.hubspot or exc.error.upper(),
            "message": exc.description,
            "correlationId": base64.b32encode(
                hashlib.sha256(str(time.time()).encode()).digest()[:10]
            ).decode(),
            **body,
        }
    if app == "microsoft":
        code = exc.aadsts or 9002313
        body["error_description"] = f"AADSTS{code}: {exc.description}"
        body["error_codes"] = [code]
        body["timestamp"] = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        body["trace_id"] = base64.b16encode(
            hashlib.md5(str(time.time()).encode(), usedforsecurity=False).digest()
        ).decode()
        body["correlation_id"] = body["trace_id"].lower()
    response = json_response(body, status=exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="token"'
    return response


# --- Authorization endpoint ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A validated authorization request."""

    app: str
    params: dict[str, str]
    scopes: tuple[str, ...]

    @property
    def redirect_uri(self) -> str:
        return self.params["redirect_uri"]

    @property
    def state(self) -> str | None:
        return self.params.get("state")


def _error_page(dialect: AppDialect, error: str, message: str, status: int = 400) -> Reply:
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error - {html.escape(dialect.title)} (sandbox)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:.1rem .3rem}}</style></head>
<body><main data-error="{html.escape(error)}">
<h1>{html.escape(dialect.title)} sandbox: authorization error</h1>
<p>Error {status}: <code id="error">{html.escape(error)}</code></p>
<p id="message">{html.escape(message)}</p>
<p>The request was not sent back to the application, as a real provider would not redirect here.</p>
</main></body></html>"""
    return Reply(html_response(body, status=status))


def _single(params: MultiDict[str, str], name: str, dialect: AppDialect) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise _error_page(dialect, "invalid_request", f"Parameter {name} was sent more than once.")
    return values[0] if values else None


def _validate_authorize(
    sb: Sandbox, dialect: AppDialect, params: MultiDict[str, str], scope_value: str | None, tenant: str | None
) -> AuthRequest:
    """Check an authorization request; anything wrong is an error page, never a redirect."""
    app = dialect.app
    carried = {name: v for name in _CARRIED if (v := _single(params, name, dialect)) is not None}
    if tenant is not None and not _MS_TENANT.fullmatch(tenant):
        raise _error_page(dialect, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
    client_id = carried.get("client_id")
    if not client_id:
        raise _error_page(dialect, "invalid_request", "Missing required parameter: client_id")
    if client_id != APP_CREDENTIALS[app]["client_id"]:
        error = "invalid_client_id" if app == "slack" else "invalid_client"
        raise _error_page(dialect, error, "The OAuth client was not found.", status=401)
    redirect_uri = carried.get("redirect_uri")
    if not redirect_uri:
        raise _error_page(dialect, "invalid_request", "Missing required parameter: redirect_uri")
    if redirect_uri not in sb.config.registered_redirect_uris(app):
        error = "bad_redirect_uri" if app == "slack" else "redirect_uri_mismatch"
        raise _error_page(
            dialect,
            error,
            f"The redirect URI in the request, {redirect_uri}, does not match the ones authorized "
            "for the OAuth client.",
        )
    response_type = carried.get("response_type")
    if (dialect.response_type_required or response_type is not None) and response_type != "code":
        raise _error_page(dialect, "unsupported_response_type", "response_type must be 'code'.")
    if carried.get("response_mode", "query") != "query":
        raise _error_page(dialect, "invalid_request", "Only response_mode=query is supported.")
    if not scope_value:
        raise _error_page(dialect, "invalid_scope", "Missing required parameter: scope")
    requested = scope_value.split(dialect.scope_separator)
    if app == "hubspot":
        # HubSpot's optional_scope entries are shown too; the user may grant them or not.
        requested += carried.get("optional_scope", "").split(" ")
    scopes = tuple(dict.fromkeys(s for s in requested if s))
    unknown = [s for s in scopes if s not in known_scopes(app)]
    if unknown or not scopes:
        raise _error_page(dialect, "invalid_scope", f"Some requested scopes were invalid: {unknown}")
    if dialect.pkce is Pkce.UNSUPPORTED:
        # The provider does not know PKCE: the parameters are dropped, so nothing binds the code.
        carried.pop("code_challenge", None)
        carried.pop("code_challenge_method", None)
    elif dialect.pkce is Pkce.REQUIRED or "code_challenge" in carried or "code_challenge_method" in carried:
        challenge = carried.get("code_challenge")
        method = carried.get("code_challenge_method")
        if not challenge:
            raise _error_page(dialect, "invalid_request", "Missing required parameter: code_challenge")
        # A challenge without a method means `plain` (RFC 7636 §4.3); the sandbox accepts only S256.
        if method != "S256":
            raise _error_page(
                dialect, "invalid_request", "Invalid code_challenge_method: only S256 is allowed."
            )
        if not _PKCE_CHALLENGE.fullmatch(challenge):
            raise _error_page(dialect, "invalid_request", "Invalid code_challenge.")
    prompt = carried.get("prompt")
    if (
        prompt is not None
        and app == "google"
        and not set(prompt.split()) <= {"none", "consent", "select_account"}
    ):
        raise _error_page(dialect, "invalid_request", f"Invalid parameter value for prompt: {prompt}")
    return AuthRequest(app=app, params=carried, scopes=scopes)


def _consent_page(
    dialect: AppDialect, req: AuthRequest, account: str, problem: str | None = None
) -> Response:
    app_name = {"google": "Integrations (sandbox client)"}.get(dialect.app, "Integrations")
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in req.params.items()
    )
    hidden += (
        f'\n<input type="hidden" name="requested_scope" '
        f'value="{html.escape(dialect.scope_separator.join(req.scopes))}">'
    )
    labels = scope_labels(dialect.app)
    boxes = "\n".join(
        f'<li><label><input type="checkbox" name="scope" value="{html.escape(s)}" checked> '
        f"{html.escape(labels.get(s, s))} <code>{html.escape(s)}</code></label></li>"
        for s in req.scopes
    )
    warning = f'<p role="alert" id="problem">{html.escape(problem)}</p>' if problem else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Sign in - {html.escape(dialect.title)} (sandbox)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
ul{{list-style:none;padding:0}} li{{margin:.4rem 0}} code{{color:#666;font-size:.8em}}
button{{padding:.5rem 1.2rem;margin-right:.5rem}} [role=alert]{{color:#b00020}}</style></head>
<body><main>
<h1>{html.escape(dialect.title)} <small>(sandbox)</small></h1>
<p><strong>{html.escape(app_name)}</strong> wants to access your {html.escape(dialect.title)} account.</p>
{warning}
<form method="post">
<p><label for="account">{html.escape(dialect.account_label)}</label><br>
<input type="text" id="account" name="account" value="{html.escape(account)}" required></p>
<fieldset><legend>Allow access to</legend><ul>
{boxes}
</ul></fieldset>
{hidden}
<p><button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button></p>
</form>
</main></body></html>"""
    status = 400 if problem else 200
    return html_response(body, status=status)


def _redirect(target: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in target else "?"
    response = Response(status=302)
    response.headers["Location"] = target + separator + urlencode(params)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def authorize(sb: Sandbox, request: Request, app: str, tenant: str | None = None) -> Response:
    """GET renders the consent page; POST records the decision and redirects back."""
    dialect = DIALECTS[app]
    if request.method == "GET":
        req = _validate_authorize(sb, dialect, request.args, request.args.get("scope"), tenant)
        hint = req.params.get("login_hint", "")
        account = hint if hint and dialect.valid_account(hint) else dialect.default_account
        return _consent_page(dialect, req, account)
    form = request.form
    req = _validate_authorize(sb, dialect, form, form.get("requested_scope"), tenant)
    state = {"state": req.state} if req.state is not None else {}
    if form.get("decision") != "allow":
        denied = {"error": "access_denied"}
        if app == "microsoft":
            denied["error_description"] = "AADSTS65004: User declined to consent to access the app."
        return _redirect(req.redirect_uri, {**denied, **state})
    account = (form.get("account") or "").strip()
    if not dialect.valid_account(account):
        return _consent_page(dialect, req, account, problem=f"Enter a valid {dialect.account_label.lower()}.")
    ticked = form.getlist("scope")
    if not set(ticked) <= set(req.scopes):
        return _consent_page(dialect, req, account, problem="Only requested scopes can be granted.")
    granted = tuple(s for s in req.scopes if s in ticked)
    with sb.state.lock:
        code = sb.state.oauth.new_code(
            app=app,
            client_id=req.params["client_id"],
            redirect_uri=req.redirect_uri,
            scopes=granted,
            account=account,
            expires_at=sb.now() + sb.config.code_ttl,
            code_challenge=req.params.get("code_challenge"),
            offline=_offline(app, req, granted),
            force_consent="consent" in req.params.get("prompt", "").split(),
            include_granted=req.params.get("include_granted_scopes") == "true",
            nonce=req.params.get("nonce"),
        )
    back = {"code": code.code, **state}
    if app == "google":
        back.update({"scope": " ".join(granted), "authuser": "0", "prompt": "consent"})
    return _redirect(req.redirect_uri, back)


def _offline(app: str, req: AuthRequest, granted: tuple[str, ...]) -> bool:
    """Whether the exchange may return a refresh token."""
    if app == "google":
        return req.params.get("access_type") == "offline"
    if app == "microsoft":
        return "offline_access" in granted
    return app != "slack"


# --- Token endpoint --------------------------------------------------------------------------------


def _authenticate_client(dialect: AppDialect, request: Request) -> str:
    """The client id, once its credentials are checked in the ways this provider accepts."""
    app = dialect.app
    form = request.form
    basic = basic_credentials(request)
    body_secret = form.get("client_secret")
    if basic is not None and body_secret is not None:
        raise OAuthError("invalid_request", "Use only one client authentication method.")
    if basic is not None:
        method, (client_id, secret) = ClientAuth.BASIC, basic
        if form.get("client_id") not in (None, client_id):
            raise OAuthError(
                "invalid_request", "client_id in the body differs from the authenticated client."
            )
    elif body_secret is not None:
        method, client_id, secret = ClientAuth.POST, form.get("client_id", ""), body_secret
    else:
        raise OAuthError(
            "invalid_client",
            "Client authentication is required.",
            401,
            slack="invalid_client_id",
            hubspot="BAD_CLIENT_ID",
            aadsts=7000218,
        )
    expected = APP_CREDENTIALS[app]
    if client_id != expected["client_id"]:
        raise OAuthError(
            "invalid_client",
            "The OAuth client was not found.",
            401,
            slack="invalid_client_id",
            hubspot="BAD_CLIENT_ID",
            aadsts=700016,
        )
    if not hmac.compare_digest(secret.encode(), expected["client_secret"].encode()):
        raise OAuthError(
            "invalid_client",
            "Unauthorized",
            401,
            slack="bad_client_secret",
            hubspot="BAD_CLIENT_SECRET",
            aadsts=7000215,
        )
    if method not in dialect.client_auth:
        raise OAuthError(
            "invalid_client",
            f"Client authentication method {method.value} is not allowed.",
            401,
            slack="invalid_client_id",
            hubspot="BAD_CLIENT_ID",
            aadsts=7000218,
        )
    return client_id


def token(sb: Sandbox, request: Request, app: str, tenant: str | None = None) -> Response:
    """The token endpoint: authorization_code and refresh_token grants."""
    dialect = DIALECTS[app]
    try:
        if tenant is not None and not _MS_TENANT.fullmatch(tenant):
            raise OAuthError("invalid_request", f"Tenant '{tenant}' not found.", aadsts=90002)
        if not is_form(request):
            raise OAuthError(
                "invalid_request",
                "The request body must be application/x-www-form-urlencoded.",
                slack="invalid_form_data",
                aadsts=900144,
            )
        for name in request.form:
            if len(request.form.getlist(name)) > 1:
                raise OAuthError("invalid_request", f"Parameter {name} was sent more than once.")
        client_id = _authenticate_client(dialect, request)
        grant_type = request.form.get("grant_type")
        if grant_type is None and app == "slack" and "code" in request.form:
            grant_type = "authorization_code"
        with sb.state.lock:
            if grant_type == "authorization_code":
                return _exchange_code(sb, dialect, request, client_id)
            if grant_type == "refresh_token":
                return _refresh(sb, dialect, request, client_id)
        raise OAuthError(
            "unsupported_grant_type",
            f"Unsupported grant type: {grant_type}",
            slack="invalid_grant_type",
            hubspot="BAD_GRANT_TYPE",
            aadsts=70003,
        )
    except OAuthError as exc:
        return _token_error(app, exc)


def _invalid_code(description: str) -> OAuthError:
    return OAuthError(
        "invalid_grant", description, slack="invalid_code", hubspot="BAD_AUTH_CODE", aadsts=70008
    )


def _exchange_code(sb: Sandbox, dialect: AppDialect, request: Request, client_id: str) -> Response:
    app, form, store = dialect.app, request.form, sb.state.oauth
    value = form.get("code")
    if not value:
        raise OAuthError("invalid_request", "Missing required parameter: code", slack="invalid_code")
    code = store.codes.get(value)
    if code is None or code.app != app or code.client_id != client_id:
        raise _invalid_code("Malformed auth code.")
    if code.used:
        # A replayed code: revoke everything it produced (RFC 6749 §4.1.2), then refuse.
        if code.grant_id is not None:
            store.revoke_grant(code.grant_id)
        raise _invalid_code("The authorization code has already been used.")
    # Spent by the first attempt even if it fails below, as at Google: a code is never retried.
    code.used = True
    if sb.now() >= code.expires_at:
        raise _invalid_code("The authorization code has expired.")
    redirect_uri = form.get("redirect_uri")
    if redirect_uri is None:
        raise OAuthError(
            "invalid_request",
            "Missing required parameter: redirect_uri",
            slack="bad_redirect_uri",
            hubspot="BAD_REDIRECT_URI",
            aadsts=900144,
        )
    if redirect_uri != code.redirect_uri:
        error = "redirect_uri_mismatch" if app == "google" else "invalid_grant"
        raise OAuthError(
            error,
            "redirect_uri does not match the authorization request.",
            slack="bad_redirect_uri",
            hubspot="BAD_REDIRECT_URI",
            aadsts=50148,
        )
    _check_verifier(code, form.get("code_verifier"), dialect)
    scopes = code.scopes
    if code.include_granted:
        # Google incremental authorization: the new token also covers what was granted before.
        earlier = [s for g in store.live_grants(app, client_id, code.account) for s in g.scopes]
        scopes = tuple(dict.fromkeys([*scopes, *earlier]))
    user_type = form.get("user_type", "Location")
    if app == "ghl" and user_type not in ("Location", "Company"):
        raise OAuthError("invalid_request", "user_type must be Location or Company.")
    grant = store.new_grant(app, client_id, code.account, scopes, sb.now(), code.nonce)
    if app == "ghl":
        grant.extra["user_type"] = user_type
    code.grant_id = grant.id
    with_refresh = code.offline and (
        app != "google" or code.force_consent or not store.live_refresh_tokens(client_id, code.account)
    )
    return _token_answer(sb, request, grant, with_refresh=with_refresh, reused_refresh=None)


def _check_verifier(code: AuthCode, verifier: str | None, dialect: AppDialect) -> None:
    if code.code_challenge is None:
        # Google refuses a verifier for a code issued without a challenge; GHL ignores unknown fields.
        if verifier is not None and dialect.pkce is not Pkce.UNSUPPORTED:
            raise _invalid_code("code_verifier or verifier is not needed.")
        return
    if verifier is None:
        raise OAuthError(
            "invalid_grant",
            "Missing code verifier.",
            slack="invalid_code",
            hubspot="BAD_AUTH_CODE",
            aadsts=501481,
        )
    if not _PKCE_VERIFIER.fullmatch(verifier):
        raise OAuthError(
            "invalid_grant",
            "Invalid code verifier.",
            slack="invalid_code",
            hubspot="BAD_AUTH_CODE",
            aadsts=501481,
        )
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    if not hmac.compare_digest(digest, code.code_challenge):
        raise OAuthError(
            "invalid_grant",
            "Invalid code verifier.",
            slack="invalid_code",
            hubspot="BAD_AUTH_CODE",
            aadsts=501481,
        )


def _bad_refresh(description: str = "Token has been expired or revoked.") -> OAuthError:
    return OAuthError(
        "invalid_grant", description, slack="invalid_refresh_token", hubspot="BAD_REFRESH_TOKEN", aadsts=70000
    )


def _refresh(sb: Sandbox, dialect: AppDialect, request: Request, client_id: str) -> Response:
    app, form, store = dialect.app, request.form, sb.state.oauth
    value = form.get("refresh_token")
    if not value:
        raise OAuthError(
            "invalid_request",
            "Missing required parameter: refresh_token",
            slack="invalid_refresh_token",
            hubspot="BAD_REFRESH_TOKEN",
        )
    if dialect.refresh is RefreshPolicy.NONE:
        raise _bad_refresh("Token rotation is not enabled for this app.")
    record = store.refresh.get(value)
    grant = store.grants.get(record.grant_id) if record else None
    if record is None or grant is None or grant.app != app or grant.client_id != client_id:
        raise _bad_refresh("Bad Request")
    if grant.revoked or record.spent:
        raise _bad_refresh()
    requested = form.get("scope")
    if requested and app in ("google", "microsoft"):
        extra = set(requested.split()) - set(grant.scopes)
        if extra:
            raise OAuthError("invalid_scope", f"Scopes not granted: {sorted(extra)}", aadsts=70011)
    if dialect.refresh is RefreshPolicy.ROTATE_SINGLE_USE:
        record.spent = True
        return _token_answer(sb, request, grant, with_refresh=True, reused_refresh=None)
    if dialect.refresh is RefreshPolicy.ROTATE_KEEP_OLD:
        return _token_answer(sb, request, grant, with_refresh=True, reused_refresh=None)
    return _token_answer(sb, request, grant, with_refresh=False, reused_refresh=value)


def _api_base(request: Request, app: str) -> str:
    return f"{request.host_url.rstrip('/')}/{app}"


def _token_answer(
    sb: Sandbox, request: Request, grant: Grant, *, with_refresh: bool, reused_refresh: str | None
) -> Response:
    """Tokens in the provider's own answer shape."""
    app, store, now = grant.app, sb.state.oauth, sb.now()
    ttl = sb.access_ttl(app, DIALECTS[app].access_ttl)
    access = store.issue_access(grant, ttl, now)
    refresh = store.issue_refresh(grant).token if with_refresh else None
    body: dict[str, Any]
    if app == "google":
        body = {
            "access_token": access.token,
            "expires_in": ttl,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }
        if refresh:
            body["refresh_token"] = refresh
        if "openid" in grant.scopes:
            body["id_token"] = _google_id_token(grant, now)
    elif app == "ghl":
        location = identity.ghl_location(grant.account)
        user_type = grant.extra.get("user_type", "Location")
        body = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh,
            "scope": " ".join(grant.scopes),
            "userType": user_type,
            "companyId": location["companyId"],
            "userId": location["userId"],
            "planId": "sandbox-plan",
            "isBulkInstallation": False,
        }
        if user_type == "Location":
            body["locationId"] = grant.account
        else:
            body["approvedLocations"] = [grant.account]
    elif app == "hubspot":
        portal = identity.hubspot_portal(grant.account)
        body = {
            "token_type": "bearer",
            "refresh_token": refresh or reused_refresh,
            "access_token": access.token,
            "expires_in": ttl,
            "hub_id": portal["hub_id"],
            "user_id": portal["user_id"],
            "scopes": list(grant.scopes),
        }
    elif app == "calendly":
        user = identity.calendly_user(grant.account, _api_base(request, "calendly"))
        body = {
            "token_type": "Bearer",
            "access_token": access.token,
            "refresh_token": refresh,
            "scope": " ".join(grant.scopes),
            "created_at": int(now),
            "expires_in": ttl,
            "owner": user["uri"],
            "organization": user["current_organization"],
        }
    elif app == "slack":
        team = identity.slack_team(grant.account)
        body = {
            "ok": True,
            "app_id": APP_CREDENTIALS["slack"]["app_id"],
            "authed_user": {"id": team["authed_user_id"]},
            "scope": ",".join(grant.scopes),
            "token_type": "bot",
            "access_token": access.token,
            "bot_user_id": team["bot_user_id"],
            "team": {"id": team["team_id"], "name": team["team_name"]},
            "enterprise": None,
            "is_enterprise_install": False,
        }
    else:
        body = {
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
            "expires_in": ttl,
            "ext_expires_in": ttl,
            "access_token": access.token,
        }
        if refresh:
            body["refresh_token"] = refresh
        if "openid" in grant.scopes:
            body["id_token"] = _microsoft_id_token(grant, now)
    return json_response(body)


def _sign(claims: dict[str, Any]) -> str:
    import jwt

    return jwt.encode(claims, google_signing_key(), algorithm="RS256", headers={"kid": GOOGLE_KEY_ID})


def _google_id_token(grant: Grant, now: float) -> str:
    profile = identity.google_profile(grant.account)
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "azp": grant.client_id,
        "aud": grant.client_id,
        "sub": profile["sub"],
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    if {"email", "https://www.googleapis.com/auth/userinfo.email"} & set(grant.scopes):
        claims.update({"email": profile["email"], "email_verified": True})
    if grant.nonce:
        claims["nonce"] = grant.nonce
    return _sign(claims)


def _microsoft_id_token(grant: Grant, now: float) -> str:
    profile = identity.microsoft_profile(grant.account)
    claims: dict[str, Any] = {
        "ver": "2.0",
        "iss": f"https://login.microsoftonline.com/{profile['tid']}/v2.0",
        "aud": grant.client_id,
        "sub": profile["id"],
        "oid": profile["id"],
        "tid": profile["tid"],
        "name": profile["displayName"],
        "preferred_username": profile["userPrincipalName"],
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 3600,
    }
    if "email" in grant.scopes:
        claims["email"] = profile["mail"]
    if grant.nonce:
        claims["nonce"] = grant.nonce
    return _sign(claims)


# --- Revocation and token information --------------------------------------------------------------


def _grant_of(sb: Sandbox, app: str, value: str) -> Grant | None:
    store = sb.state.oauth
    record = store.access.get(value) or store.refresh.get(value)
    grant = store.grants.get(record.grant_id) if record else None
    return grant if grant is not None and grant.app == app else None


def google_revoke(sb: Sandbox, request: Request) -> Response:
    """POST /revoke?token=…: revoking any token ends every grant of that account to the client."""
    value = request.args.get("token") or request.form.get("token")
    with sb.state.lock:
        grant = _grant_of(sb, "google", value or "")
        if grant is None or grant.revoked:
            return json_response(
                {"error": "invalid_token", "error_description": "Token expired or revoked"}, 400
            )
        for other in sb.state.oauth.live_grants("google", grant.client_id, grant.account):
            other.revoked = True
    return json_response({})


def hubspot_refresh_token(sb: Sandbox, request: Request, token: str) -> Response:
    """GET shows a refresh token's metadata; DELETE revokes it (and the grant it belongs to)."""
    with sb.state.lock:
        record = sb.state.oauth.refresh.get(token)
        grant = _grant_of(sb, "hubspot", token)
        if record is None or grant is None or grant.revoked:
            return json_response(
                {
                    "status": "BAD_REFRESH_TOKEN",
                    "message": "refresh token not found",
                    "category": "OBJECT_NOT_FOUND",
                },
                404,
            )
        if request.method == "DELETE":
            grant.revoked = True
            return Response(status=204)
    portal = identity.hubspot_portal(grant.account)
    return json_response(
        {
            "token": token,
            "user": portal["user"],
            "hub_domain": portal["hub_domain"],
            "scopes": list(grant.scopes),
            "hub_id": portal["hub_id"],
            "client_id": grant.client_id,
            "user_id": portal["user_id"],
            "token_type": "refresh",
        }
    )


def hubspot_access_token_info(sb: Sandbox, request: Request, token: str) -> Response:
    """GET /oauth/v1/access-tokens/{token}: the account behind an access token."""
    with sb.state.lock:
        checked = sb.state.oauth.check_access("hubspot", token, sb.now())
    if isinstance(checked, TokenProblem):
        return json_response(
            {
                "status": "error",
                "message": "The access token is expired or invalid",
                "category": "EXPIRED_AUTHENTICATION"
                if checked is TokenProblem.EXPIRED
                else "INVALID_AUTHENTICATION",
            },
            401,
        )
    access, grant = checked
    portal = identity.hubspot_portal(grant.account)
    expires_in = 0 if access.expires_at is None else max(0, int(access.expires_at - sb.now()))
    return json_response(
        {
            "token": token,
            "user": portal["user"],
            "hub_domain": portal["hub_domain"],
            "scopes": list(grant.scopes),
            "signed_access_token": {
                "expiresAt": int((access.expires_at or 0) * 1000),
                "scopes": "",
                "hubId": portal["hub_id"],
            },
            "hub_id": portal["hub_id"],
            "app_id": int(APP_CREDENTIALS["hubspot"]["app_id"]),
            "expires_in": expires_in,
            "user_id": portal["user_id"],
            "token_type": "access",
            "is_private_distribution": False,
        }
    )


def calendly_revoke(sb: Sandbox, request: Request) -> Response:
    """POST /oauth/revoke (RFC 7009): always 200 once the client is authenticated."""
    try:
        _authenticate_calendly_loose(request)
    except OAuthError as exc:
        return _token_error("calendly", exc)
    with sb.state.lock:
        grant = _grant_of(sb, "calendly", request.form.get("token", ""))
        if grant is not None:
            grant.revoked = True
    return json_response({})


def calendly_introspect(sb: Sandbox, request: Request) -> Response:
    try:
        _authenticate_calendly_loose(request)
    except OAuthError as exc:
        return _token_error("calendly", exc)
    value = request.form.get("token", "")
    with sb.state.lock:
        store = sb.state.oauth
        grant = _grant_of(sb, "calendly", value)
        access = store.access.get(value)
        refresh = store.refresh.get(value)
        active = grant is not None and not grant.revoked
        if access is not None and access.expires_at is not None and sb.now() >= access.expires_at:
            active = False
        if refresh is not None and refresh.spent:
            active = False
    if not active or grant is None:
        return json_response({"active": False})
    user = identity.calendly_user(grant.account, _api_base(request, "calendly"))
    body: dict[str, Any] = {
        "active": True,
        "scope": " ".join(grant.scopes),
        "client_id": grant.client_id,
        "token_type": "Bearer",
        "iat": int(grant.created_at),
        "owner": user["uri"],
        "organization": user["current_organization"],
    }
    if access is not None and access.expires_at is not None:
        body["exp"] = int(access.expires_at)
    return json_response(body)


def _authenticate_calendly_loose(request: Request) -> None:
    """Calendly's revoke/introspect take the credentials in Basic auth or in the body."""
    basic = basic_credentials(request)
    client_id, secret = (
        basic if basic else (request.form.get("client_id", ""), request.form.get("client_secret", ""))
    )
    expected = APP_CREDENTIALS["calendly"]
    if client_id != expected["client_id"] or not hmac.compare_digest(
        secret.encode(), expected["client_secret"].encode()
    ):
        raise OAuthError("invalid_client", "Client authentication failed.", 401)


def slack_revoke(sb: Sandbox, request: Request) -> Response:
    """auth.revoke: the token comes as a Bearer header or a `token` form field."""
    value = bearer_token(request) or request.values.get("token")
    with sb.state.lock:
        checked = sb.state.oauth.check_access("slack", value, sb.now())
        if isinstance(checked, TokenProblem):
            error = {"missing": "not_authed", "invalid": "invalid_auth", "expired": "token_expired"}.get(
                checked.value, "token_revoked"
            )
            return json_response({"ok": False, "error": error})
        if request.values.get("test") in ("1", "true"):
            return json_response({"ok": True, "revoked": False})
        checked[1].revoked = True
    return json_response({"ok": True, "revoked": True})


def google_certs(sb: Sandbox, request: Request) -> Response:
    from infra.local.sandbox.keys import google_jwks

    response = json_response(google_jwks())
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _authorize_route(path: str, app: str) -> Route:
    def handler(sb: Sandbox, request: Request, tenant: str | None = None) -> Response:
        return authorize(sb, request, app, tenant)

    return Route(path, ("GET", "POST"), handler, "authorize", app)


def _token_route(path: str, app: str) -> Route:
    def handler(sb: Sandbox, request: Request, tenant: str | None = None) -> Response:
        return token(sb, request, app, tenant)

    return Route(path, ("POST",), handler, "token", app)


def routes() -> list[Route]:
    """Every authorization-server route of every app."""
    out: list[Route] = []
    for app, dialect in DIALECTS.items():
        out.extend(_authorize_route(path, app) for path in dialect.authorize_paths)
        out.append(_token_route(dialect.exchange_path, app))
    out += [
        Route("/google/revoke", ("POST",), google_revoke, "token", "google"),
        Route("/google/oauth2/v3/certs", ("GET",), google_certs, "api", "google"),
        Route(
            "/hubspot/oauth/v1/refresh-tokens/<token>",
            ("GET", "DELETE"),
            hubspot_refresh_token,
            "token",
            "hubspot",
        ),
        Route(
            "/hubspot/oauth/v1/access-tokens/<token>", ("GET",), hubspot_access_token_info, "api", "hubspot"
        ),
        Route("/calendly/oauth/revoke", ("POST",), calendly_revoke, "token", "calendly"),
        Route("/calendly/oauth/introspect", ("POST",), calendly_introspect, "token", "calendly"),
        Route("/slack/api/auth.revoke", ("GET", "POST"), slack_revoke, "token", "slack"),
    ]
    # The catalog's providers must all have an authorization server here.
    missing = set(providers_by_app()) - set(DIALECTS)
    if missing:
        raise RuntimeError(f"sandbox has no OAuth app for {sorted(missing)}")
    return out
