"""The HTTP API's JWT authorizer, emulated: a local RSA key signs tokens, checked as API Gateway does.

API Gateway's JWT authorizer (HTTP APIs) takes the token from the identity source
(`$request.header.Authorization`, with or without a `Bearer ` prefix), accepts RSA signatures only,
checks `iss`, `aud` (or `client_id` when there is no `aud`), `exp`, `nbf` and `iat`, and answers
401 `{"message":"Unauthorized"}` with a `www-authenticate` header when anything is wrong. Verified
claims reach the function as strings in `requestContext.authorizer.jwt.claims`, arrays rendered as
one bracketed, space-separated string.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
