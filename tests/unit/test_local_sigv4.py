"""The local gateway's AWS_IAM check: SigV4 signatures by the dev credentials, as botocore makes them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.local.authorizer import (
    BAD_SIGNATURE,
    MISSING_SIGNATURE,
    UNKNOWN_KEY,
    DevCredentials,
    SignatureRefused,
    SigV4Verifier,
)

HOST = "127.0.0.1:8080"
PATH = "/internal/availability"
BODY = json.dumps({"agency_id": "agency-1"}).encode()
VERIFIER = SigV4Verifier([DevCredentials("local", "local")], region="us-east-1", account_id="123456789012")


PORTAL_JWT = "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"


def _signed(
    *,
    key: str = "local",
    secret: str = "local",
    token: str | None = "local",
    region: str = "us-east-1",
    query: str = "",
    body: bytes = BODY,
    signed_at: float | None = None,
) -> dict[str, str]:
    url = f"http://{HOST}{PATH}" + (f"?{query}" if query else "")
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    signer = SigV4Auth(Credentials(key, secret, token), "execute-api", region)
    if signed_at is None:
        signer.add_auth(request)
    else:
        # add_auth stamps the current time; sign as of another moment to test the skew check.
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
        request.context["timestamp"] = stamp
        request.headers["X-Amz-Date"] = stamp
        if token:
            request.headers["X-Amz-Security-Token"] = token
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        scope = signer.credential_scope(request)
        headers = signer.signed_headers(signer.headers_to_sign(request))
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={headers}, Signature={signature}"
        )
    return {"Host": HOST, **{k: str(v) for k, v in request.headers.items()}}


def _verify(headers: dict[str, str], *, query: str = "", body: bytes = BODY, method: str = "POST") -> Any:
    return VERIFIER.verify(method, PATH, query, headers, body, time.time())


def test_a_call_signed_with_the_dev_credentials_passes_with_its_iam_identity() -> None:
    identity = _verify(_signed())

    assert identity["accessKey"] == "local"
    assert identity["accountId"] == "123456789012"
    assert identity["userArn"].endswith(":user/local-platform")


def test_a_signed_query_string_passes_and_a_changed_one_does_not() -> None:
    headers = _signed(query="b=2&a=1")

    assert _verify(headers, query="b=2&a=1")["accessKey"] == "local"
    with pytest.raises(SignatureRefused, match="signature we calculated"):
        _verify(headers, query="b=3&a=1")


@pytest.mark.parametrize(
    ("make_headers", "kwargs", "message"),
    [
        (lambda: {"Host": HOST}, {}, MISSING_SIGNATURE),
        (
            lambda: {"Host": HOST, "Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"},
            {},
            MISSING_SIGNATURE,
        ),
        (lambda: _signed(secret="guessed"), {}, BAD_SIGNATURE),
        (lambda: _signed(key="someone-else"), {}, UNKNOWN_KEY),
        (lambda: _signed(region="eu-west-1"), {}, BAD_SIGNATURE),
        (_signed, {"body": BODY + b" "}, BAD_SIGNATURE),
        (_signed, {"method": "PUT"}, BAD_SIGNATURE),
    ],
    ids=[
        "unsigned",
        "a portal JWT",
        "a wrong secret",
        "an unknown access key",
        "another region",
        "a changed body",
        "another method",
    ],
)
def test_anything_but_a_valid_dev_signature_is_refused(
    make_headers: Callable[[], dict[str, str]], kwargs: dict[str, Any], message: str
) -> None:
    # Signed when the test runs, not at collection: a full run outlasts the allowed skew.
    headers = make_headers()
    with pytest.raises(SignatureRefused) as refused:
        _verify(headers, **kwargs)

    assert refused.value.message == message


def test_a_signature_older_than_five_minutes_has_expired() -> None:
    headers = _signed(signed_at=time.time() - 400)

    with pytest.raises(SignatureRefused, match="Signature expired"):
        _verify(headers)


def test_a_signature_within_the_skew_passes() -> None:
    assert _verify(_signed(signed_at=time.time() - 200))["accessKey"] == "local"
