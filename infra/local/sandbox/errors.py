"""Each provider's own error shapes for API calls: bad tokens, missing scopes, throttling, outages."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from infra.local.sandbox.core import json_response
from infra.local.sandbox.state import TokenProblem


def _google(status: int, reason: str, message: str, domain: str = "global", **extra: str) -> dict[str, Any]:
    google_status = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ALREADY_EXISTS",
        410: "FAILED_PRECONDITION",
        412: "FAILED_PRECONDITION",
        429: "RESOURCE_EXHAUSTED",
    }.get(status, "UNAVAILABLE" if status >= 500 else "UNKNOWN")
    detail = {"domain": domain, "reason": reason, "message": message, **extra}
    return {"error": {"code": status, "message": message, "errors": [detail], "status": google_status}}


def google_error(status: int, reason: str, message: str, domain: str = "global", **extra: str) -> Response:
    """A Google API error body (`{"error": {"code", "message", "errors": [...], "status"}}`)."""
    return json_response(_google(status, reason, message, domain, **extra), status=status)


def _graph(code: str, message: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = secrets.token_hex(16)
    inner = {"date": now, "request-id": request_id, "client-request-id": request_id}
    return {"error": {"code": code, "message": message, "innerError": inner}}


def _correlation() -> str:
    return f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"


def hubspot_error(status: int, category: str, message: str, **extra: Any) -> Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": _correlation(),
        "category": category,
        **extra,
    }
    return json_response(body, status=status)


def calendly_error(
    status: int, title: str, message: str, details: list[dict[str, str]] | None = None
) -> Response:
    body: dict[str, Any] = {"title": title, "message": message}
    if details:
        body["details"] = details
    return json_response(body, status=status)


def ghl_error(status: int, message: str) -> Response:
    names = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        422: "Unprocessable Entity",
    }
    return json_response(
        {"statusCode": status, "message": message, "error": names.get(status, "Error")}, status
    )


def slack_error(error: str, **extra: str) -> Response:
    """Slack answers HTTP 200 with `ok: false` for almost every failure."""
    return json_response({"ok": False, "error": error, **extra})


def graph_error(status: int, code: str, message: str) -> Response:
    response = json_response(_graph(code, message), status=status)
    return response


_GOOGLE_AUTH_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential."
)


def token_refused(app: str, problem: TokenProblem) -> Response:
    """What each provider answers when an API call's access token is missing, bad, expired or revoked."""
    if app == "google":
        response = google_error(401, "authError", _GOOGLE_AUTH_MESSAGE, location="Authorization")
        response.headers["WWW-Authenticate"] = (
            'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        )
        return response
    if app == "ghl":
        return ghl_error(401, "Invalid JWT" if problem is not TokenProblem.MISSING else "Unauthorized")
    if app == "hubspot":
        if problem is TokenProblem.EXPIRED:
            return hubspot_error(
                401,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired. Refresh the token and try again.",
            )
        return hubspot_error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )
    if app == "calendly":
        message = {
            TokenProblem.MISSING: "The access token is missing",
            TokenProblem.INVALID: "The access token is invalid",
            TokenProblem.EXPIRED: "The access token expired",
            TokenProblem.REVOKED: "The access token is revoked",
        }[problem]
        return calendly_error(401, "Unauthenticated", message)
    if app == "slack":
        return slack_error(
            {
                TokenProblem.MISSING: "not_authed",
                TokenProblem.INVALID: "invalid_auth",
                TokenProblem.EXPIRED: "token_expired",
                TokenProblem.REVOKED: "token_revoked",
            }[problem]
        )
    if app == "microsoft":
        message = {
            TokenProblem.MISSING: "Access token is empty.",
            TokenProblem.INVALID: "IDX14100: JWT is not well formed, there are no dots (.).",
            TokenProblem.EXPIRED: "Lifetime validation failed, the token is expired.",
            TokenProblem.REVOKED: "Continuous access evaluation resulted in challenge with result: "
            "InteractionRequired",
        }[problem]
        response = graph_error(401, "InvalidAuthenticationToken", message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
        return response
    raise ValueError(f"unknown app {app}")


def scope_missing(app: str, needed: list[str], granted: tuple[str, ...]) -> Response:
    """The provider's answer when the token lacks every scope that would allow the call."""
    if app == "google":
        return google_error(
            403, "insufficientPermissions", "Request had insufficient authentication scopes.", "global"
        )
    if app == "ghl":
        return ghl_error(401, "The token is not authorized for this scope.")
    if app == "hubspot":
        return hubspot_error(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": needed},
                }
            ],
        )
    if app == "calendly":
        return calendly_error(
            403, "Permission Denied", f"This token does not have the required scope: {needed[0]}"
        )
    if app == "slack":
        return slack_error("missing_scope", needed=",".join(needed), provided=",".join(granted))
    if app == "microsoft":
        return graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    raise ValueError(f"unknown app {app}")


def rate_limited(app: str, retry_after: int, endpoint: str, status: int = 429) -> Response:
    """HTTP 429 (or Google's 403 `rateLimitExceeded`) with Retry-After, in the provider's body shape."""
    headers = {"Retry-After": str(retry_after)}
    if endpoint == "token" and app != "slack":
        status = 429
        body: dict[str, Any] = {"error": "rate_limit_exceeded", "error_description": "Too many requests."}
    elif app == "google":
        # Calendar answers a per-user or per-calendar rate limit with 403 or 429, same reason.
        body = _google(status, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
    elif app == "ghl":
        body = {"statusCode": 429, "message": "Too many requests", "error": "Too Many Requests"}
        headers.update({"X-RateLimit-Max": "100", "X-RateLimit-Remaining": "0"})
    elif app == "hubspot":
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": _correlation(),
            "policyName": "TEN_SECONDLY_ROLLING",
        }
    elif app == "calendly":
        body = {
            "title": "Too Many Requests",
            "message": "You have exceeded the rate limit. Please try again later.",
        }
        headers.update(
            {"X-RateLimit-Limit": "500", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(retry_after)}
        )
    elif app == "slack":
        body = {"ok": False, "error": "ratelimited"}
    elif status == 503:
        # Graph answers some throttling with 503 and Retry-After (calendar-email.md §4.7).
        body = _graph("ServiceNotAvailable", "The service is temporarily unavailable. Try again later.")
    else:
        body = _graph("TooManyRequests", "Too many requests.")
    kept = app == "google" or (app == "microsoft" and status == 503)
    return json_response(body, status=status if kept else 429, headers=headers)


def server_failure(app: str, status: int, endpoint: str) -> Response:
    """A 5xx in the provider's body shape (outage injected by a `server_error` fault)."""
    if endpoint == "token" and app != "slack":
        body: dict[str, Any] = {"error": "temporarily_unavailable", "error_description": "Try again later."}
    elif app == "google":
        body = _google(status, "backendError", "Backend Error")
    elif app == "ghl":
        body = {"statusCode": status, "message": "Internal server error", "error": "Internal Server Error"}
    elif app == "hubspot":
        body = {
            "status": "error",
            "message": "Internal error",
            "correlationId": _correlation(),
            "category": "INTERNAL_ERROR",
        }
    elif app == "calendly":
        body = {"title": "Internal Server Error", "message": "An unexpected error occurred."}
    elif app == "slack":
        body = {"ok": False, "error": "internal_error"}
    else:
        body = _graph("ServiceNotAvailable", "The service is temporarily unavailable.")
    return json_response(body, status=status)
