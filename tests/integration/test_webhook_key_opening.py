"""Calendly pushes that name a known subscription open its KMS-sealed signing key at most once per
process: unsigned, malformed, stale and wrongly signed pushes cost no KMS Decrypt each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations import aws as aws_clients
from tests.support import webhook_stack
from tests.support.events import body_of
from tests.support.webhook_stack import WebhookStack
from tests.support.webhooks import SAMPLE_IDS, Push, calendly_push

HEADER = "Calendly-Webhook-Signature"


@pytest.fixture
def stack(aws: Any, lambda_context: Any) -> WebhookStack:
    stack = webhook_stack.start(aws, lambda_context)
    webhook_stack.known_accounts(stack, SAMPLE_IDS)
    return stack


@pytest.fixture
def kms_decrypts(stack: WebhookStack) -> Iterator[list[str]]:
    """KMS Decrypt calls made while the test runs (through the shared client the function uses)."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client = aws_clients.kms()
    client.meta.events.register("before-call.kms.Decrypt", record)
    yield calls
    client.meta.events.unregister("before-call.kms.Decrypt", record)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _with_header(push: Push, value: str | None) -> Push:
    headers = {k: v for k, v in push.headers.items() if k != HEADER}
    if value is not None:
        headers[HEADER] = value
    return replace(push, headers=headers)


def _bad_pushes(count: int) -> list[Push]:
    """Pushes naming the known subscription that must all be refused, of every kind in turn."""
    at = _now()
    good = calendly_push(at, signing_key=webhook_stack.keys().calendly_subscription_key)
    t = int(at.timestamp())
    kinds = [
        _with_header(good, None),
        _with_header(good, "garbage"),
        _with_header(good, f"t={t},v1=nothex"),
        _with_header(good, f"t={t - 3600},v1={'0' * 64}"),
        calendly_push(at, signing_key="wrong-signing-key"),
        _with_header(good, f"t={t},v1={'0' * 64}"),
    ]
    return [kinds[i % len(kinds)] for i in range(count)]


def test_fifty_refused_pushes_cost_at_most_one_kms_decrypt(
    stack: WebhookStack, kms_decrypts: list[str]
) -> None:
    answers = [stack.send(push) for push in _bad_pushes(50)]

    assert [a["statusCode"] for a in answers] == [401] * 50
    assert len(kms_decrypts) <= 1
    assert stack.queued_count() == 0


def test_pushes_without_a_wellformed_fresh_signature_open_no_key(
    stack: WebhookStack, kms_decrypts: list[str]
) -> None:
    at, key = _now(), webhook_stack.keys().calendly_subscription_key
    good = calendly_push(at, signing_key=key)
    stale = calendly_push(at - timedelta(minutes=10), signing_key=key)
    for push in (_with_header(good, None), _with_header(good, "t=1"), stale):
        assert stack.send(push)["statusCode"] == 401
    assert kms_decrypts == []


def test_the_opened_key_still_verifies_signed_pushes_after_refusals(
    stack: WebhookStack, kms_decrypts: list[str]
) -> None:
    key = webhook_stack.keys().calendly_subscription_key
    for push in _bad_pushes(10):
        stack.send(push)
    first = stack.send(calendly_push(_now(), signing_key=key, event_uri="https://api.calendly.com/i/A"))
    second = stack.send(calendly_push(_now(), signing_key=key, event_uri="https://api.calendly.com/i/B"))

    assert (first["statusCode"], second["statusCode"]) == (200, 200)
    assert body_of(first)["received"] == body_of(second)["received"] == 1
    assert len(kms_decrypts) == 1
