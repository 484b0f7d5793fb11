"""Fixtures for driving functions through API Gateway v2 events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from integrations import aws as aws_clients
from tests.support.functions import load_handler
from tests.support.lambda_context import LambdaContextStub


@pytest.fixture
def lambda_context() -> LambdaContextStub:
    return LambdaContextStub()


@pytest.fixture
def connectors(aws: Any) -> ModuleType:
    return load_handler("connectors")


@pytest.fixture
def call(
    connectors: ModuleType, lambda_context: LambdaContextStub
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = connectors.handler(event, lambda_context)
        return answer

    return invoke


@pytest.fixture
def dynamodb_calls(aws: Any) -> Iterator[list[str]]:
    """Names of the DynamoDB operations made while the test runs (through the shared client)."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client = aws_clients.dynamodb()
    client.meta.events.register("before-call.dynamodb", record)
    yield calls
    client.meta.events.unregister("before-call.dynamodb", record)
