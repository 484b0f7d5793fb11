"""The generic OAuth 2.0 client, driven only by a provider's catalog entry (RFC 6749, 7636, 7009).

Everything a provider does differently is data on its OAuthSpec: scope separator and parameter,
PKCE, client authentication (post or basic), extra parameters (fixed, or by the connection's level:
GoHighLevel issues a Company or a Location token as asked), where granted scopes come back and
how they may be spelled there, and Slack's HTTP-200-with-`ok:false` errors. No provider id or
provider URL appears in this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from integrations import http
from integrations.domain.errors import ProviderUnavailable
from integrations.oauth.errors import TokenAnswerLost, TokenEndpointError
from integrations.oauth.pkce import s256_challenge

if TYPE_CHECKING:
    import requests

    from integrations.catalog.model import OAuthSpec
    from integrations.domain.access import Level
    from integrations.domain.credentials import AppCredentials


def build_url(base: str, params: dict[str, str]) -> str:
    """`base` with `params` added to whatever query it already has."""
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


class OAuth2Engine:
    """Authorize URL, code exchange, refresh and RFC 7009 revocation for any catalog provider."""

    def __init__(self, session: Callable[[], requests.Session] = http.session) -> None:
        self._session = session

    def authorization_url(
        self, spec: OAuthSpec, app: AppCredentials, *, redirect_uri: str, state: str, verifier: str | None
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": redirect_uri,
            spec.scope_param: spec.scope_separator.join(spec.scopes),
            "state": state,
        }
        if spec.pkce and verifier:
            params["code_challenge"] = s256_challenge(verifier)
            params["code_challenge_method"] = "S256"
        params.update(spec.extra_authorize_params)
        return build_url(spec.authorize_url, params)

    def exchange_code(
        self,
        spec: OAuthSpec,
        app: AppCredentials,
        *,
        code: str,
        redirect_uri: str,
        verifier: str | None,
        level: Level | None = None,
    ) -> dict[str, Any]:
        """Trade an authorization code for tokens for a connection at `level`. Codes are single-use:
        never retried."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if spec.pkce and verifier:
            form["code_verifier"] = verifier
        return self._token_request(spec, app, form, level)

    def refresh(
        self, spec: OAuthSpec, app: AppCredentials, refresh_token: str, level: Level | None = None
    ) -> dict[str, Any]:
        """One refresh_token grant. The caller holds the connection's lease and stores the answer first."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token_request(spec, app, form, level)

    def revoke(self, spec: OAuthSpec, app: AppCredentials | None, token: str, token_type_hint: str) -> None:
        """RFC 7009 revocation at `spec.revoke_url` with the spec's client authentication."""
        if not spec.revoke_url:
            return
        form = {"token": token, "token_type_hint": token_type_hint}
        kwargs = _client_auth(spec, app, form) if app is not None else {"data": form}
        try:
            response = self._session().post(spec.revoke_url, **kwargs)
        except Exception as exc:
            raise ProviderUnavailable(
                f"The revocation endpoint did not answer ({type(exc).__name__})."
            ) from None
        http.check_rate_limit(response)
        if response.status_code >= 400:
            body = http.get_json(response)
            raise TokenEndpointError(_error_of(body), response.status_code)

    def _token_request(
        self, spec: OAuthSpec, app: AppCredentials, form: dict[str, str], level: Level | None
    ) -> dict[str, Any]:
        import requests

        form = {**spec.token_params(level), **form}
        kwargs = _client_auth(spec, app, form)
        try:
            response = self._session().post(
                spec.token_url,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=http.TOKEN_TIMEOUT,
                **kwargs,
            )
        except requests.exceptions.ConnectTimeout:
            raise ProviderUnavailable("The token endpoint could not be reached.") from None
        except requests.exceptions.ConnectionError as exc:
            if _never_sent(exc):
                raise ProviderUnavailable("The token endpoint could not be reached.") from None
            raise TokenAnswerLost("The token endpoint's answer was lost.") from None
        except requests.RequestException:
            # The request left; the grant may have been used. Never replayed here (see http.py).
            raise TokenAnswerLost("The token endpoint's answer was lost.") from None
        http.check_rate_limit(response)
        if response.status_code >= 500:
            raise ProviderUnavailable(f"The token endpoint failed with HTTP {response.status_code}.")
        body = http.get_json(response)
        if not isinstance(body, dict):
            raise TokenEndpointError("invalid_response", response.status_code)
        if spec.ok_field and body.get(spec.ok_field) is not True:
            raise TokenEndpointError(_error_of(body), response.status_code)
        if response.status_code >= 400:
            raise TokenEndpointError(
                _error_of(body), response.status_code, str(body.get("error_description", ""))
            )
        if not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise TokenEndpointError("missing_access_token", response.status_code)
        return body


def _client_auth(spec: OAuthSpec, app: AppCredentials, form: dict[str, str]) -> dict[str, Any]:
    if spec.client_auth == "client_secret_basic":
        # RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
        from urllib.parse import quote_plus

        return {"data": form, "auth": (quote_plus(app.client_id), quote_plus(app.client_secret))}
    return {"data": {**form, "client_id": app.client_id, "client_secret": app.client_secret}}


def _never_sent(exc: Exception) -> bool:
    """A refused connection or failed DNS lookup: the request cannot have reached the provider."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _error_of(body: Any) -> str:
    """The provider's error name: RFC 6749 `error`, Slack `error`, HubSpot's legacy `status`."""
    if isinstance(body, dict):
        for key in ("error", "status"):
            value = body.get(key)
            if isinstance(value, str) and value and len(value) <= 80:
                return value
    return ""
