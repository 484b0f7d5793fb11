"""AWS failures become the domain's own errors here, so nothing outside store/ knows botocore.

Like Powertools' idempotency persistence layer: an adapter handles the ClientError codes it expects
(a failed condition, a missing secret) itself and turns every other AWS failure into
`DependencyUnavailable`, which callers answer with "retry later".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from integrations.domain.errors import DependencyUnavailable

P = ParamSpec("P")
R = TypeVar("R")

AWS_ERRORS = (ClientError, BotoCoreError)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError (`""` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def unavailable_on_aws_error(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate an adapter method: an AWS failure it did not handle raises DependencyUnavailable."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except AWS_ERRORS as exc:
                raise DependencyUnavailable(f"{what} is unavailable; try again shortly.") from exc

        return call

    return decorate
