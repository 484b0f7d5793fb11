"""A route that reads its own body documents it with a schema that resolves inside an OpenAPI document."""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel

from integrations.api.body import request_body_doc


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    colour: Colour


class Outer(BaseModel):
    first: Inner
    rest: list[Inner] = []


def test_nested_models_and_enums_are_inlined_not_referenced() -> None:
    schema = request_body_doc(Outer)["requestBody"]["content"]["application/json"]["schema"]

    # A `#/$defs/...` reference would resolve against the document's root, where nothing is.
    assert "$defs" not in json.dumps(schema)
    assert schema["properties"]["first"]["properties"]["colour"]["enum"] == ["red", "blue"]
    assert schema["properties"]["rest"]["items"]["properties"]["colour"]["enum"] == ["red", "blue"]
    assert schema["required"] == ["first"]


def test_the_body_is_documented_as_required_json() -> None:
    body = request_body_doc(Inner)["requestBody"]

    assert body["required"] is True
    assert list(body["content"]) == ["application/json"]
