"""Shared fixtures: fake AWS credentials everywhere; AWS resources built from template.yaml on demand."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from infra.local.resources import LocalResources

# No test may reach real AWS: credentials are fake and the region fixed before anything imports boto3.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "IntegrationsTest",
        "POWERTOOLS_SERVICE_NAME": "integrations-test",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@functools.cache
def _template() -> dict[str, Any]:
    from infra.local.resources import load_template

    return load_template()


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalResources]:
    """Every table, queue, bus, key and secret of template.yaml in moto; the functions' environment set."""
    from moto import mock_aws

    from infra.local.resources import create_resources
    from integrations import aws as aws_clients
    from integrations.catalog.loader import clear_cache

    # moto intercepts clients made at any time; one session keeps botocore's parsed models between tests.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        aws_clients.reset_clients()
        clear_cache()
        resources = create_resources(_template(), stage="test", session=_session())
        for name, value in resources.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("INTEGRATIONS_CATALOG_OVERRIDES", raising=False)
        yield resources
        aws_clients.reset_clients()
        clear_cache()
