"""Read a JSON request body inside a route, after the route has checked the caller.

Powertools' request validation parses the body before any route code runs, so a caller without the
permission would learn about their body's problems before hearing "forbidden". Routes whose
authorization does not depend on the body read it with `read_json` once the caller is cleared.
Every way a body can be unreadable answers 4xx with a stable code, never 5xx.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from integrations.api.errors import UnsupportedMediaType, problem_message
from integrations.domain.errors import BadRequest, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)
JSON_MEDIA_TYPE = "application/json"


def read_json(event: dict[str, Any], model: type[Model]) -> Model:
    """Decode, parse and validate the event's body as `model`; 400 / 415 / 422 with a code otherwise."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", JSON_MEDIA_TYPE).split(";", 1)[0].strip().lower()
    if media_type not in (JSON_MEDIA_TYPE, "") and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json).")
    text = _text(event)
    if not text.strip():
        raise ValidationFailed(
            "The request is not valid: body is required.",
            code="malformed_body",
            details=[{"field": "body", "message": "is required"}],
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValidationFailed(
            "The request is not valid: body is not valid JSON.",
            code="malformed_body",
            details=[{"field": "body", "message": "is not valid JSON"}],
        ) from None
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        details = [_problem(error) for error in exc.errors()]
        summary = ", ".join(f"{d['field']} {d['message']}" for d in details[:5])
        raise ValidationFailed(
            f"The request is not valid: {summary}.", code="invalid_request", details=details
        ) from None


def request_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` for a route that reads its body with `read_json`."""
    return {
        "requestBody": {
            "required": True,
            "content": {JSON_MEDIA_TYPE: {"schema": _inlined(model.model_json_schema())}},
        }
    }


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `#/$defs/...` references replaced by the definitions.

    In an OpenAPI document a `$ref` resolves against the whole document, where `$defs` is not.
    """
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _text(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    raw: bytes
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("The body is not valid base64.", code="malformed_body") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in the event's text
            raise BadRequest("The body is not UTF-8 text.", code="body_not_utf8") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The body is not UTF-8 text.", code="body_not_utf8") from None


def _problem(error: Any) -> dict[str, str]:
    location = [str(part) for part in error.get("loc", ())]
    return {"field": ".".join(location) or "body", "message": problem_message(error)}
