"""The HTTP API's authorizers, emulated: the JWT authorizer (a local RSA key signs tokens, checked as
API Gateway does) and AWS_IAM (SigV4 signatures by the dev credentials, recomputed and compared).

API Gateway's JWT authorizer (HTTP APIs) takes the token from the identity source
(`$request.header.Authorization`, with or without a `Bearer ` prefix), accepts RSA signatures only,
checks `iss`, `aud` (or `client_id` when there is no `aud`), `exp`, `nbf` and `iat`, and answers
401 `{"message":"Unauthorized"}` with a `www-authenticate` header when anything is wrong. Verified
claims reach the function as strings in `requestContext.authorizer.jwt.claims`, arrays rendered as
one bracketed, space-separated string.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

# What API Gateway sends back for every authorizer failure, byte for byte.
UNAUTHORIZED_BODY = '{"message":"Unauthorized"}'
KEY_ID = "local-portal-1"
DEFAULT_TTL_SECONDS = 12 * 3600
# Clock skew API Gateway tolerates is not documented; a few seconds keeps tests deterministic.
LEEWAY_SECONDS = 5


class Unauthorized(Exception):
    """The request carries no acceptable token; `description` goes into `www-authenticate`."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    @property
    def www_authenticate(self) -> str:
        return f'Bearer scope="" error="invalid_token" error_description="{self.description}"'


def render_claim(value: Any) -> str:
    """One claim as HTTP API hands it to Lambda: strings as is, arrays as `[a b]`, numbers without `.0`."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(render_claim(item) for item in value) + "]"
    if isinstance(value, dict):
        # Go's rendering of a map, which is what the service's runtime produces for object claims.
        return "map[" + " ".join(f"{key}:{render_claim(item)}" for key, item in sorted(value.items())) + "]"
    if value is None:
        return ""
    return json.dumps(value)


def render_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Every claim rendered as the Lambda event carries it."""
    return {name: render_claim(value) for name, value in claims.items()}


@dataclass(frozen=True, slots=True)
class Authorization:
    """What a successful check hands to the route: the claims as the event carries them."""

    claims: dict[str, str]
    scopes: list[str] | None = None


class JwtAuthorizer:
    """Issues and verifies the local portal's tokens with a key generated for this run."""

    def __init__(self, issuer: str, audience: Sequence[str]) -> None:
        if not audience:
            raise ValueError("a JWT authorizer needs at least one audience")
        self.issuer = issuer
        self.audience = tuple(audience)
        # A fresh key each run: tokens from an earlier run are (correctly) rejected.
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document (what API Gateway would fetch from the issuer)."""
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        public.update({"kid": KEY_ID, "alg": "RS256", "use": "sig"})
        return {"keys": [public]}

    def issue(self, claims: Mapping[str, Any], *, expires_in: int = DEFAULT_TTL_SECONDS) -> str:
        """A signed token carrying `claims` plus iss, aud, iat, exp and jti."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience[0],
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
        }
        payload.update({k: v for k, v in claims.items() if v is not None})
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": KEY_ID})

    def authorize(self, authorization_header: str | None) -> Authorization:
        """Check the identity source's value; raise Unauthorized as API Gateway would answer 401."""
        if not authorization_header or not authorization_header.strip():
            raise Unauthorized("missing token")
        token = authorization_header.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        _check_header(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256", "RS384", "RS512"],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the token has an invalid issuer") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is invalid") from None
        if not self._audience_ok(claims):
            raise Unauthorized("the token does not have a valid audience")
        return Authorization(claims=render_claims(claims))

    def _audience_ok(self, claims: Mapping[str, Any]) -> bool:
        # API Gateway accepts a token whose aud matches, or, without aud, whose client_id matches.
        audience = claims.get("aud")
        if audience is None:
            return claims.get("client_id") in self.audience
        values = [audience] if isinstance(audience, str) else list(audience)
        return any(value in self.audience for value in values)


def _check_header(token: str) -> None:
    """The JOSE header checks API Gateway makes before it verifies the signature."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Unauthorized("token is malformed") from None
    if header.get("alg") not in ("RS256", "RS384", "RS512"):
        raise Unauthorized("signing method is not supported")
    if header.get("kid") != KEY_ID:
        raise Unauthorized("signing key is not found")


# --------------------------------------------------------------------------- AWS_IAM (SigV4)

# API Gateway's own 403 answers on AWS_IAM routes (the message differs by what is wrong).
MISSING_SIGNATURE = "Forbidden"
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_KEY = "The security token included in the request is invalid."
# SigV4 refuses a request signed more than five minutes before or after it arrives.
SIGNATURE_SKEW_SECONDS = 5 * 60
_SIGV4 = "AWS4-HMAC-SHA256"


class SignatureRefused(Exception):
    """The call is not signed by a known principal; `message` is API Gateway's 403 body message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class DevCredentials:
    """The credentials a local caller signs with (the platform, in `make dev`)."""

    access_key: str
    secret_key: str
    session_token: str | None = None
    user_arn: str = "arn:aws:iam::123456789012:user/local-platform"


class SigV4Verifier:
    """Verifies AWS Signature Version 4 as API Gateway's AWS_IAM authorizer does, for the dev credentials.

    The signature is recomputed with botocore's own signer over what arrived (method, path, query, the
    signed headers, the body's SHA-256, the signer's timestamp and scope) and compared in constant time.
    On success the route gets the caller as `requestContext.authorizer.iam`.
    """

    def __init__(self, credentials: Sequence[DevCredentials], region: str, account_id: str) -> None:
        self._by_key = {c.access_key: c for c in credentials}
        self.region = region
        self.account_id = account_id

    def verify(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> dict[str, Any]:
        """The IAM identity for the event, or SignatureRefused."""
        lower = {k.lower(): v for k, v in headers.items()}
        header = lower.get("authorization", "")
        if not header.startswith(_SIGV4 + " "):
            raise SignatureRefused(MISSING_SIGNATURE)
        fields = _sigv4_fields(header[len(_SIGV4) + 1 :])
        try:
            access_key, day, region, service, terminal = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            given = fields["Signature"]
        except (KeyError, ValueError):
            raise SignatureRefused(MISSING_SIGNATURE) from None
        known = self._by_key.get(access_key)
        if known is None:
            raise SignatureRefused(UNKNOWN_KEY)
        stamp = lower.get("x-amz-date", "")
        scope = (region, service, terminal)
        if scope != (self.region, "execute-api", "aws4_request") or not stamp.startswith(day):
            raise SignatureRefused(BAD_SIGNATURE)
        _check_time(stamp, now)
        if "host" not in signed or any(name not in lower for name in signed):
            raise SignatureRefused(BAD_SIGNATURE)
        if known.session_token is not None and not hmac.compare_digest(
            lower.get("x-amz-security-token", "").encode(), known.session_token.encode()
        ):
            raise SignatureRefused(UNKNOWN_KEY)
        declared_hash = lower.get("x-amz-content-sha256")
        if declared_hash is not None and declared_hash != hashlib.sha256(body).hexdigest():
            raise SignatureRefused(BAD_SIGNATURE)
        expected = _signature(known, self.region, method, raw_path, raw_query, lower, signed, body, stamp)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise SignatureRefused(BAD_SIGNATURE)
        return {
            "accessKey": access_key,
            "accountId": self.account_id,
            "callerId": known.user_arn.rsplit("/", 1)[-1],
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": known.user_arn,
            "userId": known.user_arn.rsplit("/", 1)[-1],
        }


def _sigv4_fields(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            fields[name] = value
    return fields


def _check_time(stamp: str, now: float) -> None:
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise SignatureRefused(BAD_SIGNATURE) from None
    if abs(now - signed_at) > SIGNATURE_SKEW_SECONDS:
        raise SignatureRefused(f"Signature expired: {stamp} is now earlier or later than the allowed skew.")


def _signature(
    credentials: DevCredentials,
    region: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed: Sequence[str],
    body: bytes,
    stamp: str,
) -> str:
    """What the caller's signature must be: botocore's signer over the request as it arrived."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"http://{headers['host']}{raw_path}" + (f"?{raw_query}" if raw_query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(
        Credentials(credentials.access_key, credentials.secret_key, credentials.session_token),
        "execute-api",
        region,
    )
    canonical = signer.canonical_request(request)
    # Only the headers the caller signed: botocore would otherwise add none, but never drop one.
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(signed)):
        raise SignatureRefused(BAD_SIGNATURE)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
