"""Why a webhook request was refused: a bad signature (401) or a body we cannot read (400)."""

from __future__ import annotations

from enum import StrEnum

from integrations.domain.errors import IntegrationError


class SignatureFailure(StrEnum):
    """Stable reasons a request failed verification; they reach logs and metrics, never the caller."""

    # A header, token or key the scheme needs is absent (or nothing is configured to check it with).
    MISSING_SIGNATURE = "missing_signature"
    # The signature, token or JWT does not match any accepted key.
    BAD_SIGNATURE = "bad_signature"
    # The signed timestamp is outside the scheme's tolerance (either direction).
    STALE_TIMESTAMP = "stale_timestamp"
    # A signature header is present but not in the scheme's format.
    MALFORMED_SIGNATURE = "malformed_signature"


class SignatureInvalid(IntegrationError):
    """The request is not provably from the provider: answer 401 and store nothing."""

    status = 401
    code = SignatureFailure.BAD_SIGNATURE.value

    def __init__(self, code: SignatureFailure, message: str) -> None:
        super().__init__(message, code=code.value)
        self.failure = code


class MalformedPayload(IntegrationError):
    """A verified request whose body is not what the provider documents: answer 400."""

    status = 400
    code = "malformed_payload"
