"""Every sample in events/ is what its consumer accepts, and every event model has a sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.events import INBOUND, OUTBOUND, PlatformEvent
from integrations.sync.jobs import SyncJob

EVENTS = Path(__file__).resolve().parents[2] / "events"
MODELS: dict[str, type[PlatformEvent]] = {m.detail_type: m for m in (*OUTBOUND, *INBOUND)}


def bus_samples() -> list[Path]:
    return sorted(EVENTS.glob("event_*.json"))


@pytest.mark.parametrize("path", bus_samples(), ids=lambda p: p.name)
def test_bus_samples_validate_against_their_models(path: Path) -> None:
    sample = json.loads(path.read_text())

    model = MODELS[sample["detail-type"]]
    detail = model.model_validate(sample["detail"])

    assert sample["source"] in ("integrations", "platform")
    assert json.loads(detail.model_dump_json()).keys() == sample["detail"].keys()


def test_every_event_model_has_a_sample() -> None:
    sampled = {json.loads(p.read_text())["detail-type"] for p in bus_samples()}

    assert sampled == set(MODELS)


def test_sync_worker_sample_carries_a_valid_job() -> None:
    batch = json.loads((EVENTS / "sync_worker_sqs_batch.json").read_text())

    jobs = [SyncJob.model_validate_json(record["body"]) for record in batch["Records"]]

    assert [job.kind.value for job in jobs] == ["sync"]


@pytest.mark.parametrize("path", sorted(EVENTS.glob("connectors_*.json")), ids=lambda p: p.name)
def test_portal_samples_are_http_api_v2_events_with_claims(path: Path) -> None:
    event = json.loads(path.read_text())

    assert event["version"] == "2.0"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["agency_id"] == "demo-agency"
