"""Build the whole API's OpenAPI document from every HTTP function's routes (`make openapi`)."""

from __future__ import annotations

import os

from infra.local.resources import http_routes, load_template
from integrations.api.openapi import build_document
from tests.support.functions import ROOT, load_handler

TARGET = ROOT / "functions" / "connectors" / "openapi.json"
HTTP_FUNCTIONS = ("connectors", "oauth")
# Placeholders for the settings the functions validate at import; no call is ever made with them.
DESCRIBE_ONLY_SETTINGS = {
    "STAGE": "docs",
    "TABLE_NAME": "integrations-docs-main",
    "STATE_TABLE_NAME": "integrations-docs-state",
    "EVENT_BUS_NAME": "integrations-docs",
    "SYNC_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/integrations-docs-sync",
    "KMS_KEY_ID": "alias/integrations-docs",
    "PUBLIC_API_URL": "https://api.example.com",
}


def generate() -> str:
    """The document the code describes now; public routes are those the template leaves unauthenticated."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The handlers build their container at import: describing them needs settings, never AWS.
    for name, value in DESCRIBE_ONLY_SETTINGS.items():
        os.environ.setdefault(name, value)
    public = {
        (route.method.upper(), route.path) for route in http_routes(load_template()) if route.auth == "none"
    }
    resolvers = [load_handler(name).app for name in HTTP_FUNCTIONS]
    return build_document(resolvers, public)


def main() -> None:
    TARGET.write_text(generate())
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
