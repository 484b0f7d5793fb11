"""Drive the provider sandbox over real HTTP the way a browser and the product would."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from infra.local.sandbox import APP_CREDENTIALS, SandboxApp, SandboxConfig, catalog_overrides, serve
from infra.local.sandbox.config import providers_by_app
from integrations.catalog.loader import load_catalog

GATEWAY = "http://127.0.0.1:3000"
BASIC_APPS = {"calendly", "slack"}


@dataclass
class Sandbox:
    """A running sandbox: its base URL and the in-process app (for its state and settings)."""

    base: str
    app: SandboxApp
    http: requests.Session = field(default_factory=requests.Session)

    def url(self, path: str) -> str:
        return self.base + path

    def reset(self) -> None:
        self.http.post(self.url("/_sandbox/reset"), timeout=5).raise_for_status()

    def advance(self, seconds: float) -> None:
        self.http.post(self.url("/_sandbox/clock"), json={"advance": seconds}, timeout=5).raise_for_status()

    def requests_log(self, **filters: str) -> list[dict[str, Any]]:
        answer = self.http.get(self.url("/_sandbox/requests"), params=filters, timeout=5)
        log: list[dict[str, Any]] = answer.json()["requests"]
        return log


@contextmanager
def running_sandbox(config: SandboxConfig | None = None) -> Iterator[Sandbox]:
    server, thread = serve("127.0.0.1", 0, config or SandboxConfig(gateway_url=GATEWAY))
    sandbox = Sandbox(base=f"http://127.0.0.1:{server.server_port}", app=server.app)  # type: ignore[arg-type]
    sandbox.http.trust_env = False
    try:
        yield sandbox
    finally:
        server.shutdown()
        server.server_close()
        sandbox.app.close()
        thread.join(timeout=5)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def provider_of(app: str) -> str:
    """The first catalog provider using `app` (google → google_calendar)."""
    return providers_by_app()[app][0]


def redirect_uri(app: str) -> str:
    return f"{GATEWAY}/oauth/{provider_of(app)}/callback"


def catalog_scopes(app: str) -> list[str]:
    spec = load_catalog(overrides_path="").get(provider_of(app))
    assert spec.oauth is not None
    return list(spec.oauth.scopes)


def scope_separator(app: str) -> str:
    return "," if app == "slack" else " "


def endpoints(base: str, app: str) -> dict[str, Any]:
    oauth: dict[str, Any] = catalog_overrides(base)[provider_of(app)]["oauth"]
    return oauth


class ConsentForm(HTMLParser):
    """The consent page's form: hidden fields, account, scope checkboxes and decision buttons."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.account: str | None = None
        self.checkboxes: list[tuple[str, bool]] = []
        self.buttons: list[tuple[str, str]] = []
        self.method: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.method = a.get("method")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.append((a.get("value", ""), "checked" in a))
        elif tag == "input" and a.get("name") == "account":
            self.account = a.get("value", "")
        elif tag == "button":
            self.buttons.append((a.get("name", ""), a.get("value", "")))


@dataclass
class Authorization:
    page: requests.Response
    verifier: str | None
    redirect_uri: str
    scopes: list[str]


def start_authorization(
    sb: Sandbox,
    app: str,
    *,
    scopes: list[str] | None = None,
    state: str = "st-123",
    pkce: bool = True,
    extra: dict[str, str] | None = None,
    uri: str | None = None,
) -> Authorization:
    """GET the provider's authorize URL as the product would build it."""
    scopes = scopes if scopes is not None else catalog_scopes(app)
    uri = uri or redirect_uri(app)
    params = {
        "client_id": APP_CREDENTIALS[app]["client_id"],
        "redirect_uri": uri,
        "response_type": "code",
        "scope": scope_separator(app).join(scopes),
        "state": state,
    }
    if app == "google":
        params.update(access_type="offline", prompt="consent", include_granted_scopes="true")
    verifier = None
    if pkce:
        verifier, challenge = pkce_pair()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra or {})
    page = sb.http.get(
        endpoints(sb.base, app)["authorize_url"], params=params, allow_redirects=False, timeout=5
    )
    return Authorization(page=page, verifier=verifier, redirect_uri=uri, scopes=scopes)


def decide(
    sb: Sandbox,
    auth: Authorization,
    *,
    decision: str = "allow",
    account: str | None = None,
    untick: tuple[str, ...] = (),
) -> requests.Response:
    """Submit the consent form as a person would (optionally unticking some scopes)."""
    form = ConsentForm(auth.page.text)
    fields: list[tuple[str, str]] = list(form.hidden.items())
    fields.append(("account", account if account is not None else form.account or ""))
    fields += [("scope", value) for value, checked in form.checkboxes if checked and value not in untick]
    fields.append(("decision", decision))
    return sb.http.post(auth.page.url, data=fields, allow_redirects=False, timeout=5)


def callback_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(
    sb: Sandbox,
    app: str,
    code: str,
    *,
    verifier: str | None,
    uri: str | None = None,
    auth: str | None = None,
    secret: str | None = None,
    extra: dict[str, str] | None = None,
) -> requests.Response:
    """POST the token request, authenticating the client the way the provider expects by default."""
    creds = APP_CREDENTIALS[app]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": uri or redirect_uri(app)}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra or {})
    return token_request(sb, app, data, auth=auth, secret=secret or creds["client_secret"])


def token_request(
    sb: Sandbox, app: str, data: dict[str, str], *, auth: str | None = None, secret: str | None = None
) -> requests.Response:
    creds = APP_CREDENTIALS[app]
    secret = secret if secret is not None else creds["client_secret"]
    method = auth or ("basic" if app in BASIC_APPS else "post")
    kwargs: dict[str, Any] = {}
    if method == "basic":
        kwargs["auth"] = (creds["client_id"], secret)
    else:
        data = {**data, "client_id": creds["client_id"], "client_secret": secret}
    return sb.http.post(endpoints(sb.base, app)["token_url"], data=data, timeout=5, **kwargs)


def refresh(sb: Sandbox, app: str, refresh_token: str) -> requests.Response:
    return token_request(sb, app, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def connect(
    sb: Sandbox, app: str, *, account: str | None = None, untick: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The whole flow: consent, allow, exchange. Returns the token answer."""
    auth = start_authorization(sb, app, pkce=app != "ghl")
    code = callback_params(decide(sb, auth, account=account, untick=untick))["code"]
    answer = exchange(sb, app, code, verifier=auth.verifier)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
