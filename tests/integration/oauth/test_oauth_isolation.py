"""The oauth function's JWT routes, tried by the wrong people: refused, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.config import Settings
from tests.integration.oauth.conftest import Browser
from tests.support.events import claims, http_event

pytestmark = pytest.mark.usefixtures("oauth_env")

RETURN_TO = "http://127.0.0.1:3000/portal/"
OTHER_CLIENT = claims(sub="intruder-1", agency_id="agency-1", client_id="client-b")
VIEWER = claims(sub="viewer-1", agency_id="agency-1", client_id="client-a", permissions="[view_integrations]")
NO_VIEW = claims(sub="nobody-1", agency_id="agency-1", client_id="client-a", permissions="[]")
OTHER_AGENCY_ADMIN = claims(sub="admin-2", agency_id="agency-2", client_id=None, role="agency_admin")


def stored_items() -> int:
    """Everything the oauth function could have written: sessions, connections, lookups, credentials."""
    settings = Settings.from_env()
    db = aws_clients.dynamodb()
    return sum(
        db.scan(TableName=t, Select="COUNT")["Count"]
        for t in (settings.table_name, settings.state_table_name)
    )


def agency_app_secrets() -> list[str]:
    prefix = Settings.from_env().agency_app_secret_prefix
    listed = aws_clients.secretsmanager().list_secrets()["SecretList"]
    return [s["Name"] for s in listed if s["Name"].startswith(prefix)]


CLIENT_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/oauth/ghl/start", {"level": "client", "client_id": "client-a", "return_to": RETURN_TO}),
    ("POST", "/oauth/slack/start", {"level": "client", "return_to": RETURN_TO}),
    ("POST", "/integrations/bcc_email/connect", {"level": "client", "client_id": "client-a"}),
]


@pytest.mark.parametrize(("method", "path", "body"), CLIENT_ROUTES)
@pytest.mark.parametrize(
    ("intruder", "status"),
    [(OTHER_CLIENT, None), (VIEWER, 403), (NO_VIEW, 403)],
    ids=["other-client", "viewer", "no-view"],
)
def test_client_level_connects_are_refused_and_store_nothing(
    browser: Browser,
    method: str,
    path: str,
    body: dict[str, Any],
    intruder: dict[str, Any],
    status: int | None,
) -> None:
    before = stored_items()

    answer = browser.call(http_event(method, path, claims=intruder, body=body))

    if intruder is OTHER_CLIENT and "client_id" in body:
        assert answer.status == 404  # client-a is another tenant for client-b
    elif intruder is OTHER_CLIENT:
        assert answer.status in (200, 201)  # its own client: allowed, and not about client-a
        return
    else:
        assert answer.status == status
    assert answer.body["code"]
    assert stored_items() == before


@pytest.mark.parametrize(
    "intruder", [OTHER_CLIENT, VIEWER, NO_VIEW], ids=["client-user", "viewer", "no-view"]
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_agency_oauth_apps_are_for_agency_admins_only(
    browser: Browser, intruder: dict[str, Any], method: str
) -> None:
    body = {"client_id": "evil-client", "client_secret": "evil-secret"} if method == "PUT" else None

    answer = browser.call(http_event(method, "/agency/oauth-apps/slack", claims=intruder, body=body))

    assert answer.status == 403
    assert answer.body["code"] == "agency_admin_only"
    assert agency_app_secrets() == []


def test_another_agencys_app_is_not_visible(browser: Browser) -> None:
    admin = claims(sub="admin-1", agency_id="agency-1", client_id=None, role="agency_admin")
    put = browser.call(
        http_event(
            "PUT", "/agency/oauth-apps/slack", claims=admin, body={"client_id": "ours", "client_secret": "s"}
        )
    )
    assert put.status == 200

    theirs = browser.call(http_event("GET", "/agency/oauth-apps/slack", claims=OTHER_AGENCY_ADMIN))

    assert theirs.status == 404
    assert theirs.body["code"] == "agency_app_not_found"
