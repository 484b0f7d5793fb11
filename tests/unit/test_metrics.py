"""Outcome counters: EMF records with low-cardinality dimensions, counted from answers at the edge."""

from __future__ import annotations

import json

import pytest

from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.metrics import (
    TOKEN_REFRESHES,
    WEBHOOK_DELIVERIES,
    EmfCounter,
    NoCounter,
    count_webhook,
    counted,
    webhook_outcomes,
)


class Recorder:
    def __init__(self) -> None:
        self.counts: list[tuple[str, int, dict[str, str]]] = []

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.counts.append((name, value, dimensions))


def test_a_count_is_one_emf_record_in_the_configured_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    EmfCounter(namespace="IntegrationsTest").count(
        WEBHOOK_DELIVERIES, 3, provider="slack", outcome="received"
    )
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "IntegrationsTest"
    assert directive["Metrics"] == [{"Name": "WebhookDeliveries", "Unit": "Count"}]
    assert {"provider", "outcome"} <= set(directive["Dimensions"][0])
    assert record["provider"] == "slack"
    assert record["outcome"] == "received"
    assert record["WebhookDeliveries"] == [3.0]


@pytest.mark.parametrize("counter", [EmfCounter(namespace="IntegrationsTest"), NoCounter()])
def test_tenant_ids_are_never_dimensions(counter: EmfCounter | NoCounter) -> None:
    with pytest.raises(ValueError, match="low-cardinality"):
        counter.count(WEBHOOK_DELIVERIES, provider="slack", agency_id="agency-1")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"received":2,"duplicates":1,"unrouted":0}', {"received": 2, "duplicate": 1}),
        (200, '{"received":0,"duplicates":0,"unrouted":1}', {"unrouted": 1}),
        (200, '{"challenge":"abc"}', {"challenge": 1}),
        (401, '{"message":"Unauthorized"}', {"refused": 1}),
        (400, '{"message":"Bad Request"}', {"malformed": 1}),
        (429, '{"message":"Try again later"}', {"deferred": 1}),
        (503, "", {"deferred": 1}),
        (404, '{"message":"Not Found"}', {"rejected": 1}),
        (202, "accepted", {}),
    ],
)
def test_webhook_answers_are_read_as_outcomes(status: int, body: str, expected: dict[str, int]) -> None:
    assert webhook_outcomes(status, body) == expected


def test_a_webhook_answer_counts_each_outcome_for_its_provider() -> None:
    recorder = Recorder()
    count_webhook(recorder, "hubspot", 200, '{"received":4,"duplicates":2,"unrouted":1}')
    assert recorder.counts == [
        (WEBHOOK_DELIVERIES, 4, {"provider": "hubspot", "outcome": "received"}),
        (WEBHOOK_DELIVERIES, 2, {"provider": "hubspot", "outcome": "duplicate"}),
        (WEBHOOK_DELIVERIES, 1, {"provider": "hubspot", "outcome": "unrouted"}),
    ]


def test_a_counted_block_reports_ok_reauth_or_failed_and_keeps_the_error() -> None:
    recorder = Recorder()
    with counted(recorder, TOKEN_REFRESHES, provider="ghl"):
        pass
    with pytest.raises(ReauthRequired), counted(recorder, TOKEN_REFRESHES, provider="ghl"):
        raise ReauthRequired("connect again")
    with pytest.raises(ProviderUnavailable), counted(recorder, TOKEN_REFRESHES, provider="ghl"):
        raise ProviderUnavailable("down")
    assert [dims["outcome"] for _, _, dims in recorder.counts] == ["ok", "reauth", "failed"]
    assert all(value == 1 and dims["provider"] == "ghl" for _, value, dims in recorder.counts)
