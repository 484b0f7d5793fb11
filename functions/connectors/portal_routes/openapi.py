"""GET /openapi.json: the API's contract, generated from the routes (once per process)."""

from __future__ import annotations

import json
from functools import cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from integrations.portal.views import ErrorBody

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
_app: APIGatewayHttpResolver | None = None
TITLE = "Integrations portal API"
VERSION = "1.0.0"


def bind(app: APIGatewayHttpResolver) -> None:
    global _app  # the resolver is built once per process, after the routers
    _app = app


@cache
def document() -> str:
    """The OpenAPI document as committed in functions/connectors/openapi.json."""
    assert _app is not None
    schema = json.loads(_app.get_openapi_json_schema(title=TITLE, version=VERSION))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    # Powertools' own 422 schemas are never returned by this API: errors use ErrorBody.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "Invalid input; details name each field",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
            operation.setdefault("security", [{"PortalJwt": []}])
    schema["components"]["securitySchemes"] = {
        "PortalJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


@router.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=document())
