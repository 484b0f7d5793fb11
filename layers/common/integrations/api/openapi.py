"""One OpenAPI document for the whole HTTP API, built from every function's resolver.

Each function serves its own routes, so the document is assembled at build time (`make openapi`)
and committed; a test rebuilds it and fails when code and document drift apart. Powertools'
OpenAPIMerge joins the resolvers' schemas (two functions never declare the same route: a
conflict is an error); what is ours is added after: the error answers, the JWT security scheme.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from integrations.portal.views import ErrorBody

TITLE = "Integrations API"
VERSION = "1.0.0"
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
# Every error answer the functions send has the ErrorBody shape (integrations.api.errors).
_ERRORS = {
    "400": "Bad request",
    "403": "Not allowed; the code says why",
    "404": "Not found, including anything of another tenant",
    "409": "Conflict",
    "415": "The body is not JSON",
    "422": "Invalid input; details name each field",
    "503": "Temporarily unavailable; retry",
}
# 401 comes from API Gateway's JWT authorizer, before any function runs: its own body, without `code`.
_GATEWAY_ERROR = {
    "description": "API Gateway's own error answer (sent before any function runs): a message, no code.",
    "type": "object",
    "properties": {"message": {"type": "string", "examples": ["Unauthorized"]}},
    "required": ["message"],
}
_UNAUTHORIZED = {
    "description": "Not signed in: the API's JWT authorizer refused the token (missing, expired, "
    'badly signed, wrong issuer or audience). The body is API Gateway\'s, `{"message": "Unauthorized"}`; '
    "`www-authenticate` says why.",
    "headers": {
        "www-authenticate": {
            "description": 'Bearer error="invalid_token" with an error_description',
            "schema": {"type": "string"},
        }
    },
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}},
}
# The platform's internal routes: API Gateway's AWS_IAM authorizer checks the SigV4 signature.
_SIGV4 = {
    "type": "apiKey",
    "name": "Authorization",
    "in": "header",
    "description": "AWS Signature Version 4 (service `execute-api`) by a principal allowed to invoke the "
    "route (IAM `execute-api:Invoke`). Locally (`make dev`), signed with the dev credentials.",
}
_IAM_FORBIDDEN = {
    "description": "Not the platform: API Gateway refused a missing or bad SigV4 signature (its own body, "
    '`{"message": "Forbidden"}` or a signature message), or the function refused a call that carried no '
    "IAM identity (`internal_only`). A portal JWT is never accepted here.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}},
}
_INTERNAL_TAG = {
    "name": "internal",
    "description": "The platform's internal API (design §8b): IAM-authorized (SigV4), tenant ids explicit "
    "in the body, never reachable with a portal JWT.",
}
# Answers without a body: no Content-Type, nothing to describe.
_BODYLESS = {"204", "301", "302", "303", "304", "307", "308"}


def build_document(
    resolvers: Iterable[APIGatewayHttpResolver],
    public: set[tuple[str, str]],
    internal: frozenset[tuple[str, str]] = frozenset(),
) -> str:
    """Merge the resolvers' schemas; `public` holds (METHOD, /path/{param}) routes without the JWT,
    `internal` the platform's routes behind AWS_IAM (SigV4) instead of the JWT."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    merge = OpenAPIMerge(title=TITLE, version=VERSION, on_conflict="error")
    for resolver in resolvers:
        merge.add_schema(json.loads(resolver.get_openapi_json_schema(title=TITLE, version=VERSION)))
    merged: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    components = merged.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components["GatewayError"] = _GATEWAY_ERROR
    # Powertools' own 422 schemas are never returned by this API: errors use ErrorBody.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in merged.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in _BODYLESS & responses.keys():
                # Powertools gives every declared answer the return type's schema; these carry no body.
                responses[status].pop("content", None)
            if (method.upper(), path) in public:
                # Browser routes answer with a redirect or a minimal page (declared on the route); they
                # validate nothing, so Powertools' 422 never happens; a failing store answers 503.
                responses.pop("422", None)
                responses["503"] = {"description": _ERRORS["503"], "content": _ERROR_REF}
                operation.pop("security", None)
                continue
            responses.update(
                {
                    status: {"description": text, "content": _ERROR_REF}
                    for status, text in _ERRORS.items()
                    if status != "415" or "requestBody" in operation
                }
            )
            if (method.upper(), path) in internal:
                responses["403"] = _IAM_FORBIDDEN
                operation["security"] = [{"SigV4": []}]
                continue
            responses["401"] = _UNAUTHORIZED
            operation.setdefault("security", [{"PortalJwt": []}])
    merged["components"]["securitySchemes"] = {
        "PortalJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "SigV4": _SIGV4,
    }
    if internal:
        merged["tags"] = [*merged.get("tags", []), _INTERNAL_TAG]
    return json.dumps(merged, indent=2, sort_keys=True) + "\n"
