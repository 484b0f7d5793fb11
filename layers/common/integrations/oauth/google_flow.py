"""Google's authorization-code flow through google-auth-oauthlib's `Flow`.

The authorize request and the callback run in different invocations, so each builds its own Flow;
the PKCE verifier made at start travels in the OAuth session and is handed back to the callback's
Flow (otherwise Google answers `invalid_grant: Missing code verifier`, provider page §1.7).
google_auth_oauthlib costs ~145 ms to import: it is imported here only, on first use.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from integrations import http
from integrations.domain.errors import ProviderUnavailable
from integrations.oauth.errors import TokenAnswerLost, TokenEndpointError

if TYPE_CHECKING:
    import requests

    from integrations.catalog.model import OAuthSpec
    from integrations.domain.access import Level
    from integrations.domain.credentials import AppCredentials

# requests-oauthlib logs request bodies and tokens at DEBUG; keep them out of every log level.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _prepare_environment(*urls: str) -> None:
    # Granular consent can return fewer scopes than requested; oauthlib would raise a bare Warning.
    # We compare granted with required scopes ourselves (service.py), as Google asks apps to.
    os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    # oauthlib refuses http:// token URLs unless this is set. Only a loopback stand-in (the local
    # sandbox) is ever plain HTTP; real endpoints stay under oauthlib's HTTPS check.
    if all(urlsplit(u).scheme == "http" and urlsplit(u).hostname in _LOOPBACK for u in urls):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


class GoogleFlow:
    """Same shape as OAuth2Engine's authorize/exchange, backed by google-auth-oauthlib."""

    def authorization_url(
        self, spec: OAuthSpec, app: AppCredentials, *, redirect_uri: str, state: str, verifier: str | None
    ) -> str:
        _prepare_environment(spec.authorize_url)
        flow = self._flow(spec, app, redirect_uri=redirect_uri, state=state, verifier=verifier)
        url, _ = flow.authorization_url(**spec.extra_authorize_params)
        return str(url)

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
        import requests
        from oauthlib.oauth2.rfc6749.errors import OAuth2Error  # type: ignore[import-untyped]

        _prepare_environment(spec.token_url)
        flow = self._flow(spec, app, redirect_uri=redirect_uri, state=None, verifier=verifier)
        flow.oauth2session.register_compliance_hook("access_token_response", _check_answer)
        try:
            # client_secret_post, as the catalog says; Flow would otherwise use HTTP Basic.
            token = flow.fetch_token(
                code=code, include_client_id=True, timeout=http.TOKEN_TIMEOUT, **spec.token_params(level)
            )
        except OAuth2Error as exc:
            raise TokenEndpointError(str(exc.error or ""), int(exc.status_code or 400)) from None
        except requests.exceptions.ConnectTimeout:
            raise ProviderUnavailable("The token endpoint could not be reached.") from None
        except requests.RequestException:
            raise TokenAnswerLost("The token endpoint's answer was lost.") from None
        answer = dict(token)
        if not answer.get("access_token"):
            raise TokenEndpointError("missing_access_token", 200)
        return answer

    @staticmethod
    def _flow(
        spec: OAuthSpec, app: AppCredentials, *, redirect_uri: str, state: str | None, verifier: str | None
    ) -> Any:
        from google_auth_oauthlib.flow import Flow

        config = {
            "web": {
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "auth_uri": spec.authorize_url,
                "token_uri": spec.token_url,
            }
        }
        return Flow.from_client_config(
            config,
            scopes=list(spec.scopes),
            redirect_uri=redirect_uri,
            state=state,
            code_verifier=verifier if spec.pkce else None,
            autogenerate_code_verifier=False,
        )


def _check_answer(response: requests.Response) -> requests.Response:
    """Turn 429 and 5xx into our typed errors before oauthlib parses the body."""
    http.check_rate_limit(response)
    if response.status_code >= 500:
        raise ProviderUnavailable(f"The token endpoint failed with HTTP {response.status_code}.")
    return response
