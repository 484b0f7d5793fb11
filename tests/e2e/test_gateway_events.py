"""The gateway's translation between HTTP and API Gateway's payload v2, checked without sockets."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from infra.local.authorizer import JwtAuthorizer, render_claim
from infra.local.gateway import CorsConfig, Gateway, HealthState
from infra.local.lambda_host import InvocationError
from infra.local.resources import Route

ISSUER = "http://127.0.0.1:3000/dev"
ORIGIN = "http://127.0.0.1:3000"
ROUTES = [
    Route("GET", "/connections/{id}", "Api", "jwt", "Get"),
    Route("POST", "/webhooks/{provider}", "Hooks", "none", "Receive"),
]


class Recorder:
    """Stands in for the functions: records each event and answers what the test set."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.answer: Any = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}

    def __call__(self, function: str, event: dict[str, Any]) -> Any:
        self.events.append((function, event))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def authorizer() -> JwtAuthorizer:
    return JwtAuthorizer(ISSUER, ["integrations-portal"])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(authorizer: JwtAuthorizer, recorder: Recorder, tmp_path: Path) -> Client:
    (tmp_path / "index.html").write_text(
        '<meta http-equiv="Content-Security-Policy" content="default-src \'self\'">', encoding="utf-8"
    )
    cors = CorsConfig(
        allow_origins=(ORIGIN,),
        allow_headers=("authorization", "content-type"),
        allow_methods=("GET", "POST"),
        allow_credentials=True,
        max_age=600,
    )
    gateway = Gateway(
        ROUTES, recorder, authorizer, cors=cors, portal_dir=tmp_path, health=HealthState(ready=True)
    )
    return Client(gateway, use_cookies=False)


@pytest.fixture
def bearer(authorizer: JwtAuthorizer) -> Callable[..., dict[str, str]]:
    def make(**claims: Any) -> dict[str, str]:
        base = {"sub": "u-1", "agency_id": "a-1", "client_id": "c-1", "role": "client_user"}
        base.update(claims)
        return {"Authorization": f"Bearer {authorizer.issue(base)}"}

    return make


def test_event_carries_route_path_query_headers_and_cookies(
    client: Client, recorder: Recorder, bearer: Callable[..., dict[str, str]]
) -> None:
    headers = {**bearer(permissions=["view_integrations", "manage_integrations"]), "X-Custom": "One"}
    headers["Cookie"] = "a=1; b=2"
    client.get("/connections/c-42?x=1&x=2&empty=", headers=headers)

    function, event = recorder.events[-1]
    assert function == "Api"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /connections/{id}"
    assert event["rawPath"] == "/connections/c-42"
    assert event["rawQueryString"] == "x=1&x=2&empty="
    assert event["queryStringParameters"] == {"x": "1,2", "empty": ""}
    assert event["pathParameters"] == {"id": "c-42"}
    assert event["headers"]["x-custom"] == "One"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    context = event["requestContext"]
    assert context["stage"] == "$default"
    assert context["routeKey"] == "GET /connections/{id}"
    assert context["http"]["method"] == "GET"
    assert context["http"]["path"] == "/connections/c-42"
    assert event["isBase64Encoded"] is False
    assert "body" not in event


def test_jwt_claims_reach_the_function_as_http_api_renders_them(
    client: Client, recorder: Recorder, bearer: Callable[..., dict[str, str]]
) -> None:
    client.get("/connections/1", headers=bearer(permissions=["view_integrations", "manage_integrations"]))

    claims = recorder.events[-1][1]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["permissions"] == "[view_integrations manage_integrations]"
    assert claims["agency_id"] == "a-1"
    assert claims["iss"] == ISSUER
    assert claims["exp"].isdigit()


def test_route_without_authorizer_gets_no_claims_and_binary_bodies_in_base64(
    client: Client, recorder: Recorder
) -> None:
    client.post(
        "/webhooks/slack", data="a=1&b=%20", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    client.post("/webhooks/ghl", json={"type": "ContactCreate"})

    form_event, json_event = recorder.events[-2][1], recorder.events[-1][1]
    assert "authorizer" not in form_event["requestContext"]
    assert form_event["isBase64Encoded"] is True
    assert base64.b64decode(form_event["body"]) == b"a=1&b=%20"
    assert json_event["isBase64Encoded"] is False
    assert json.loads(json_event["body"]) == {"type": "ContactCreate"}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"],
)
def test_missing_or_malformed_token_answers_401_like_api_gateway(
    client: Client, recorder: Recorder, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = client.get("/connections/1", headers=headers)

    assert answer.status_code == 401
    assert answer.get_data(as_text=True) == '{"message":"Unauthorized"}'
    assert "invalid_token" in answer.headers["www-authenticate"]
    assert recorder.events == []


def test_expired_foreign_and_wrong_audience_tokens_are_rejected(
    client: Client, authorizer: JwtAuthorizer, recorder: Recorder
) -> None:
    claims = {"sub": "u", "agency_id": "a", "role": "client_user"}
    expired = authorizer.issue(claims, expires_in=-60)
    foreign = JwtAuthorizer(ISSUER, ["integrations-portal"]).issue(claims)
    other_audience = JwtAuthorizer(ISSUER, ["someone-else"])
    # Same key id, other key: the signature cannot verify.
    wrong_audience = other_audience.issue(claims)

    for token in (expired, foreign, wrong_audience):
        answer = client.get("/connections/1", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
    assert (
        "expired"
        in client.get("/connections/1", headers={"Authorization": f"Bearer {expired}"}).headers[
            "www-authenticate"
        ]
    )
    assert recorder.events == []


def test_token_without_bearer_prefix_is_accepted(client: Client, authorizer: JwtAuthorizer) -> None:
    token = authorizer.issue({"sub": "u", "agency_id": "a", "role": "client_user"})

    assert client.get("/connections/1", headers={"Authorization": token}).status_code == 200


def test_response_mapping_cookies_multi_headers_and_base64(
    client: Client, recorder: Recorder, bearer: Callable[..., dict[str, str]]
) -> None:
    recorder.answer = {
        "statusCode": 302,
        "headers": {"Location": "https://example.test/next", "Cache-Control": "no-store"},
        "multiValueHeaders": {"X-Many": ["1", "2"]},
        "cookies": ["s=1; HttpOnly; Secure; SameSite=Lax", "t=2; Path=/"],
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    answer = client.get("/connections/1", headers=bearer())

    assert answer.status_code == 302
    assert answer.headers["Location"] == "https://example.test/next"
    assert answer.headers.getlist("Set-Cookie") == ["s=1; HttpOnly; Secure; SameSite=Lax", "t=2; Path=/"]
    assert answer.headers.getlist("X-Many") == ["1", "2"]
    assert answer.get_data() == b"\x00\x01"
    assert answer.headers["apigw-requestid"]


def test_bare_json_answer_becomes_200_application_json(
    client: Client, recorder: Recorder, bearer: Callable[..., dict[str, str]]
) -> None:
    recorder.answer = {"hello": "world"}
    answer = client.get("/connections/1", headers=bearer())

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.get_json() == {"hello": "world"}


@pytest.mark.parametrize(
    "failure",
    [InvocationError("Api", "RuntimeError", "boom"), {"statusCode": "abc"}, {"statusCode": 200, "body": 5}],
)
def test_failing_function_or_bad_answer_is_a_500_with_api_gateways_body(
    client: Client, recorder: Recorder, bearer: Callable[..., dict[str, str]], failure: Any
) -> None:
    recorder.answer = failure
    answer = client.get("/connections/1", headers=bearer())

    assert answer.status_code == 500
    assert answer.get_data(as_text=True) == '{"message":"Internal Server Error"}'


def test_unknown_route_answers_404_and_a_wrong_method_405(client: Client, recorder: Recorder) -> None:
    for method, path in (("GET", "/nothing"), ("GET", "/connections/1/x")):
        answer = client.open(path, method=method)
        assert answer.status_code == 404
        assert answer.get_data(as_text=True) == '{"message":"Not Found"}'
    wrong_method = client.open("/webhooks/ghl", method="DELETE")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["Allow"]
    assert recorder.events == []


def test_cors_preflight_is_answered_for_allowed_origins_only(client: Client, recorder: Recorder) -> None:
    allowed = client.options(
        "/connections/1",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    denied = client.options(
        "/connections/1", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"}
    )

    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert allowed.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert recorder.events == []


def test_portal_files_carry_the_pages_csp_and_safety_headers(client: Client) -> None:
    page = client.get("/portal/")

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/portal/../conftest.py").status_code == 404
    assert client.get("/portal").status_code == 308


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (["a", "b"], "[a b]"),
        ("x", "x"),
        (1700000000, "1700000000"),
        (True, "true"),
        ({"k": "v"}, "map[k:v]"),
    ],
)
def test_claims_are_rendered_as_strings(value: Any, rendered: str) -> None:
    assert render_claim(value) == rendered
