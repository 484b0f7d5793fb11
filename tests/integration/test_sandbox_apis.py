"""Provider APIs for identity and dropdown options, faults, and signed webhook deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local.sandbox import APP_CREDENTIALS, SandboxConfig
from tests.support.sandbox import GATEWAY, Sandbox, connect, refresh, running_sandbox


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    return server


def _bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_ghl_requires_the_version_header(sb: Sandbox) -> None:
    token = connect(sb, "ghl")
    url = sb.url(f"/ghl/locations/{token['locationId']}")

    without = sb.http.get(url, headers=_bearer(token), timeout=5)
    wrong = sb.http.get(url, headers={**_bearer(token), "Version": "2021-04-15"}, timeout=5)
    right = sb.http.get(url, headers={**_bearer(token), "Version": "2021-07-28"}, timeout=5)

    assert without.status_code == wrong.status_code == 400
    assert right.json()["location"]["id"] == token["locationId"]
    assert right.json()["location"]["companyId"] == token["companyId"]


def test_ghl_location_token_sees_only_its_location(sb: Sandbox) -> None:
    token = connect(sb, "ghl")

    other = sb.http.get(
        sb.url("/ghl/locations/SomeOtherLocation1"),
        headers={**_bearer(token), "Version": "2021-07-28"},
        timeout=5,
    )

    assert other.status_code == 403


def test_ghl_pipelines_come_with_stages(sb: Sandbox) -> None:
    token = connect(sb, "ghl")

    answer = sb.http.get(
        sb.url("/ghl/opportunities/pipelines"),
        params={"locationId": token["locationId"]},
        headers={**_bearer(token), "Version": "2021-07-28"},
        timeout=5,
    )

    pipelines = answer.json()["pipelines"]
    assert len(pipelines) == 2
    assert all(p["stages"] and {"id", "name", "position"} <= p["stages"][0].keys() for p in pipelines)


def test_ghl_without_the_opportunities_scope_is_refused(sb: Sandbox) -> None:
    token = connect(sb, "ghl", untick=("opportunities.readonly", "opportunities.write"))

    answer = sb.http.get(
        sb.url("/ghl/opportunities/pipelines"),
        params={"locationId": token["locationId"]},
        headers={**_bearer(token), "Version": "2021-07-28"},
        timeout=5,
    )

    assert answer.status_code == 401
    assert "scope" in answer.json()["message"]


def test_hubspot_options_and_missing_scopes(sb: Sandbox) -> None:
    full = connect(sb, "hubspot")
    narrow = connect(sb, "hubspot", untick=("crm.objects.deals.read", "crm.objects.deals.write"))

    properties = sb.http.get(sb.url("/hubspot/crm/v3/properties/contacts"), headers=_bearer(full), timeout=5)
    pipelines = sb.http.get(sb.url("/hubspot/crm/v3/pipelines/deals"), headers=_bearer(full), timeout=5)
    refused = sb.http.get(sb.url("/hubspot/crm/v3/pipelines/deals"), headers=_bearer(narrow), timeout=5)

    assert {"firstname", "email", "phone"} <= {p["name"] for p in properties.json()["results"]}
    assert pipelines.json()["results"][0]["stages"]
    assert refused.status_code == 403
    assert refused.json()["category"] == "MISSING_SCOPES"


def test_hubspot_token_info_names_the_portal(sb: Sandbox) -> None:
    token = connect(sb, "hubspot", account="99887766")

    info = sb.http.get(sb.url(f"/hubspot/oauth/v1/access-tokens/{token['access_token']}"), timeout=5).json()

    assert info["hub_id"] == 99887766 == token["hub_id"]
    assert info["scopes"] == token["scopes"]
    assert info["hub_domain"]


def test_calendly_event_types_only_for_the_token_owner(sb: Sandbox) -> None:
    token = connect(sb, "calendly")
    url = sb.url("/calendly/event_types")

    mine = sb.http.get(url, params={"user": token["owner"]}, headers=_bearer(token), timeout=5)
    missing = sb.http.get(url, headers=_bearer(token), timeout=5)
    other = sb.http.get(
        url, params={"user": sb.url("/calendly/users/OTHER")}, headers=_bearer(token), timeout=5
    )

    assert [e["duration"] for e in mine.json()["collection"]] == [15, 30, 60]
    assert missing.status_code == 400
    assert other.status_code == 403


def test_calendly_me_matches_the_token_owner(sb: Sandbox) -> None:
    token = connect(sb, "calendly", account="sam@example.org")

    me = sb.http.get(sb.url("/calendly/users/me"), headers=_bearer(token), timeout=5).json()["resource"]

    assert me["uri"] == token["owner"]
    assert me["current_organization"] == token["organization"]
    assert me["email"] == "sam@example.org"


def test_slack_conversations_list_pages_with_cursors(sb: Sandbox) -> None:
    token = connect(sb, "slack")
    names: list[str] = []
    cursor = ""
    pages = 0
    while True:
        answer = sb.http.post(
            sb.url("/slack/api/conversations.list"),
            data={"limit": "2", "cursor": cursor},
            headers=_bearer(token),
            timeout=5,
        ).json()
        assert answer["ok"] is True
        names += [c["name"] for c in answer["channels"]]
        pages += 1
        cursor = answer["response_metadata"]["next_cursor"]
        if not cursor:
            break

    assert pages == 3
    assert names == ["general", "random", "sales", "support", "call-alerts", "marketing"]


def test_slack_private_channels_need_groups_read(sb: Sandbox) -> None:
    token = connect(sb, "slack", untick=("groups:read",))

    answer = sb.http.get(
        sb.url("/slack/api/conversations.list"),
        params={"types": "private_channel"},
        headers=_bearer(token),
        timeout=5,
    ).json()

    assert answer == {
        "ok": False,
        "error": "missing_scope",
        "needed": "groups:read",
        "provided": "chat:write,channels:read",
    }


def test_slack_post_message_needs_membership(sb: Sandbox) -> None:
    token = connect(sb, "slack")
    url = sb.url("/slack/api/chat.postMessage")

    posted = sb.http.post(
        url, json={"channel": "call-alerts", "text": "Call done"}, headers=_bearer(token), timeout=5
    )
    outside = sb.http.post(url, json={"channel": "sales", "text": "hi"}, headers=_bearer(token), timeout=5)
    kept = sb.http.get(sb.url("/_sandbox/slack/messages"), timeout=5).json()["messages"]

    assert posted.json()["ok"] is True
    assert outside.json() == {"ok": False, "error": "not_in_channel"}
    assert [m["text"] for m in kept] == ["Call done"]


def test_graph_me_and_calendars(sb: Sandbox) -> None:
    token = connect(sb, "microsoft", account="jo@contoso.example")

    me = sb.http.get(sb.url("/microsoft/graph/v1.0/me"), headers=_bearer(token), timeout=5).json()
    calendars = sb.http.get(
        sb.url("/microsoft/graph/v1.0/me/calendars"), headers=_bearer(token), timeout=5
    ).json()

    assert me["mail"] == "jo@contoso.example"
    assert [c["isDefaultCalendar"] for c in calendars["value"]].count(True) == 1


def test_graph_refuses_a_bad_token_in_graphs_shape(sb: Sandbox) -> None:
    answer = sb.http.get(
        sb.url("/microsoft/graph/v1.0/me"), headers={"Authorization": "Bearer nope"}, timeout=5
    )

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_index_page_lists_every_app_and_the_control_routes(sb: Sandbox) -> None:
    page = sb.http.get(sb.url("/"), timeout=5)

    assert page.status_code == 200
    for path in (
        "/google/o/oauth2/v2/auth",
        "/ghl/oauth/token",
        "/slack/api/oauth.v2.access",
        "/_sandbox/faults",
    ):
        assert sb.url(path) in page.text


# --- Faults ------------------------------------------------------------------------------------------


def _fault(sb: Sandbox, **body: Any) -> requests.Response:
    return sb.http.post(sb.url("/_sandbox/faults"), json=body, timeout=5)


def test_rate_limit_fault_answers_429_with_retry_after_then_recovers(sb: Sandbox) -> None:
    token = connect(sb, "google")
    assert (
        _fault(sb, app="google", kind="rate_limit", count=2, retry_after=7, endpoint="api").status_code == 201
    )
    url = sb.url("/google/userinfo")

    answers = [sb.http.get(url, headers=_bearer(token), timeout=5) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"


def test_rate_limit_on_the_token_endpoint(sb: Sandbox) -> None:
    token = connect(sb, "hubspot")
    _fault(sb, app="hubspot", kind="rate_limit", count=1, retry_after=3, endpoint="token")

    limited = refresh(sb, "hubspot", token["refresh_token"])
    after = refresh(sb, "hubspot", token["refresh_token"])

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert after.status_code == 200
    assert len(sb.requests_log(app="hubspot", grant_type="refresh_token")) == 2


def test_slack_rate_limit_is_429_with_ok_false(sb: Sandbox) -> None:
    token = connect(sb, "slack")
    _fault(sb, app="slack", kind="rate_limit", count=1, retry_after=30)

    answer = sb.http.post(sb.url("/slack/api/auth.test"), headers=_bearer(token), timeout=5)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "30"
    assert answer.json() == {"ok": False, "error": "ratelimited"}


def test_server_error_fault_answers_5xx_for_count_calls(sb: Sandbox) -> None:
    token = connect(sb, "calendly")
    _fault(sb, app="calendly", kind="server_error", count=1, status=502)

    failed = sb.http.get(sb.url("/calendly/users/me"), headers=_bearer(token), timeout=5)
    ok = sb.http.get(sb.url("/calendly/users/me"), headers=_bearer(token), timeout=5)

    assert failed.status_code == 502
    assert ok.status_code == 200


def test_revoke_grants_fault_kills_every_grant_of_the_app(sb: Sandbox) -> None:
    token = connect(sb, "ghl")

    answer = _fault(sb, app="ghl", kind="revoke_grants")

    assert answer.json() == {"revoked": 1}
    assert refresh(sb, "ghl", token["refresh_token"]).json()["error"] == "invalid_grant"
    located = sb.http.get(
        sb.url(f"/ghl/locations/{token['locationId']}"),
        headers={**_bearer(token), "Version": "2021-07-28"},
        timeout=5,
    )
    assert located.status_code == 401


def test_latency_fault_delays_the_answer(sb: Sandbox) -> None:
    token = connect(sb, "microsoft")
    _fault(sb, app="microsoft", kind="latency", latency_ms=300)

    answer = sb.http.get(sb.url("/microsoft/graph/v1.0/me"), headers=_bearer(token), timeout=5)

    assert answer.status_code == 200
    assert answer.elapsed.total_seconds() >= 0.3


def test_bad_fault_requests_are_refused(sb: Sandbox) -> None:
    assert _fault(sb, app="nope", kind="rate_limit").status_code == 400
    assert _fault(sb, app="google", kind="explode").status_code == 400
    assert _fault(sb, app="google", kind="server_error", status=200).status_code == 400


# --- Signed webhook deliveries ---------------------------------------------------------------------


class Receiver:
    """A loopback HTTP endpoint that records what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.event = threading.Event()

        def app(environ: Any, start_response: Any) -> Any:
            request = Request(environ)
            self.received.append((request.path, dict(request.headers), request.get_data()))
            self.event.set()
            return Response("", status=200)(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hooked(receiver: Receiver) -> Iterator[Sandbox]:
    urls = {p: f"{receiver.url}/webhooks/{p}" for p in ("ghl", "slack", "hubspot", "calendly", "gmail")}
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, webhook_urls=urls)) as sandbox:
        yield sandbox


def _send(sb: Sandbox, provider: str, payload: Any, tamper: bool = False) -> dict[str, Any]:
    answer = sb.http.post(
        sb.url(f"/_sandbox/webhooks/{provider}"), json={"payload": payload, "tamper": tamper}, timeout=10
    )
    body: dict[str, Any] = answer.json()
    return body


def test_ghl_webhooks_are_signed_with_the_published_ed25519_key(hooked: Sandbox, receiver: Receiver) -> None:
    result = _send(hooked, "ghl", {"type": "ContactUpdate", "locationId": "abc"})
    _send(hooked, "ghl", {"type": "ContactUpdate"}, tamper=True)

    assert result["status"] == 200
    key = serialization.load_pem_public_key(APP_CREDENTIALS["ghl"]["webhook_public_key"].encode())
    assert isinstance(key, ed25519.Ed25519PublicKey)
    (path, headers, body), (_, bad_headers, bad_body) = receiver.received
    assert path == "/webhooks/ghl"
    key.verify(base64.b64decode(headers["X-Ghl-Signature"]), body)
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(bad_headers["X-Ghl-Signature"]), bad_body)


def test_slack_webhooks_verify_with_slack_sdk(hooked: Sandbox, receiver: Receiver) -> None:
    from slack_sdk.signature import SignatureVerifier

    _send(hooked, "slack", {"type": "event_callback", "team_id": "T1"})

    _, headers, body = receiver.received[0]
    verifier = SignatureVerifier(APP_CREDENTIALS["slack"]["signing_secret"])
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])


def test_calendly_and_hubspot_signatures(hooked: Sandbox, receiver: Receiver) -> None:
    _send(hooked, "calendly", {"event": "invitee.created", "payload": {}})
    _send(hooked, "hubspot", [{"portalId": 1, "subscriptionType": "contact.creation"}])

    (_, c_headers, c_body), (h_path, h_headers, h_body) = receiver.received
    t, v1 = (part.split("=", 1)[1] for part in c_headers["Calendly-Webhook-Signature"].split(","))
    key = APP_CREDENTIALS["calendly"]["webhook_signing_key"].encode()
    assert hmac.compare_digest(v1, hmac.new(key, t.encode() + b"." + c_body, hashlib.sha256).hexdigest())
    source = (
        b"POST"
        + f"{receiver.url}{h_path}".encode()
        + h_body
        + h_headers["X-Hubspot-Request-Timestamp"].encode()
    )
    secret = APP_CREDENTIALS["hubspot"]["client_secret"].encode()
    expected = base64.b64encode(hmac.new(secret, source, hashlib.sha256).digest()).decode()
    assert h_headers["X-Hubspot-Signature-V3"] == expected


def test_gmail_push_carries_a_pubsub_oidc_token(hooked: Sandbox, receiver: Receiver) -> None:
    import jwt

    _send(hooked, "gmail", {"emailAddress": "alex@example.com", "historyId": "1234"})

    _, headers, body = receiver.received[0]
    creds = APP_CREDENTIALS["pubsub"]
    claims = jwt.decode(
        headers["Authorization"].removeprefix("Bearer "),
        creds["public_key"],
        algorithms=["RS256"],
        audience=creds["audience"],
        issuer=creds["issuer"],
    )
    assert claims["email"] == creds["service_account_email"]
    assert claims["email_verified"] is True
    data = json.loads(body)["message"]["data"]
    assert json.loads(base64.urlsafe_b64decode(data + "==")) == {
        "emailAddress": "alex@example.com",
        "historyId": "1234",
    }


def test_deliveries_never_leave_loopback(sb: Sandbox) -> None:
    result = sb.http.post(
        sb.url("/_sandbox/webhooks/ghl"),
        json={"payload": {}, "url": "http://192.0.2.10/webhooks/ghl"},
        timeout=5,
    ).json()

    assert result["status"] is None
    assert "loopback" in result["error"]
