"""Properties of the whole function: any single-byte change of a signed push is refused, and nothing a
sender can put in a request produces a 5xx or a queued job without a valid signature."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import webhook_stack
from tests.support.webhook_stack import WebhookStack
from tests.support.webhooks import (
    SAMPLE_IDS,
    Push,
    calendly_push,
    ghl_push,
    google_push,
    graph_push,
    hubspot_push,
    slack_push,
)

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROVIDERS = ["slack", "hubspot", "calendly", "ghl", "gmail", "google_calendar", "outlook_calendar", "unknown"]


@pytest.fixture
def stack(aws: Any, lambda_context: Any) -> WebhookStack:
    stack = webhook_stack.start(aws, lambda_context)
    webhook_stack.known_accounts(stack, SAMPLE_IDS)
    return stack


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# Signed pushes for known accounts, with the header that carries the signature and the timestamp.
SIGNED = {
    "slack": (lambda: slack_push(now()), "X-Slack-Signature", "X-Slack-Request-Timestamp"),
    "hubspot": (lambda: hubspot_push(now()), "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"),
    "calendly": (
        lambda: calendly_push(now(), signing_key=webhook_stack.keys().calendly_subscription_key),
        "Calendly-Webhook-Signature",
        "Calendly-Webhook-Signature",
    ),
    "ghl": (lambda: ghl_push(now()), "X-GHL-Signature", None),
}


def _mutate_byte(data: bytes, index: int, value: int) -> bytes:
    i = index % len(data)
    new = value if value != data[i] else (value + 1) % 256
    return data[:i] + bytes([new]) + data[i + 1 :]


def _mutate_text(text: str, index: int, char: str) -> str:
    i = index % len(text)
    new = char if char != text[i] else ("0" if text[i] != "0" else "1")
    return text[:i] + new + text[i + 1 :]


def _header(push: Push, name: str) -> str:
    return next(v for k, v in push.headers.items() if k.lower() == name.lower())


def _with(push: Push, name: str, value: str) -> Push:
    headers = {k: v for k, v in push.headers.items() if k.lower() != name.lower()}
    return replace(push, headers={**headers, name: value})


@pytest.mark.parametrize("provider", sorted(SIGNED))
@PROPERTY
@given(index=st.integers(min_value=0, max_value=10_000), value=st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_of_the_body_is_refused(
    stack: WebhookStack, provider: str, index: int, value: int
) -> None:
    push = SIGNED[provider][0]()

    answer = stack.send(replace(push, body=_mutate_byte(push.body, index, value)))

    assert answer["statusCode"] == 401
    assert stack.queued_count() == 0


@pytest.mark.parametrize("provider", sorted(SIGNED))
@PROPERTY
@given(
    index=st.integers(min_value=0, max_value=200),
    char=st.characters(codec="ascii", exclude_characters="\r\n"),
)
def test_any_single_character_change_of_the_signature_is_refused(
    stack: WebhookStack, provider: str, index: int, char: str
) -> None:
    make, signature_header, _ = SIGNED[provider]
    push = make()
    value = _header(push, signature_header)
    if provider == "calendly":
        # Only the v1 part is the signature (the t part is the timestamp, covered below).
        prefix, v1 = value.split(",v1=")
        changed = f"{prefix},v1={_mutate_text(v1, index, char)}"
    else:
        changed = _mutate_text(value, index, char)

    answer = stack.send(_with(push, signature_header, changed))

    assert answer["statusCode"] == 401
    assert stack.queued_count() == 0


@pytest.mark.parametrize("provider", ["slack", "hubspot", "calendly"])
@PROPERTY
@given(
    index=st.integers(min_value=0, max_value=20), char=st.characters(codec="ascii", exclude_characters="\r\n")
)
def test_any_single_character_change_of_the_timestamp_is_refused(
    stack: WebhookStack, provider: str, index: int, char: str
) -> None:
    make, _, timestamp_header = SIGNED[provider]
    push = make()
    assert timestamp_header is not None
    value = _header(push, timestamp_header)
    if provider == "calendly":
        t, rest = value.split(",", 1)
        changed = f"t={_mutate_text(t[2:], index, char)},{rest}"
    else:
        changed = _mutate_text(value, index, char)

    answer = stack.send(_with(push, timestamp_header, changed))

    assert answer["statusCode"] == 401
    assert stack.queued_count() == 0


_header_names = st.sampled_from(
    [
        "X-Slack-Signature",
        "X-Slack-Request-Timestamp",
        "X-HubSpot-Signature-v3",
        "X-HubSpot-Request-Timestamp",
        "Calendly-Webhook-Signature",
        "X-GHL-Signature",
        "x-wh-signature",
        "Authorization",
        "X-Goog-Channel-ID",
        "X-Goog-Channel-Token",
        "X-Goog-Resource-ID",
        "X-Goog-Resource-State",
        "X-Goog-Message-Number",
        "X-Goog-Channel-Expiration",
        "Content-Type",
    ]
)
_header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            "Bearer ",
            "Bearer a.b.c",
            "t=1,v1=" + "0" * 64,
            "v0=" + "0" * 64,
            SAMPLE_IDS["google_channel"],
            SAMPLE_IDS["google_resource"],
            "exists",
            "sync",
            "1",
            "Mon, 01 Jan 2024 00:00:00 GMT",
        ]
    ),
)
_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.sampled_from(
        [
            b"{}",
            b"[]",
            b'{"value":[{"subscriptionId":"sample-subscription-id","clientState":"x","changeType":"updated"}]}',
            b'[{"eventId":1,"portalId":62515,"subscriptionType":"contact.creation"}]',
            b'{"type":"url_verification","challenge":"c"}',
            b'{"type":"ContactCreate","locationId":"ve9EPM428h8vShlRW1KT"}',
            b'{"message":{"data":"e30=","messageId":"1"}}',
            b"\xff\xfe\x00",
        ]
    ),
)
_queries = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.sampled_from(
        [
            "workflow=call&location=ve9EPM428h8vShlRW1KT",
            "subscription=sample-subscription",
            "validationToken=abc",
            "workflow=call",
            "subscription=",
        ]
    ),
)


@PROPERTY
@given(
    provider=st.sampled_from(PROVIDERS),
    body=_bodies,
    headers=st.dictionaries(_header_names, _header_values, max_size=6),
    query=_queries,
)
def test_random_requests_never_get_a_5xx_and_never_reach_the_queue(
    stack: WebhookStack, provider: str, body: bytes, headers: dict[str, str], query: str
) -> None:
    answer = stack.send(Push(provider, body, headers, query=query))

    assert answer["statusCode"] < 500
    assert stack.queued_count() == 0
    assert stack.claims() == []


def test_the_known_channel_and_subscription_pushes_do_queue(stack: WebhookStack) -> None:
    # The fuzzing above names known channels and subscriptions; this shows they are routable when proven.
    assert stack.send(google_push(now()))["statusCode"] == 200
    assert stack.send(graph_push())["statusCode"] == 200
    assert stack.queued_count() == 2
