"""Errors with a stable machine-readable code, mapped to HTTP in one place per function."""

from __future__ import annotations

from typing import Any


class IntegrationError(Exception):
    """Base error: `code` is stable and documented, `message` is for a person."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(IntegrationError):
    status = 400
    code = "bad_request"


class Unauthenticated(IntegrationError):
    status = 401
    code = "unauthenticated"


class Forbidden(IntegrationError):
    status = 403
    code = "forbidden"


class NotFound(IntegrationError):
    status = 404
    code = "not_found"


class Conflict(IntegrationError):
    status = 409
    code = "conflict"


class VersionConflict(Conflict):
    """Someone else changed the connection since it was read; re-read and try again."""

    code = "version_conflict"


class ValidationFailed(IntegrationError):
    status = 422
    code = "validation_failed"


class ProviderUnavailable(IntegrationError):
    """The provider failed or timed out; callers turn this into a status and a retry."""

    status = 502
    code = "provider_unavailable"


class ReauthRequired(IntegrationError):
    """The connection's grant is gone; its owner must connect it again."""

    status = 409
    code = "reauth_required"


class DependencyUnavailable(IntegrationError):
    """A store or key source we depend on failed: nothing the caller did; answer "retry later"."""

    status = 503
    code = "dependency_unavailable"
