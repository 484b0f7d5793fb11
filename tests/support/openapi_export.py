"""Build the whole API's OpenAPI document from every HTTP function's routes (`make openapi`)."""

from __future__ import annotations

import os

from infra.local.resources import http_routes, load_template
from integrations.api.openapi import build_document
from tests.support.functions import ROOT, load_handler

TARGET = ROOT / "functions" / "connectors" / "openapi.json"
HTTP_FUNCTIONS = ("connectors", "oauth", "internal")


# Each function builds its container at import; the document needs the routes, never these values.
_PLACEHOLDER_SETTINGS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "STAGE": "openapi",
    "TABLE_NAME": "openapi",
    "STATE_TABLE_NAME": "openapi",
    "SYNC_TABLE_NAME": "openapi",
    "EVENT_BUS_NAME": "openapi",
    "KMS_KEY_ID": "openapi",
    "SYNC_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/openapi",
    "PUBLIC_API_URL": "https://api.example.com",
}


def generate() -> str:
    """The document the code describes now; public routes are those the template leaves unauthenticated."""
    for name, value in _PLACEHOLDER_SETTINGS.items():
        os.environ.setdefault(name, value)
    routes = http_routes(load_template())
    public = {(route.method.upper(), route.path) for route in routes if route.auth == "none"}
    internal = frozenset((route.method.upper(), route.path) for route in routes if route.auth == "iam")
    resolvers = [load_handler(name).resolver() for name in HTTP_FUNCTIONS]
    return build_document(resolvers, public, internal)


def main() -> None:
    TARGET.write_text(generate())
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
