"""API Gateway HTTP API (payload v2) events, as the JWT authorizer hands them to Lambda."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import urlencode


def claims(
    *,
    sub: str = "user-1",
    agency_id: str = "agency-1",
    client_id: str | None = "client-a",
    role: str = "client_user",
    permissions: list[str] | str | None = None,
) -> dict[str, Any]:
    """Verified claims. `permissions` may be a list or HTTP API's bracketed string rendering."""
    values: dict[str, Any] = {"sub": sub, "agency_id": agency_id, "role": role}
    if client_id is not None:
        values["client_id"] = client_id
    values["permissions"] = (
        permissions if permissions is not None else "[view_integrations manage_integrations]"
    )
    return values


def http_event(
    method: str,
    path: str,
    *,
    claims: dict[str, Any] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
    raw_body: bytes | None = None,
) -> dict[str, Any]:
    """A faithful v2 event: lower-case headers, rawPath/rawQueryString, cookies list, base64 for bytes."""
    all_headers = {"content-type": "application/json", "host": "api.example.test", "user-agent": "pytest"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    is_base64 = False
    text: str | None
    if raw_body is not None:
        text = base64.b64encode(raw_body).decode()
        is_base64 = True
    elif body is None:
        text = None
    else:
        text = body if isinstance(body, str) else json.dumps(body)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": all_headers["host"],
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795000000000,
        },
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if cookies:
        event["cookies"] = list(cookies)
    if text is not None:
        event["body"] = text
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return event


def body_of(answer: dict[str, Any]) -> Any:
    raw = answer.get("body") or ""
    if answer.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw) if raw else None
