"""Every error answer of an HTTP function has one shape: {"code", "message", "details"?}."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from integrations.domain.errors import BadRequest, IntegrationError

JSON = "application/json"
# Error answers are about one caller's request: never cached, never sniffed.
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response[str]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=dict(_HEADERS))


def register_error_handlers(app: ApiGatewayResolver, logger: Logger) -> None:
    """Map domain errors, validation errors, unknown routes and anything unexpected to the one shape."""
    _decode_bodies_safely(app)

    @app.exception_handler(IntegrationError)  # type: ignore[untyped-decorator]
    def _domain_error(exc: IntegrationError) -> Response[str]:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(exc: RequestValidationError) -> Response[str]:
        details = [_field_problem(e) for e in exc.errors()]
        body_problem = any(d["field"] == "body" for d in details)
        code = "malformed_body" if body_problem else "invalid_request"
        return error_response(422, code, "The request is not valid: " + _summary(details) + ".", details)

    @app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
    def _not_json(_: RequestUnsupportedContentType) -> Response[str]:
        return error_response(
            415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
        )

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return error_response(404, "route_not_found", "No such route.")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(exc: Exception) -> Response[str]:
        # Only infrastructure failures reach here; the caller may retry. Never echo the exception's text.
        logger.exception("unhandled error", extra={"error": type(exc).__name__})
        return error_response(
            503, "temporarily_unavailable", "Something failed on our side; please try again."
        )


def _field_problem(error: dict[str, Any]) -> dict[str, str]:
    location = [str(part) for part in error.get("loc", ())]
    # loc is ("body", "config", ...) or ("query", "level"): name the field a person sent.
    field = ".".join(location[1:]) if len(location) > 1 else (location[0] if location else "request")
    return {"field": field or "body", "message": problem_message(error)}


def problem_message(error: Any) -> str:
    """A person's words for one pydantic error."""
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "is required"
    if kind.startswith("enum") or kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected")
        return f"must be one of {expected}" if expected else "is not an allowed value"
    if kind == "json_invalid":
        return "is not valid JSON"
    if kind.endswith("_type"):
        return f"has the wrong type ({kind.removesuffix('_type')} expected)"
    if kind == "value_error":
        # Our own validators' words ("end must be after start"): they name the rule broken.
        return str(error.get("msg", "")).removeprefix("Value error, ") or "is not valid"
    if kind == "extra_forbidden":
        return "is not an accepted field"
    return "is not valid"


def _summary(details: list[dict[str, str]]) -> str:
    return ", ".join(f"{d['field']} {d['message']}" for d in details[:5])


class _BodyDecodingValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, with undecodable bodies as 4xx instead of stray ValueErrors."""

    def _get_body(self, app: Any) -> dict[str, Any]:
        try:
            return super()._get_body(app)
        except UnicodeDecodeError:
            raise BadRequest("The body is not UTF-8 text.", code="body_not_utf8") from None
        except ValueError:  # multipart without a boundary, or a body no parser can read
            raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json).") from None


class UnsupportedMediaType(IntegrationError):
    """The body is not JSON (a form, multipart, text)."""

    status = 415
    code = "unsupported_media_type"


def _decode_bodies_safely(app: ApiGatewayResolver) -> None:
    # Powertools builds each route's stack with the resolver's `_request_validation_middleware` when
    # one is set (api_gateway.Route._build_middleware_stack); ours differs only in _get_body.
    app._request_validation_middleware = _BodyDecodingValidation()  # type: ignore[no-untyped-call]
