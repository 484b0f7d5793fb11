"""Per-channel secrets are stored as SHA-256 digests: the verifiers accept a digest wherever they accept
the value itself, compare in constant time, and still fail closed when nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.webhooks.errors import SignatureFailure, SignatureInvalid
from integrations.webhooks.request import Headers, WebhookRequest, parse_query
from integrations.webhooks.signatures import VerificationSecrets, secret_digest
from tests.support import signing
from tests.support.webhooks import verify_request

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make_request(
    provider: str, headers: dict[str, str], body: bytes = b"", query: str = ""
) -> WebhookRequest:
    url = f"https://api.example.test/webhooks/{provider}"
    return WebhookRequest(
        provider=provider,
        method="POST",
        raw_body=body,
        headers=Headers(headers),
        query=parse_query(query),
        path=f"/webhooks/{provider}",
        url=f"{url}?{query}" if query else url,
        received_at=NOW,
        raw_query=query,
    )


def refused(request: WebhookRequest, secrets: VerificationSecrets) -> SignatureFailure:
    with pytest.raises(SignatureInvalid) as caught:
        verify_request(request, secrets, NOW)
    return caught.value.failure


def channel_push(token: str) -> WebhookRequest:
    headers = signing.google_channel_headers(
        channel_id="chan-1",
        token=token,
        resource_id="res-1",
        message_number=3,
        expires_at=NOW + timedelta(days=2),
    )
    return make_request("google_calendar", headers)


def graph_push(client_state: str) -> WebhookRequest:
    note = signing.graph_notification(subscription_id="sub-1", client_state=client_state, resource_id="e1")
    return make_request("outlook_calendar", {}, signing.graph_notification_body(note))


def workflow_push(secret: str) -> WebhookRequest:
    return make_request(
        "ghl",
        signing.ghl_workflow_headers(secret),
        b'{"phone":"+15550100"}',
        query="workflow=call&location=loc-1",
    )


def test_secret_digest_is_the_lowercase_hex_sha256_of_the_utf8_value() -> None:
    assert secret_digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_google_channel_token_is_accepted_against_its_stored_digest() -> None:
    secrets = VerificationSecrets(channel_token_hashes=(secret_digest("tok-1"),), resource_ids=("res-1",))

    verify_request(channel_push("tok-1"), secrets, NOW)


def test_google_channel_token_is_refused_against_another_digest() -> None:
    secrets = VerificationSecrets(channel_token_hashes=(secret_digest("tok-1"),), resource_ids=("res-1",))

    assert refused(channel_push("tok-2"), secrets) is SignatureFailure.BAD_SIGNATURE


def test_google_channel_digest_itself_is_not_a_valid_token() -> None:
    # Someone who read the lookup item (the digest) still cannot forge a push.
    digest = secret_digest("tok-1")
    secrets = VerificationSecrets(channel_token_hashes=(digest,), resource_ids=("res-1",))

    assert refused(channel_push(digest), secrets) is SignatureFailure.BAD_SIGNATURE


def test_google_channel_accepts_the_previous_token_digest_during_rotation() -> None:
    secrets = VerificationSecrets(
        channel_token_hashes=(secret_digest("new"), secret_digest("old")), resource_ids=("res-1",)
    )

    verify_request(channel_push("old"), secrets, NOW)


def test_graph_client_state_is_accepted_against_its_stored_digest() -> None:
    secrets = VerificationSecrets(client_state_hashes={"sub-1": (secret_digest("state-1"),)})

    verify_request(graph_push("state-1"), secrets, NOW)


def test_graph_client_state_is_refused_against_another_digest() -> None:
    secrets = VerificationSecrets(client_state_hashes={"sub-1": (secret_digest("state-1"),)})

    assert refused(graph_push("state-2"), secrets) is SignatureFailure.BAD_SIGNATURE


def test_ghl_workflow_secret_is_accepted_against_its_stored_digest() -> None:
    secrets = VerificationSecrets(channel_token_hashes=(secret_digest("loc-secret"),))

    verify_request(workflow_push("loc-secret"), secrets, NOW)
    assert refused(workflow_push("guess"), secrets) is SignatureFailure.BAD_SIGNATURE


def test_empty_digests_configure_nothing() -> None:
    secrets = VerificationSecrets(channel_token_hashes=("",), resource_ids=("res-1",))

    assert refused(channel_push(""), secrets) in (
        SignatureFailure.BAD_SIGNATURE,
        SignatureFailure.MISSING_SIGNATURE,
    )
