"""AWS resources for tests, built from template.yaml: call these inside moto's `mock_aws()`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from infra.local.resources import LocalResources, create_resources, load_template


@cache
def _parsed_template() -> dict[str, Any]:
    return load_template()


def template() -> dict[str, Any]:
    """template.yaml parsed (long-form intrinsics); a fresh copy the caller may change."""
    return copy.deepcopy(_parsed_template())


def aws_resources(
    stage: str = "test",
    *,
    secret_values: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> LocalResources:
    """Every table, key, bus, queue and secret of template.yaml, created in the active AWS mock."""
    return create_resources(template(), stage=stage, secret_values=secret_values, parameters=parameters)
