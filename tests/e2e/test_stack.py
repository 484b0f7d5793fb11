"""The running local stack over HTTP: health, tokens, every template route, the portal page."""

from __future__ import annotations

import re

import pytest

from infra.local.resources import http_routes, load_template
from infra.local.stack import LocalStack
from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e


def test_health_is_ok_and_lists_functions_urls_and_seed(api: Api) -> None:
    answer = api.call("GET", "/dev/health")

    assert answer.status_code == 200
    health = answer.json()
    assert health["status"] == "ok"
    assert set(health["functions"]) == {route.function for route in http_routes(load_template())} | {
        "SyncSchedulerFunction",
        "SyncWorkerFunction",
        "InboundMailFunction",
    }
    assert health["functions"]["ConnectorsFunction"] == "loaded"
    assert health["functions"]["InboundMailFunction"] == "loaded"
    assert health["urls"]["smtp"].startswith("smtp://127.0.0.1:")
    seed = {agency["agency_id"]: agency for agency in health["seed"]}
    assert seed["demo-agency"] == {
        "agency_id": "demo-agency",
        "tier": "growth",
        "clients": ["client-a", "client-b"],
    }
    assert seed["starter-agency"]["tier"] == "starter"
    assert seed["starter-agency"]["clients"] == ["client-s"]


def test_every_server_listens_on_loopback_only(stack: LocalStack) -> None:
    assert stack.urls is not None
    for url in (stack.urls.gateway, stack.urls.sandbox, stack.urls.aws):
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
    assert stack.urls.smtp is not None and stack.urls.smtp.startswith("smtp://127.0.0.1:")


def test_token_endpoint_signs_the_given_claims_and_rejects_bad_ones(api: Api) -> None:
    good = api.call("GET", "/me", identity="client-manager")
    missing_role = api.call(
        "POST", "/dev/token", json={"sub": "x", "agency_id": "demo-agency", "permissions": []}
    )
    bad_permissions = api.call(
        "POST", "/dev/token", json={"sub": "x", "agency_id": "a", "role": "client_user", "permissions": "all"}
    )

    assert good.status_code == 200
    assert good.json()["can_manage"] is True
    assert missing_role.status_code == 400
    assert "role" in missing_role.json()["message"]
    assert bad_permissions.status_code == 400


def test_seeded_tiers_are_what_the_api_reports(api: Api) -> None:
    demo = api.call("GET", "/agency/settings", identity="agency-admin")
    starter = api.call("GET", "/agency/settings", identity="starter-admin")

    assert demo.status_code == 200
    assert demo.json()["tier"] == "growth"
    assert demo.json()["enabled_providers"] is None
    assert starter.json()["tier"] == "starter"


def test_routes_need_a_valid_token(api: Api, stack: LocalStack) -> None:
    expired = stack.token(
        sub="u", agency_id="demo-agency", role="agency_admin", permissions=[], expires_in=-120
    )

    without = api.call("GET", "/me")
    with_expired = api.call("GET", "/me", headers={"Authorization": f"Bearer {expired}"})

    assert without.status_code == 401
    assert without.text == '{"message":"Unauthorized"}'
    assert with_expired.status_code == 401


def test_every_template_route_reaches_its_function(api: Api, stack: LocalStack) -> None:
    """No route of template.yaml is missing: JWT routes answer the authorizer's 401, others reach code."""
    assert stack.lambdas is not None
    token = api.token("agency-admin")
    for route in http_routes(load_template()):
        path = re.sub(r"\{[^}]+\}", "does-not-exist", route.path)
        hosted = stack.lambdas.functions[route.function]
        before = hosted.invocations

        anonymous = api.call(route.method, path)
        signed_in = api.call(route.method, path, headers={"Authorization": f"Bearer {token}"})

        if route.auth == "jwt":
            assert anonymous.status_code == 401, (route, anonymous.text)
            assert hosted.invocations == before + 1, route
        elif route.auth == "iam":
            # AWS_IAM routes take neither: a portal JWT is not a SigV4 signature.
            assert (anonymous.status_code, signed_in.status_code) == (403, 403), route
            assert hosted.invocations == before, route
        else:
            assert hosted.invocations == before + 2, route
        assert signed_in.headers.get("apigw-requestid"), route


def test_unknown_paths_answer_not_found(api: Api) -> None:
    answer = api.call("GET", "/no/such/route")

    assert answer.status_code == 404
    assert answer.text == '{"message":"Not Found"}'


def test_portal_page_and_assets_are_served_with_their_types_and_headers(api: Api) -> None:
    page = api.call("GET", "/portal/")
    script = api.call("GET", "/portal/app.js")
    style = api.call("GET", "/portal/styles.css")
    logo = api.call("GET", "/portal/logos/google_calendar.svg")

    assert page.status_code == 200
    assert 'data-testid="signin-role"' in page.text
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "require-trusted-types-for 'script'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert style.headers["Content-Type"].startswith("text/css")
    assert logo.headers["Content-Type"] == "image/svg+xml"
    assert api.call("GET", "/portal/nope.js").status_code == 404
    assert api.call("GET", "/").headers["Location"] == "/portal/"


def test_cors_allows_the_portal_origin(api: Api) -> None:
    preflight = api.call(
        "OPTIONS",
        "/connections/x",
        headers={
            "Origin": api.base,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )

    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == api.base
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
