"""Counters published as CloudWatch embedded metrics (EMF) through Powertools, behind a small port.

Functions count at their edge, from the answers and results the package hands back; code inside
the package takes a `Counter` as a parameter instead of importing Powertools. Dimensions are
low-cardinality on purpose: a catalog provider id and an outcome word, never a tenant, connection
or account id (every distinct dimension value is a new, billed metric).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from integrations.domain.errors import ReauthRequired

# The only dimension names a count may carry.
DIMENSIONS = frozenset({"provider", "outcome"})

# Metric names, one place.
WEBHOOK_DELIVERIES = "WebhookDeliveries"
TOKEN_REFRESHES = "TokenRefreshes"  # noqa: S105 (a metric name)
SCHEDULED_JOBS = "ScheduledJobs"
SYNC_JOBS = "SyncJobs"
OUTBOX_DROPPED = "OutboxMessagesDropped"
# Mail received at BCC logging addresses, by outcome (mail/inbound.py's Outcome).
INBOUND_MAIL = "InboundMail"


class Counter(Protocol):
    """The metrics port: add `value` to the count `name` under the given dimensions."""

    def count(self, name: str, value: int = 1, **dimensions: str) -> None: ...


class NoCounter:
    """Counts nothing (tests, tools)."""

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        _check(dimensions)


class EmfCounter:
    """One EMF record per count, in the namespace POWERTOOLS_METRICS_NAMESPACE names (template.yaml).

    Powertools' `single_metric` is used rather than one `Metrics` blob per invocation because one
    batch of sync jobs spans several providers, and a blob shares one set of dimensions.
    """

    def __init__(self, namespace: str | None = None) -> None:
        self._namespace = namespace

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        _check(dimensions)
        with single_metric(
            name=name, unit=MetricUnit.Count, value=value, namespace=self._namespace
        ) as metric:
            for key, dimension in sorted(dimensions.items()):
                metric.add_dimension(name=key, value=dimension)


def _check(dimensions: dict[str, str]) -> None:
    unknown = set(dimensions) - DIMENSIONS
    if unknown:
        raise ValueError(
            f"metric dimensions must be low-cardinality ({sorted(DIMENSIONS)}): {sorted(unknown)}"
        )


def webhook_outcomes(status: int, body: str) -> dict[str, int]:
    """What one webhook answer says happened to its deliveries, by outcome.

    200 answers count their deliveries (received, duplicate, unrouted); a handshake is `challenge`;
    401 is `refused` (bad or missing signature), 400 `malformed`, 429 and 5xx `deferred` (the
    provider will send it again).
    """
    if status == 401:
        return {"refused": 1}
    if status == 400:
        return {"malformed": 1}
    if status == 429 or status >= 500:
        return {"deferred": 1}
    if status >= 300:
        return {"rejected": 1}
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        return {"received": 1}
    if "challenge" in answer:
        return {"challenge": 1}
    counts = {
        "received": answer.get("received"),
        "duplicate": answer.get("duplicates"),
        "unrouted": answer.get("unrouted"),
    }
    return {outcome: n for outcome, n in counts.items() if isinstance(n, int) and n > 0}


def count_webhook(counter: Counter, provider: str, status: int, body: str) -> None:
    """Count one webhook answer's outcomes for a catalog provider."""
    for outcome, value in webhook_outcomes(status, body).items():
        counter.count(WEBHOOK_DELIVERIES, value, provider=provider, outcome=outcome)


@contextmanager
def counted(counter: Counter, name: str, *, provider: str) -> Iterator[None]:
    """Count the block's outcome: `ok`, `reauth` (ReauthRequired) or `failed` (anything else raised)."""
    try:
        yield
    except ReauthRequired:
        counter.count(name, provider=provider, outcome="reauth")
        raise
    except Exception:
        counter.count(name, provider=provider, outcome="failed")
        raise
    counter.count(name, provider=provider, outcome="ok")
