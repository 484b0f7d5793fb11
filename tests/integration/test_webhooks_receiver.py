"""POST /webhooks/{provider} through the function, over moto: each provider's push is verified with its
own scheme, routed by its lookup item, queued exactly once, and refused (401, nothing stored) otherwise."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import webhook_stack
from tests.support.events import body_of
from tests.support.webhook_stack import PREVIOUS_KID, WebhookStack
from tests.support.webhooks import (
    SAMPLE_IDS,
    Push,
    calendly_push,
    ghl_push,
    gmail_push,
    google_push,
    graph_push,
    hubspot_push,
    slack_push,
)

UNKNOWN = "unknown-account-0"


@pytest.fixture
def stack(aws: Any, lambda_context: Any) -> WebhookStack:
    """The function with every provider's app secrets and one known account per provider."""
    stack = webhook_stack.start(aws, lambda_context)
    webhook_stack.known_accounts(stack, SAMPLE_IDS)
    return stack


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- signed schemes, one table


def _header(push: Push, name: str, value: str | None) -> Push:
    headers = {k: v for k, v in push.headers.items() if k.lower() != name.lower()}
    if value is not None:
        headers[name] = value
    return replace(push, headers=headers)


def _bump_header(name: str) -> Callable[[Push], Push]:
    def bump(push: Push) -> Push:
        value = next(v for k, v in push.headers.items() if k.lower() == name.lower())
        return _header(push, name, str(int(value) + 1))

    return bump


def _bump_calendly_t(push: Push) -> Push:
    value = push.headers["Calendly-Webhook-Signature"]
    t, v1 = value.split(",", 1)
    return _header(push, "Calendly-Webhook-Signature", f"t={int(t[2:]) + 1},{v1}")


def _bump_ghl_timestamp(push: Push) -> Push:
    # GHL signs the body, whose `timestamp` is the only time there is: changing it breaks the signature.
    payload = json.loads(push.body)
    payload["timestamp"] = (datetime.fromisoformat(payload["timestamp"]) + timedelta(minutes=1)).isoformat()
    return replace(push, body=json.dumps(payload, separators=(",", ":")).encode())


def _bump_jwt_expiry(push: Push) -> Push:
    token = push.headers["Authorization"].split(" ", 1)[1]
    head, claims, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["exp"] += 86400
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    return _header(push, "Authorization", f"Bearer {head}.{forged}.{signature}")


@dataclass(frozen=True)
class Scheme:
    """One provider: how to push for a known or unknown account with a chosen key, and what to tamper."""

    provider: str
    push: Callable[[datetime, str, str], Push]  # (signed at, account, key: current/previous/wrong)
    known: str
    signature_header: str
    tamper_timestamp: Callable[[Push], Push]
    # How long after signing a push is refused (the scheme's tolerance, or the JWT's lifetime).
    stale_after: timedelta
    # Pub/Sub's JWT authenticates the sender but does not sign the body (the body is only a hint).
    signs_body: bool = True


def _slack(at: datetime, account: str, key: str) -> Push:
    secrets = {"current": None, "previous": webhook_stack.keys().slack_previous, "wrong": "wrong-secret"}
    return slack_push(at, team_id=account, secret=secrets[key])


def _hubspot(at: datetime, account: str, key: str) -> Push:
    secrets = {"current": None, "previous": webhook_stack.keys().hubspot_previous, "wrong": "wrong-secret"}
    return hubspot_push(at, portal_id=account, secret=secrets[key])


def _calendly(at: datetime, account: str, key: str) -> Push:
    k = webhook_stack.keys()
    # Current: the subscription's own key (sealed in its lookup); previous: the app key being rotated out.
    secrets = {
        "current": k.calendly_subscription_key,
        "previous": k.calendly_previous_app_key,
        "wrong": "wrong-signing-key",
    }
    return calendly_push(at, subscription=account, signing_key=secrets[key])


def _ghl(at: datetime, account: str, key: str) -> Push:
    k = webhook_stack.keys()
    pems = {"current": None, "previous": k.ghl_previous.private_pem, "wrong": k.ghl_wrong.private_pem}
    return ghl_push(at, location_id=account, private_pem=pems[key])


def _gmail(at: datetime, account: str, key: str) -> Push:
    k = webhook_stack.keys()
    if key == "previous":
        return gmail_push(at, address=account, private_pem=k.google_previous.private_pem, kid=PREVIOUS_KID)
    if key == "wrong":
        return gmail_push(at, address=account, private_pem=k.google_wrong.private_pem)
    return gmail_push(at, address=account)


SCHEMES = [
    Scheme(
        "slack",
        _slack,
        SAMPLE_IDS["slack_team"],
        "X-Slack-Signature",
        _bump_header("X-Slack-Request-Timestamp"),
        timedelta(minutes=6),
    ),
    Scheme(
        "hubspot",
        _hubspot,
        SAMPLE_IDS["hubspot_portal"],
        "X-HubSpot-Signature-v3",
        _bump_header("X-HubSpot-Request-Timestamp"),
        timedelta(minutes=6),
    ),
    Scheme(
        "calendly",
        _calendly,
        SAMPLE_IDS["calendly_subscription"],
        "Calendly-Webhook-Signature",
        _bump_calendly_t,
        timedelta(minutes=4),
    ),
    Scheme(
        "ghl", _ghl, SAMPLE_IDS["ghl_location"], "X-GHL-Signature", _bump_ghl_timestamp, timedelta(minutes=6)
    ),
    Scheme(
        "gmail",
        _gmail,
        SAMPLE_IDS["gmail_address"],
        "Authorization",
        _bump_jwt_expiry,
        timedelta(hours=2),
        signs_body=False,
    ),
]
IDS = [s.provider for s in SCHEMES]


def assert_refused(stack: WebhookStack, answer: dict[str, Any]) -> None:
    assert answer["statusCode"] == 401
    assert stack.queued() == []
    assert stack.claims() == []


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_a_valid_push_is_queued_for_its_connection(stack: WebhookStack, scheme: Scheme) -> None:
    answer = stack.send(scheme.push(now(), scheme.known, "current"))

    assert answer["statusCode"] == 200
    assert body_of(answer)["received"] == 1
    [job] = stack.queued()
    assert job["connection_id"] == stack.connections[scheme.provider].id
    assert job["provider"] == scheme.provider
    assert job["kind"] == "sync"
    assert job["hint"]["source"] == "webhook"
    assert len(stack.claims()) == 1


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s.signs_body], ids=lambda s: s.provider)
def test_a_tampered_body_is_refused(stack: WebhookStack, scheme: Scheme) -> None:
    push = scheme.push(now(), scheme.known, "current")
    tampered = replace(push, body=push.body.replace(b'"', b"'", 1)[:-1] + push.body[-1:])
    flipped = replace(push, body=push.body[:-2] + bytes([push.body[-2] ^ 1]) + push.body[-1:])

    for bad in (tampered, flipped):
        assert_refused(stack, stack.send(bad))


def test_a_gmail_push_with_another_body_is_routed_only_by_what_it_names(stack: WebhookStack) -> None:
    # The Pub/Sub JWT proves the sender (Google's push service account), not the body: an altered body
    # can only name another mailbox, which is a hint the worker re-reads with that mailbox's own token.
    push = gmail_push(now(), address=UNKNOWN + "@example.com")

    answer = stack.send(push)

    assert answer["statusCode"] == 200
    assert stack.queued() == []


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_a_tampered_timestamp_is_refused(stack: WebhookStack, scheme: Scheme) -> None:
    push = scheme.tamper_timestamp(scheme.push(now(), scheme.known, "current"))

    assert_refused(stack, stack.send(push))


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_a_stale_timestamp_is_refused(stack: WebhookStack, scheme: Scheme) -> None:
    push = scheme.push(now() - scheme.stale_after, scheme.known, "current")

    assert_refused(stack, stack.send(push))


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_a_missing_signature_header_is_refused(stack: WebhookStack, scheme: Scheme) -> None:
    push = _header(scheme.push(now(), scheme.known, "current"), scheme.signature_header, None)

    assert_refused(stack, stack.send(push))


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_a_push_signed_with_another_secret_is_refused(stack: WebhookStack, scheme: Scheme) -> None:
    assert_refused(stack, stack.send(scheme.push(now(), scheme.known, "wrong")))


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_the_previous_secret_is_accepted_during_rotation(stack: WebhookStack, scheme: Scheme) -> None:
    answer = stack.send(scheme.push(now(), scheme.known, "previous"))

    assert answer["statusCode"] == 200
    assert len(stack.queued()) == 1


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_a_duplicate_delivery_is_queued_once(stack: WebhookStack, scheme: Scheme) -> None:
    push = scheme.push(now(), scheme.known, "current")

    first, second = stack.send(push), stack.send(push)

    assert (first["statusCode"], second["statusCode"]) == (200, 200)
    assert body_of(second) == {"received": 0, "duplicates": 1, "unrouted": 0}
    assert len(stack.queued()) == 1


@pytest.mark.parametrize("scheme", SCHEMES, ids=IDS)
def test_an_unknown_account_is_acknowledged_and_nothing_is_stored(
    stack: WebhookStack, scheme: Scheme
) -> None:
    account = (
        UNKNOWN + "@example.com"
        if scheme.provider == "gmail"
        else "99999"
        if scheme.provider == "hubspot"
        else UNKNOWN
    )
    # Calendly: an unknown subscription has no key of its own; the app key (rotating) still verifies it.
    key = "previous" if scheme.provider == "calendly" else "current"

    answer = stack.send(scheme.push(now(), account, key))

    assert answer["statusCode"] == 200
    assert body_of(answer)["unrouted"] == 1
    assert stack.queued() == []
    assert stack.claims() == []


# --------------------------------------------------------------------------- Google Calendar channels


def test_google_channel_push_is_queued_with_its_resource_state(stack: WebhookStack) -> None:
    answer = stack.send(google_push(now()))

    assert answer["statusCode"] == 200
    [job] = stack.queued()
    assert job["connection_id"] == stack.connections["google_calendar"].id
    assert job["hint"]["resource_state"] == "exists"
    assert job["hint"]["resource_id"] == SAMPLE_IDS["google_resource"]


def test_google_channel_push_with_the_previous_token_is_accepted(stack: WebhookStack) -> None:
    assert stack.send(google_push(now(), token="previous-" + SAMPLE_IDS["google_token"]))["statusCode"] == 200
    assert len(stack.queued()) == 1


@pytest.mark.parametrize(
    "push",
    [
        pytest.param(lambda at: google_push(at, token="guessed-token"), id="wrong-token"),
        pytest.param(lambda at: google_push(at, resource_id="another-resource"), id="wrong-resource"),
        pytest.param(lambda at: _header(google_push(at), "X-Goog-Channel-Token", None), id="missing-token"),
        pytest.param(
            lambda at: _header(google_push(at), "X-Goog-Channel-Expiration", "Mon, 01 Jan 2024 00:00:00 GMT"),
            id="expired-channel",
        ),
    ],
)
def test_google_channel_push_that_does_not_prove_the_channel_is_refused(
    stack: WebhookStack, push: Callable[[datetime], Push]
) -> None:
    assert_refused(stack, stack.send(push(now())))


def test_google_channel_duplicate_message_is_queued_once(stack: WebhookStack) -> None:
    push = google_push(now(), message_number=41)

    stack.send(push)
    stack.send(push)
    stack.send(google_push(now(), message_number=42))

    assert [job["hint"]["message_number"] for job in stack.queued()] == [41, 42]


def test_google_push_for_an_unknown_channel_is_acknowledged_and_nothing_is_stored(
    stack: WebhookStack,
) -> None:
    answer = stack.send(google_push(now(), channel_id="stopped-channel"))

    assert answer["statusCode"] == 200
    assert stack.queued() == []
    assert stack.claims() == []


# --------------------------------------------------------------------------- Microsoft Graph


def test_graph_validation_handshake_is_answered_as_plain_text(stack: WebhookStack) -> None:
    push = replace(graph_push(), body=b"", query="validationToken=Validation%3A+Testing+client+application")

    answer = stack.send(push)

    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"].startswith("text/plain")
    assert answer["body"] == "Validation: Testing client application"
    assert stack.queued() == []


def test_graph_notification_is_queued_for_its_subscription(stack: WebhookStack) -> None:
    answer = stack.send(graph_push())

    assert answer["statusCode"] == 200
    [job] = stack.queued()
    assert job["connection_id"] == stack.connections["outlook_calendar"].id
    assert job["hint"]["resource_id"] == "AAMkAGI2SAMPLE"
    assert "clientState" not in json.dumps(job)


def test_graph_previous_client_state_is_accepted(stack: WebhookStack) -> None:
    answer = stack.send(graph_push(client_state="previous-" + SAMPLE_IDS["graph_client_state"]))

    assert answer["statusCode"] == 200
    assert len(stack.queued()) == 1


@pytest.mark.parametrize("client_state", ["guessed-state", ""])
def test_graph_notification_with_a_wrong_or_missing_client_state_is_refused(
    stack: WebhookStack, client_state: str
) -> None:
    assert_refused(stack, stack.send(graph_push(client_state=client_state)))


def test_graph_duplicate_notification_is_queued_once(stack: WebhookStack) -> None:
    stack.send(graph_push())
    stack.send(graph_push())

    assert len(stack.queued()) == 1


def test_graph_notification_for_an_unknown_subscription_is_acknowledged(stack: WebhookStack) -> None:
    answer = stack.send(graph_push(subscription_id="deleted-subscription"))

    assert answer["statusCode"] == 200
    assert stack.queued() == []
    assert stack.claims() == []


def test_graph_lifecycle_event_asks_to_reauthorize_the_named_subscription(stack: WebhookStack) -> None:
    note = {
        "subscriptionId": SAMPLE_IDS["graph_subscription"],
        "clientState": SAMPLE_IDS["graph_client_state"],
        "lifecycleEvent": "reauthorizationRequired",
        "subscriptionExpirationDateTime": "2026-12-01T00:00:00Z",
    }
    push = replace(graph_push(), body=json.dumps({"value": [note]}).encode())

    stack.send(push)

    [job] = stack.queued()
    assert job["kind"] == "reauthorize_subscription"
    assert job["hint"]["subscription_id"] == SAMPLE_IDS["graph_subscription"]


def test_one_event_for_two_connections_subscribed_to_one_account_reaches_both(stack: WebhookStack) -> None:
    from integrations.providers.calendly import webhook as calendly_webhook
    from integrations.webhooks.routing import Attr, make_lookup
    from tests.support import seed

    first = stack.connections["calendly"]
    # Another client connected the same Calendly user: its own subscription delivers the same event.
    other = seed.connection(provider="calendly", client_id="client-other")
    repository, _ = seed.repositories()
    repository.put_lookups(
        other,
        [
            make_lookup(
                other,
                calendly_webhook.LOOKUP_SUBSCRIPTION,
                "other-subscription",
                **{
                    Attr.SIGNING_KEY_CIPHERTEXT: stack.sealed(
                        other, webhook_stack.keys().calendly_subscription_key
                    )
                },
            )
        ],
    )
    at = now()

    mine = stack.send(_calendly(at, SAMPLE_IDS["calendly_subscription"], "current"))
    theirs = stack.send(_calendly(at, "other-subscription", "current"))

    assert (body_of(mine)["received"], body_of(theirs)["received"]) == (1, 1)
    assert sorted(job["connection_id"] for job in stack.queued()) == sorted([first.id, other.id])
