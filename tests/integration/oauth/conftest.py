"""OAuth round trips over HTTP: the OAuth function driven with API Gateway v2 events, the provider
sandbox over real loopback HTTP, and a small browser that carries the binding cookie."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from infra.local.sandbox import APP_CREDENTIALS, SandboxConfig, catalog_overrides, serve
from integrations import aws as aws_clients
from integrations.catalog.loader import OVERRIDES_ENV, clear_cache
from integrations.domain.access import Tier
from tests.support import seed
from tests.support.events import body_of, claims, http_event
from tests.support.functions import load_handler

GATEWAY = "http://127.0.0.1:3000"
RETURN_TO = f"{GATEWAY}/portal/"

# Who connects each provider, at which level (the provider's natural owner).
CLIENT_USER = claims(sub="user-1", agency_id="agency-1", client_id="client-a", role="client_user")
AGENCY_ADMIN = claims(
    sub="admin-1", agency_id="agency-1", client_id=None, role="agency_admin", permissions=[]
)
OWNER: dict[str, tuple[dict[str, Any], str]] = {
    "ghl": (CLIENT_USER, "client"),
    "hubspot": (CLIENT_USER, "client"),
    "google_calendar": (CLIENT_USER, "user"),
    "google_calendar_oneway": (CLIENT_USER, "user"),
    "gmail": (CLIENT_USER, "user"),
    "calendly": (CLIENT_USER, "client"),
    "slack": (CLIENT_USER, "client"),
    "outlook_calendar": (CLIENT_USER, "user"),
}
OAUTH_PROVIDERS = sorted(OWNER)
APP_OF = {
    "ghl": "ghl",
    "hubspot": "hubspot",
    "google_calendar": "google",
    "google_calendar_oneway": "google",
    "gmail": "google",
    "calendly": "calendly",
    "slack": "slack",
    "outlook_calendar": "microsoft",
}


class _ConsentForm(HTMLParser):
    """Reads the sandbox consent page: hidden fields, the account box and the scope checkboxes."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: list[tuple[str, str]] = []
        self.scopes: list[str] = []
        self.account = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "input":
            return
        a = {k: v or "" for k, v in attrs}
        if a.get("type") == "hidden":
            self.hidden.append((a["name"], a.get("value", "")))
        elif a.get("type") == "checkbox" and a.get("name") == "scope":
            self.scopes.append(a["value"])
        elif a.get("name") == "account":
            self.account = a.get("value", "")


def consent(
    provider_url: str, *, decision: str = "allow", untick: tuple[str, ...] = (), account: str | None = None
) -> str:
    """At the provider: read the consent page, tick boxes, decide; returns the redirect back."""
    page = requests.get(provider_url, timeout=5)
    assert page.status_code == 200, page.text[:500]
    form = _ConsentForm()
    form.feed(page.text)
    fields = list(form.hidden)
    fields.append(("account", account or form.account))
    fields += [("scope", s) for s in form.scopes if s not in untick]
    fields.append(("decision", decision))
    answer = requests.post(provider_url, data=fields, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text[:500]
    return str(answer.headers["Location"])


@dataclass
class Answer:
    """A Lambda v2 answer, with the parts a browser looks at."""

    raw: dict[str, Any]

    @property
    def status(self) -> int:
        return int(self.raw["statusCode"])

    @property
    def location(self) -> str:
        return str(self.headers.get("Location") or self.headers.get("location") or "")

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.raw.get("headers") or {})

    @property
    def cookies(self) -> list[str]:
        return list(self.raw.get("cookies") or [])

    @property
    def body(self) -> Any:
        return body_of(self.raw)

    def result(self) -> dict[str, str]:
        """The query the portal gets back on return_to."""
        assert self.location.startswith(RETURN_TO), self.location
        return dict(parse_qsl(urlsplit(self.location).query))


@dataclass
class Browser:
    """Plays the user's browser: follows the round trip and keeps the cookie jar for our API."""

    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    context: Any
    jar: dict[str, str] = field(default_factory=dict)

    def call(self, event: dict[str, Any]) -> Answer:
        answer = Answer(self.handler(event, self.context))
        for cookie in answer.cookies:
            pair = cookie.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return answer

    def start(
        self, provider: str, who: dict[str, Any] | None = None, level: str | None = None, **body: Any
    ) -> Answer:
        owner, owner_level = OWNER.get(provider, (CLIENT_USER, "user"))
        payload = {"level": level or owner_level, "return_to": RETURN_TO, **body}
        return self.call(http_event("POST", f"/oauth/{provider}/start", claims=who or owner, body=payload))

    def get(self, url: str, *, cookies: bool = True, headers: dict[str, str] | None = None) -> Answer:
        """GET as a browser would; by default as the portal's own navigation (same-origin Fetch Metadata)."""
        parts = urlsplit(url)
        jar = [f"{k}={v}" for k, v in self.jar.items()] if cookies else None
        sent = {"Sec-Fetch-Site": "same-origin"} if headers is None else headers
        query = dict(parse_qsl(parts.query))
        return self.call(http_event("GET", parts.path, query=query, cookies=jar, headers=sent))

    def consent(self, provider_url: str, **choices: Any) -> str:
        return consent(provider_url, **choices)

    def connect(self, provider: str, **kwargs: Any) -> Answer:
        """The whole happy path: start, authorize, consent, callback."""
        started = self.start(provider, **kwargs)
        assert started.status == 200, started.body
        at_provider = self.get(started.body["redirect_url"])
        assert at_provider.status == 302
        return self.get(self.consent(at_provider.location))


@pytest.fixture(scope="session")
def sandbox_base() -> Iterator[str]:
    server, _ = serve("127.0.0.1", 0, SandboxConfig(gateway_url=GATEWAY, push_enabled=False))
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    server.app.close()  # type: ignore[attr-defined]


@pytest.fixture
def sandbox(sandbox_base: str) -> str:
    requests.post(f"{sandbox_base}/_sandbox/reset", timeout=5).raise_for_status()
    return sandbox_base


def store_app_credentials(prefix: str) -> None:
    """The platform's app secrets hold the sandbox's fixed client credentials."""
    sm = aws_clients.secretsmanager()
    for app, values in APP_CREDENTIALS.items():
        name = prefix + app
        secret = json.dumps(values)
        try:
            sm.put_secret_value(SecretId=name, SecretString=secret)
        except sm.exceptions.ResourceNotFoundException:
            sm.create_secret(Name=name, SecretString=secret)


def point_catalog_at(sandbox: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overrides = folder / "catalog-overrides.json"
    overrides.write_text(json.dumps(catalog_overrides(sandbox)))
    monkeypatch.setenv(OVERRIDES_ENV, str(overrides))
    monkeypatch.setenv("PUBLIC_API_URL", GATEWAY)
    monkeypatch.setenv("ALLOWED_RETURN_ORIGINS", GATEWAY)
    clear_cache()


@pytest.fixture
def oauth_env(
    aws: Any, sandbox: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """AWS from template.yaml, the catalog pointed at the sandbox, app secrets, a growth agency."""
    point_catalog_at(sandbox, tmp_path, monkeypatch)
    env = aws.environment()
    store_app_credentials(env["APP_SECRET_PREFIX"])
    seed.agency("agency-1", Tier.GROWTH)
    yield {"sandbox": sandbox, **env}
    clear_cache()


@pytest.fixture
def oauth_function(oauth_env: dict[str, str]) -> ModuleType:
    return load_handler("oauth")


@pytest.fixture
def browser(oauth_function: ModuleType, lambda_context: Any) -> Browser:
    return Browser(oauth_function.handler, lambda_context)


def sandbox_requests(base: str, **filters: str) -> list[dict[str, Any]]:
    """What reached the sandbox (secrets redacted), filtered like `GET /_sandbox/requests`."""
    answer = requests.get(f"{base}/_sandbox/requests", params=filters, timeout=5)
    answer.raise_for_status()
    return list(answer.json()["requests"])


def sandbox_grant(provider: str, account: str | None = None) -> dict[str, Any]:
    """A real grant from the sandbox (authorize, consent, exchange), without the OAuth function."""
    from integrations.catalog import load_catalog
    from integrations.domain.credentials import AppCredentials
    from integrations.oauth.engine import OAuth2Engine
    from integrations.oauth.pkce import new_verifier

    spec = load_catalog().get(provider)
    assert spec.oauth is not None
    values = APP_CREDENTIALS[APP_OF[provider]]
    app = AppCredentials(client_id=values["client_id"], client_secret=values["client_secret"], extra={})
    engine = OAuth2Engine()
    verifier = new_verifier() if spec.oauth.pkce else None
    redirect_uri = f"{GATEWAY}/oauth/{provider}/callback"
    url = engine.authorization_url(spec.oauth, app, redirect_uri=redirect_uri, state="s1", verifier=verifier)
    back = dict(parse_qsl(urlsplit(consent(url, account=account)).query))
    return engine.exchange_code(
        spec.oauth, app, code=back["code"], redirect_uri=redirect_uri, verifier=verifier
    )
