"""PKCE (RFC 7636): a fresh verifier per authorization and its S256 challenge. Never `plain`."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_verifier() -> str:
    """64 random octets, base64url: 86 characters from the unreserved set (RFC 7636 §4.1 allows 43-128)."""
    return secrets.token_urlsafe(64)


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
