"""Provider-side push subscriptions in the sandbox: Calendly webhook subscriptions, Microsoft Graph
subscriptions with the validationToken handshake, Gmail users.watch / users.stop, and the pushes each
sends, checked with the product's own verifiers."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local.sandbox import APP_CREDENTIALS, SandboxConfig, google_jwks
from infra.local.sandbox.keys import PUBSUB_TOPIC
from integrations.providers.calendly.webhook import CalendlyVerifier
from integrations.providers.gmail.webhook import PubSubPushVerifier
from integrations.providers.outlook_calendar.webhook import GraphVerifier, graph_validation_token
from integrations.webhooks.errors import SignatureInvalid
from integrations.webhooks.request import Headers, WebhookRequest
from integrations.webhooks.signatures import VerificationSecrets, secret_digest
from tests.support.sandbox import (
    GATEWAY,
    Sandbox,
    callback_params,
    connect,
    decide,
    exchange,
    running_sandbox,
    start_authorization,
)

ACCOUNT = "alex@example.com"
GMAIL_SCOPES = ["openid", "https://www.googleapis.com/auth/gmail.modify"]


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def webhook_request(self, provider: str) -> WebhookRequest:
        """As the product's receiver sees it."""
        return WebhookRequest(
            provider=provider,
            method=self.method,
            raw_body=self.body,
            headers=Headers(self.headers),
            query=self.query,
            path=self.path,
            url=f"http://127.0.0.1{self.path}",
            received_at=datetime.now(UTC),
        )


class Receiver:
    """A tiny local endpoint; `answer` decides each reply (default: the product's Graph handshake echo)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.answer: Callable[[Received], Response] = self._echo

        def app(environ: Any, start_response: Any) -> Any:
            request = Request(environ)
            got = Received(
                request.method,
                request.path,
                dict(request.args.items()),
                dict(request.headers.items()),
                request.get_data(),
            )
            with self._lock:
                self.received.append(got)
            return self.answer(got)(environ, start_response)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _echo(got: Received) -> Response:
        token = graph_validation_token(got.webhook_request("outlook_calendar"))
        if token is not None:
            return Response(token, status=200, mimetype="text/plain")
        return Response("", status=202)

    def url(self, path: str) -> str:
        return self.base + path

    def wait_for(self, count: int, where: Callable[[Received], bool], timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [r for r in self.received if where(r)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="module")
def server(receiver: Receiver) -> Iterator[Sandbox]:
    config = SandboxConfig(
        gateway_url=GATEWAY,
        push_timeout=2.0,
        graph_validation_timeout=0.5,
        webhook_urls={"gmail": receiver.url("/webhooks/gmail")},
    )
    with running_sandbox(config) as sandbox:
        yield sandbox


@pytest.fixture
def sb(server: Sandbox, receiver: Receiver) -> Sandbox:
    server.reset()
    with receiver._lock:
        receiver.received.clear()
    receiver.answer = receiver._echo
    return server


def _auth(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def _wait_pushes(sb: Sandbox, label: str) -> list[dict[str, Any]]:
    answer = sb.http.get(sb.url("/_sandbox/pushes"), params={"label": label, "wait": "1"}, timeout=10)
    deliveries: list[dict[str, Any]] = answer.json()["deliveries"]
    return deliveries


# --- Calendly --------------------------------------------------------------------------------------


@pytest.fixture
def calendly(sb: Sandbox) -> tuple[dict[str, Any], dict[str, Any]]:
    token = connect(sb, "calendly")
    me = sb.http.get(sb.url("/calendly/users/me"), headers=_auth(token), timeout=5).json()["resource"]
    return token, me


def _calendly_subscribe(
    sb: Sandbox, token: dict[str, Any], me: dict[str, Any], url: str, **overrides: Any
) -> Any:
    body = {
        "url": url,
        "events": ["invitee.created", "invitee.canceled"],
        "organization": me["current_organization"],
        "user": me["uri"],
        "scope": "user",
        "signing_key": "per-subscription-key",
        **overrides,
    }
    return sb.http.post(sb.url("/calendly/webhook_subscriptions"), json=body, headers=_auth(token), timeout=5)


def test_calendly_subscription_is_created_listed_and_deleted(
    sb: Sandbox, receiver: Receiver, calendly: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    token, me = calendly
    url = receiver.url("/webhooks/calendly?subscription=r1")

    created = _calendly_subscribe(sb, token, me, url)

    assert created.status_code == 201, created.text
    resource = created.json()["resource"]
    assert resource["callback_url"] == url
    assert resource["state"] == "active"
    assert resource["scope"] == "user"
    assert resource["user"] == me["uri"]
    assert resource["organization"] == me["current_organization"]
    assert resource["events"] == ["invitee.created", "invitee.canceled"]
    assert "signing_key" not in resource  # never echoed back
    listing = sb.http.get(
        sb.url("/calendly/webhook_subscriptions"),
        params={"organization": me["current_organization"], "scope": "user", "user": me["uri"]},
        headers=_auth(token),
        timeout=5,
    )
    assert listing.status_code == 200
    assert [s["uri"] for s in listing.json()["collection"]] == [resource["uri"]]

    deleted = sb.http.delete(resource["uri"], headers=_auth(token), timeout=5)

    assert deleted.status_code == 204
    again = sb.http.delete(resource["uri"], headers=_auth(token), timeout=5)
    assert again.status_code == 404
    assert again.json()["title"] == "Resource Not Found"
    listing = sb.http.get(
        sb.url("/calendly/webhook_subscriptions"),
        params={"organization": me["current_organization"], "scope": "user", "user": me["uri"]},
        headers=_auth(token),
        timeout=5,
    )
    assert listing.json()["collection"] == []


def test_calendly_refuses_a_url_already_subscribed_at_that_scope(
    sb: Sandbox, receiver: Receiver, calendly: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    token, me = calendly
    url = receiver.url("/webhooks/calendly?subscription=dup")
    assert _calendly_subscribe(sb, token, me, url).status_code == 201

    conflict = _calendly_subscribe(sb, token, me, url)

    assert conflict.status_code == 409
    assert conflict.json()["title"] == "Already Exists"


def test_calendly_validates_like_calendly(
    sb: Sandbox, receiver: Receiver, calendly: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    token, me = calendly
    url = receiver.url("/webhooks/calendly")

    no_user = _calendly_subscribe(sb, token, me, url, user=None)
    other_org = _calendly_subscribe(
        sb, token, me, url, organization="https://api.calendly.com/organizations/X"
    )
    unlisted = sb.http.get(
        sb.url("/calendly/webhook_subscriptions"),
        params={"organization": me["current_organization"], "scope": "user"},
        headers=_auth(token),
        timeout=5,
    )
    anonymous = sb.http.post(sb.url("/calendly/webhook_subscriptions"), json={}, timeout=5)

    assert no_user.status_code == 400
    assert no_user.json()["details"] == [{"parameter": "user", "message": "is missing"}]
    assert other_org.status_code == 403
    assert unlisted.status_code == 400
    assert unlisted.json()["details"][0]["parameter"] == "user"
    assert anonymous.status_code == 401
    assert anonymous.json()["title"] == "Unauthenticated"


def test_calendly_needs_the_webhooks_write_scope(sb: Sandbox, receiver: Receiver) -> None:
    token = connect(sb, "calendly", untick=("webhooks:write",))
    me = sb.http.get(sb.url("/calendly/users/me"), headers=_auth(token), timeout=5).json()["resource"]

    refused = _calendly_subscribe(sb, token, me, receiver.url("/webhooks/calendly"))

    assert refused.status_code == 403
    assert refused.json()["title"] == "Permission Denied"


def test_a_booking_sends_a_signed_push_to_each_active_subscription(
    sb: Sandbox, receiver: Receiver, calendly: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    token, me = calendly
    live = _calendly_subscribe(sb, token, me, receiver.url("/webhooks/calendly?subscription=live"))
    gone = _calendly_subscribe(
        sb, token, me, receiver.url("/webhooks/calendly?subscription=gone"), signing_key="other"
    )
    assert sb.http.delete(gone.json()["resource"]["uri"], headers=_auth(token), timeout=5).status_code == 204

    booked = sb.http.post(
        sb.url("/_sandbox/calendly/invitees"),
        json={
            "account": ACCOUNT,
            "event_type": "Discovery Call",
            "name": "Sam Lee",
            "email": "sam@example.com",
        },
        timeout=5,
    )

    assert booked.status_code == 201
    assert booked.json()["deliveries"] == 1
    [push] = receiver.wait_for(1, lambda r: r.path == "/webhooks/calendly")
    assert push.query == {"subscription": "live"}
    payload = json.loads(push.body)
    assert payload["event"] == "invitee.created"
    assert payload["created_by"] == me["uri"]
    assert payload["payload"]["email"] == "sam@example.com"
    assert payload["payload"]["scheduled_event"]["event_type"].startswith(sb.url("/calendly/event_types/"))
    request = push.webhook_request("calendly")
    now = datetime.now(UTC)
    CalendlyVerifier().verify(request, VerificationSecrets(hmac_keys=("per-subscription-key",)), now)
    with pytest.raises(SignatureInvalid):
        CalendlyVerifier().verify(request, VerificationSecrets(hmac_keys=("other",)), now)
    assert live.json()["resource"]["state"] == "active"
    assert [d["status"] for d in _wait_pushes(sb, "calendly:invitee.created")] == [202]


# --- Microsoft Graph -------------------------------------------------------------------------------


@pytest.fixture
def graph_token(sb: Sandbox) -> dict[str, Any]:
    return connect(sb, "microsoft")


def _graph(sb: Sandbox, token: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    return sb.http.request(
        method, sb.url("/microsoft/graph/v1.0" + path), json=body, headers=_auth(token), timeout=5
    )


def _in(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def _graph_subscribe(sb: Sandbox, token: dict[str, Any], url: str, **overrides: Any) -> Any:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": url,
        "resource": "me/events",
        "expirationDateTime": _in(10_000),
        "clientState": "s3cret-state",
        **overrides,
    }
    return _graph(sb, token, "POST", "/subscriptions", body)


def test_graph_subscription_runs_the_handshake_then_is_renewed_and_deleted(
    sb: Sandbox, receiver: Receiver, graph_token: dict[str, Any]
) -> None:
    url = receiver.url("/webhooks/outlook_calendar")

    created = _graph_subscribe(sb, graph_token, url, lifecycleNotificationUrl=url)

    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["resource"] == "me/events"
    assert subscription["changeType"] == "created,updated,deleted"
    assert subscription["clientState"] == "s3cret-state"
    assert subscription["notificationUrl"] == url
    assert subscription["expirationDateTime"].endswith("Z")
    # The handshake reached the endpoint before the answer, with the token URL-encoded in the query.
    [handshake] = [r for r in receiver.received if "validationToken" in r.query]
    assert handshake.method == "POST"
    assert handshake.headers["Content-Type"].startswith("text/plain")
    assert handshake.query["validationToken"].startswith("Validation: ")
    listed = _graph(sb, graph_token, "GET", "/subscriptions").json()["value"]
    assert [s["id"] for s in listed] == [subscription["id"]]

    renewed = _graph(
        sb, graph_token, "PATCH", f"/subscriptions/{subscription['id']}", {"expirationDateTime": _in(9000)}
    )

    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] < subscription["expirationDateTime"]
    assert _graph(sb, graph_token, "DELETE", f"/subscriptions/{subscription['id']}").status_code == 204
    missing = _graph(sb, graph_token, "DELETE", f"/subscriptions/{subscription['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"


def test_graph_lifecycle_notifications_go_to_the_lifecycle_url_and_removal_is_real(
    sb: Sandbox, receiver: Receiver, graph_token: dict[str, Any]
) -> None:
    url = receiver.url("/webhooks/outlook_calendar")
    lifecycle_url = receiver.url("/webhooks/outlook_calendar/lifecycle")
    kept = _graph_subscribe(sb, graph_token, url, lifecycleNotificationUrl=lifecycle_url).json()
    removed = _graph_subscribe(sb, graph_token, url, lifecycleNotificationUrl=lifecycle_url).json()
    receiver.received.clear()

    # Graph removes one subscription and says so on its lifecycle URL
    answer = sb.http.post(
        sb.url("/_sandbox/outlook/lifecycle"),
        json={"event": "subscriptionRemoved", "subscription_id": removed["id"]},
        timeout=5,
    )

    assert answer.json() == {"sent": 1}
    [delivery] = _wait_pushes(sb, "microsoft:subscriptionRemoved")
    assert delivery["status"] == 202
    [note] = [r for r in receiver.received if r.path.endswith("/lifecycle")]
    [item] = json.loads(note.body)["value"]
    assert item["subscriptionId"] == removed["id"] and item["lifecycleEvent"] == "subscriptionRemoved"
    assert item["clientState"] == "s3cret-state"
    # It is gone at Graph: not listed, and neither renewed nor deleted
    listed = _graph(sb, graph_token, "GET", "/subscriptions").json()["value"]
    assert [s["id"] for s in listed] == [kept["id"]]
    renew = {"expirationDateTime": _in(9000)}
    assert _graph(sb, graph_token, "PATCH", f"/subscriptions/{removed['id']}", renew).status_code == 404
    assert _graph(sb, graph_token, "DELETE", f"/subscriptions/{removed['id']}").status_code == 404
    # An unknown event is refused
    wrong = sb.http.post(sb.url("/_sandbox/outlook/lifecycle"), json={"event": "other"}, timeout=5)
    assert wrong.status_code == 400


def _slow_echo(got: Received) -> Response:
    """The right answer, after the sandbox's (shortened) handshake timeout."""
    time.sleep(1.5)
    return Response(got.query.get("validationToken", ""), status=200, mimetype="text/plain")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda got: Response("nope", status=200, mimetype="text/plain"), id="wrong-token"),
        pytest.param(
            lambda got: Response(
                got.query.get("validationToken", ""), status=200, mimetype="application/json"
            ),
            id="not-text-plain",
        ),
        pytest.param(lambda got: Response("", status=500), id="server-error"),
        pytest.param(
            _slow_echo,
            id="too-slow",
        ),
    ],
)
def test_graph_subscription_fails_when_the_handshake_fails(
    sb: Sandbox, receiver: Receiver, graph_token: dict[str, Any], answer: Callable[[Received], Response]
) -> None:
    receiver.answer = answer

    refused = _graph_subscribe(sb, graph_token, receiver.url("/webhooks/outlook_calendar"))

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ValidationError"
    assert _graph(sb, graph_token, "GET", "/subscriptions").json()["value"] == []


def test_graph_refuses_unreachable_or_out_of_bounds_subscriptions(
    sb: Sandbox, receiver: Receiver, graph_token: dict[str, Any]
) -> None:
    url = receiver.url("/webhooks/outlook_calendar")

    remote = _graph_subscribe(sb, graph_token, "https://example.com/webhooks/outlook_calendar")
    too_long = _graph_subscribe(sb, graph_token, url, expirationDateTime=_in(10_081))
    past = _graph_subscribe(sb, graph_token, url, expirationDateTime=_in(-1))
    big_state = _graph_subscribe(sb, graph_token, url, clientState="x" * 129)
    unknown_calendar = _graph_subscribe(sb, graph_token, url, resource="me/calendars/nope/events")
    short = _graph_subscribe(sb, graph_token, url, expirationDateTime=_in(5))

    assert remote.status_code == 400
    assert remote.json()["error"]["code"] == "ValidationError"
    assert too_long.status_code == 400
    assert past.status_code == 400
    assert big_state.status_code == 400
    assert unknown_calendar.status_code == 404
    # Less than 45 minutes ahead is raised to 45 minutes.
    assert short.status_code == 201
    expires = datetime.fromisoformat(short.json()["expirationDateTime"])
    assert expires - datetime.now(UTC) > timedelta(minutes=44)
    # No request left the machine: the remote URL was refused before any handshake.
    handshakes = sb.http.get(sb.url("/_sandbox/microsoft/subscriptions"), timeout=5).json()["handshakes"]
    assert {urlsplit(h["url"]).hostname for h in handshakes if h["ok"]} == {"127.0.0.1"}


def test_graph_subscription_of_another_app_or_user_is_not_found(
    sb: Sandbox, receiver: Receiver, graph_token: dict[str, Any]
) -> None:
    created = _graph_subscribe(sb, graph_token, receiver.url("/webhooks/outlook_calendar"))
    other = connect(sb, "microsoft", account="kim@example.com")

    refused = _graph(sb, other, "DELETE", f"/subscriptions/{created.json()['id']}")

    assert refused.status_code == 404


def test_an_outlook_event_change_notifies_matching_subscriptions(
    sb: Sandbox, receiver: Receiver, graph_token: dict[str, Any]
) -> None:
    url = receiver.url("/webhooks/outlook_calendar")
    calendars = _graph(sb, graph_token, "GET", "/me/calendars").json()["value"]
    work = next(c["id"] for c in calendars if c["name"] == "Work")
    default = _graph_subscribe(sb, graph_token, url).json()
    on_work = _graph_subscribe(
        sb, graph_token, url, resource=f"me/calendars/{work}/events", changeType="created", clientState="w"
    ).json()

    made = sb.http.post(
        sb.url("/_sandbox/microsoft/events"),
        json={
            "account": ACCOUNT,
            "subject": "Demo",
            "start": "2030-01-02T15:00:00",
            "end": "2030-01-02T16:00:00",
        },
        timeout=5,
    )
    assert made.status_code == 201
    event = made.json()
    changed = sb.http.post(
        sb.url("/_sandbox/microsoft/events"),
        json={"account": ACCOUNT, "id": event["id"], "subject": "Moved"},
        timeout=5,
    )
    assert changed.status_code == 200

    pushes = receiver.wait_for(2, lambda r: r.method == "POST" and "validationToken" not in r.query)
    assert len(pushes) == 2
    items = [json.loads(p.body)["value"][0] for p in pushes]
    assert [i["changeType"] for i in items] == ["created", "updated"]
    assert {i["subscriptionId"] for i in items} == {default["id"]}  # the Work subscription saw nothing
    assert items[0]["resourceData"]["id"] == event["id"]
    assert items[0]["clientState"] == "s3cret-state"
    assert items[0]["tenantId"]
    listed = _graph(sb, graph_token, "GET", "/me/events").json()["value"]
    assert [(e["id"], e["subject"]) for e in listed] == [(event["id"], "Moved")]
    secrets = VerificationSecrets(
        client_state_hashes={default["id"]: (secret_digest("s3cret-state"),), on_work["id"]: ("0" * 64,)}
    )
    for push in pushes:
        GraphVerifier().verify(push.webhook_request("outlook_calendar"), secrets, datetime.now(UTC))
    with pytest.raises(SignatureInvalid):
        GraphVerifier().verify(
            pushes[0].webhook_request("outlook_calendar"),
            VerificationSecrets(client_states={default["id"]: ("guess",)}),
            datetime.now(UTC),
        )


def test_graph_events_api_creates_in_a_calendar_and_needs_write_scope(
    sb: Sandbox, graph_token: dict[str, Any]
) -> None:
    calendars = _graph(sb, graph_token, "GET", "/me/calendars").json()["value"]
    work = next(c["id"] for c in calendars if c["name"] == "Work")
    body = {
        "subject": "Call",
        "start": {"dateTime": "2030-01-02T15:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-02T15:30:00", "timeZone": "UTC"},
    }

    created = _graph(sb, graph_token, "POST", f"/me/calendars/{work}/events", body)
    read_only = connect(sb, "microsoft", untick=("Calendars.ReadWrite",))
    refused = _graph(sb, read_only, "POST", "/me/events", body)

    assert created.status_code == 201
    assert [
        e["id"] for e in _graph(sb, graph_token, "GET", f"/me/calendars/{work}/events").json()["value"]
    ] == [created.json()["id"]]
    assert _graph(sb, graph_token, "GET", "/me/events").json()["value"] == []
    assert refused.status_code == 403
    assert _graph(sb, graph_token, "DELETE", f"/me/events/{created.json()['id']}").status_code == 204


# --- Gmail -----------------------------------------------------------------------------------------


@pytest.fixture
def gmail_token(sb: Sandbox) -> dict[str, Any]:
    auth = start_authorization(sb, "google", scopes=GMAIL_SCOPES)
    code = callback_params(decide(sb, auth))["code"]
    answer = exchange(sb, "google", code, verifier=auth.verifier)
    assert answer.status_code == 200, answer.text
    token: dict[str, Any] = answer.json()
    return token


def _pubsub_secrets() -> VerificationSecrets:
    creds = APP_CREDENTIALS["pubsub"]
    return VerificationSecrets(
        jwks=google_jwks(),
        audiences=(creds["audience"],),
        service_account_emails=(creds["service_account_email"],),
    )


def _gmail_note(push: Received) -> dict[str, Any]:
    data = json.loads(push.body)["message"]["data"]
    note: dict[str, Any] = json.loads(base64.b64decode(data))
    return note


def test_gmail_watch_pushes_for_new_mail_until_stopped(
    sb: Sandbox, receiver: Receiver, gmail_token: dict[str, Any]
) -> None:
    watch_url = sb.url("/google/gmail/v1/users/me/watch")
    body = {"topicName": PUBSUB_TOPIC, "labelIds": ["INBOX"], "labelFilterBehavior": "include"}

    watched = sb.http.post(watch_url, json=body, headers=_auth(gmail_token), timeout=5)

    assert watched.status_code == 200, watched.text
    answer = watched.json()
    assert set(answer) == {"historyId", "expiration"}
    assert isinstance(answer["expiration"], str)
    days = (int(answer["expiration"]) / 1000 - time.time()) / 86400
    assert 6.99 < days <= 7.0
    # A successful watch publishes one notification at once.
    [first] = receiver.wait_for(1, lambda r: r.path == "/webhooks/gmail")
    assert _gmail_note(first) == {"emailAddress": ACCOUNT, "historyId": int(answer["historyId"])}

    arrived = sb.http.post(sb.url("/_sandbox/gmail/messages"), json={"account": ACCOUNT}, timeout=5).json()

    assert arrived["pushed"] is True
    assert int(arrived["historyId"]) > int(answer["historyId"])
    pushes = receiver.wait_for(2, lambda r: r.path == "/webhooks/gmail")
    assert _gmail_note(pushes[1])["historyId"] == int(arrived["historyId"])
    PubSubPushVerifier().verify(pushes[1].webhook_request("gmail"), _pubsub_secrets(), datetime.now(UTC))
    profile = sb.http.get(sb.url("/google/gmail/v1/users/me/profile"), headers=_auth(gmail_token), timeout=5)
    assert profile.json()["historyId"] == arrived["historyId"]

    stopped = sb.http.post(sb.url("/google/gmail/v1/users/me/stop"), headers=_auth(gmail_token), timeout=5)

    assert stopped.status_code == 204
    quiet = sb.http.post(sb.url("/_sandbox/gmail/messages"), json={"account": ACCOUNT}, timeout=5).json()
    assert quiet["pushed"] is False
    assert len(_wait_pushes(sb, "gmail:push")) == 2


def test_gmail_watch_refuses_a_topic_of_another_project_and_missing_scopes(
    sb: Sandbox, gmail_token: dict[str, Any]
) -> None:
    watch_url = sb.url("/google/gmail/v1/users/me/watch")
    # Another account: with include_granted_scopes, the same account's new token would carry Gmail too.
    calendar_only = connect(sb, "google", account="kim@example.com")

    other_project = sb.http.post(
        watch_url,
        json={"topicName": "projects/someone-else/topics/gmail"},
        headers=_auth(gmail_token),
        timeout=5,
    )
    no_scope = sb.http.post(
        watch_url, json={"topicName": PUBSUB_TOPIC}, headers=_auth(calendar_only), timeout=5
    )
    someone_else = sb.http.post(
        sb.url("/google/gmail/v1/users/kim@example.com/watch"),
        json={"topicName": PUBSUB_TOPIC},
        headers=_auth(gmail_token),
        timeout=5,
    )

    assert other_project.status_code == 400
    assert other_project.json()["error"]["errors"][0]["reason"] == "invalidArgument"
    assert no_scope.status_code == 403
    assert no_scope.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
    assert someone_else.status_code == 403


def test_gmail_label_filter_decides_which_messages_push(
    sb: Sandbox, receiver: Receiver, gmail_token: dict[str, Any]
) -> None:
    body = {"topicName": PUBSUB_TOPIC, "labelIds": ["INBOX"], "labelFilterBehavior": "include"}
    sb.http.post(sb.url("/google/gmail/v1/users/me/watch"), json=body, headers=_auth(gmail_token), timeout=5)

    spam = sb.http.post(
        sb.url("/_sandbox/gmail/messages"), json={"account": ACCOUNT, "labelIds": ["SPAM"]}, timeout=5
    ).json()
    inbox = sb.http.post(sb.url("/_sandbox/gmail/messages"), json={"account": ACCOUNT}, timeout=5).json()

    assert spam["pushed"] is False
    assert inbox["pushed"] is True
