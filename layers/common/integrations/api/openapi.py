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
# Every error answer of an authenticated route has the ErrorBody shape (integrations.api.errors).
_ERRORS = {
    "400": "Bad request",
    "401": "Not signed in",
    "403": "Not allowed; the code says why",
    "404": "Not found, including anything of another tenant",
    "409": "Conflict",
    "415": "The body is not JSON",
    "422": "Invalid input; details name each field",
    "503": "Temporarily unavailable; retry",
}


def build_document(resolvers: Iterable[APIGatewayHttpResolver], public: set[tuple[str, str]]) -> str:
    """Merge the resolvers' schemas; `public` holds (METHOD, /path/{param}) routes without the JWT."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    merge = OpenAPIMerge(title=TITLE, version=VERSION, on_conflict="error")
    for resolver in resolvers:
        merge.add_schema(json.loads(resolver.get_openapi_json_schema(title=TITLE, version=VERSION)))
    merged: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    components = merged.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    # Powertools' own 422 schemas are never returned by this API: errors use ErrorBody.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in merged.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if (method.upper(), path) in public:
                # Browser routes answer with redirects or a minimal page; only 422 has the JSON shape.
                if "422" in responses:
                    responses["422"] = {"description": _ERRORS["422"], "content": _ERROR_REF}
                operation.pop("security", None)
                continue
            responses.update(
                {
                    status: {"description": text, "content": _ERROR_REF}
                    for status, text in _ERRORS.items()
                    if status != "415" or "requestBody" in operation
                }
            )
            operation.setdefault("security", [{"PortalJwt": []}])
    merged["components"]["securitySchemes"] = {
        "PortalJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    return json.dumps(merged, indent=2, sort_keys=True) + "\n"
