"""CRM sync end to end for GoHighLevel and HubSpot: platform events and jobs through the real queue
(moto), the sandbox's CRM APIs (with their real rate limits), the CRM store and the connection in
DynamoDB (moto). Each test compares what the CRM holds (the sandbox's truth) with what was asked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.local.sandbox import SandboxConfig
from infra.local.sandbox.crm_store import parse_instant
from integrations import aws as aws_clients
from integrations.catalog.loader import clear_cache
from integrations.domain.connection import PortalStatus
from integrations.events import (
    CallCompleted,
    ContactChanged,
    ContactDeleted,
    ContactFields,
    ContactUpserted,
    PlatformEvent,
    SyncProgress,
)
from integrations.portal.views import SyncView
from integrations.sync.jobs import SyncJob
from integrations.sync.settle import Outcome
from tests.support import seed
from tests.support.sandbox import GATEWAY, Sandbox, connect, running_sandbox
from tests.support.sync_world import WorkerWorld

AGENCY, CLIENT = "agency-1", "client-a"
GHL_LOCATION = "Sbx7LocQ2mK9fT4wR1pZ"
HUB = "24681357"
SAM = ContactFields(
    first_name="Sam",
    last_name="Rivera",
    email="sam@example.com",
    phone="+14155550123",
    company="Rivera Roofing",
)
# A HubSpot mapping that is not the default: the company goes to a custom property.
HUBSPOT_MAPPING = {
    "first_name": "firstname",
    "last_name": "lastname",
    "email": "email",
    "phone": "phone",
    "company": "ai_call_outcome",
    "call_summary": "ai_call_summary",
}


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    with running_sandbox(SandboxConfig(gateway_url=GATEWAY, push_timeout=0.2)) as sandbox:
        yield sandbox


class World(WorkerWorld):
    """A GoHighLevel or HubSpot connection of the client, over the sandbox's CRM."""

    def __init__(self, provider: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.provider = provider
        super().__init__(sb, tmp_path, monkeypatch)
        app = "ghl" if provider == "ghl" else "hubspot"
        tokens = connect(sb, app)
        self.account = GHL_LOCATION if provider == "ghl" else HUB
        self.connection_id = seed.connection(
            provider=provider,
            agency_id=AGENCY,
            client_id=CLIENT,
            account_id=self.account,
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
        ).id
        # Jobs queued again, with their delay (a deferred job is invisible on the queue until then).
        self.sent: list[tuple[SyncJob, int]] = []
        queue = self.container.jobs
        send = queue.send

        def recorded(job: SyncJob, delay_seconds: int = 0) -> None:
            self.sent.append((job, delay_seconds))
            send(job, delay_seconds)

        queue.send = recorded  # type: ignore[method-assign]
        self.pipelines = self._pipelines(str(tokens["access_token"]))

    def changed(self) -> list[ContactChanged]:
        """The Contact Changed events on the bus."""
        return list(self.bus.of(ContactChanged.detail_type))

    def drain(
        self,
        timeout: float = 60.0,
        remaining_ms: Callable[[], int] | None = None,
        *,
        fail_on_error: bool = True,
    ) -> int:
        """Run every job on the queue until it is empty; a job that raises fails the test at once."""
        return super().drain(timeout, remaining_ms, fail_on_error=fail_on_error)

    # --- the CRM's side ---

    def _pipelines(self, token: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        if self.provider == "ghl":
            answer = self.sb.http.get(
                self.sb.url("/ghl/opportunities/pipelines"),
                params={"locationId": GHL_LOCATION},
                headers={**headers, "Version": "2021-07-28"},
                timeout=5,
            )
            return list(answer.json()["pipelines"])
        return list(
            self.sb.http.get(self.sb.url("/hubspot/crm/v3/pipelines/deals"), headers=headers).json()[
                "results"
            ]
        )

    def configure(self, stage_index: int = 1, by_outcome: dict[str, int] | None = None) -> str:
        """Choose the second pipeline and one of its stages (and, given `by_outcome`, a stage index
        per call outcome); returns the single stage's id."""
        pipeline = self.pipelines[1]
        stage = str(pipeline["stages"][stage_index]["id"])
        if self.provider == "ghl":
            config: dict[str, Any] = {"pipeline_id": pipeline["id"], "stage_id": stage}
        else:
            config = {
                "property_mapping": HUBSPOT_MAPPING,
                "deal_pipeline_id": pipeline["id"],
                "deal_stage_id": stage,
            }
        if by_outcome is not None:
            field = "stage_by_outcome" if self.provider == "ghl" else "deal_stage_by_outcome"
            config[field] = {k: self.stage(i) for k, i in by_outcome.items()}
        self.set_config(config)
        return stage

    def stage(self, index: int) -> str:
        """The id of a stage of the configured (second) pipeline."""
        return str(self.pipelines[1]["stages"][index]["id"])

    def set_config(self, config: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        self.container.sync_state.apply(self.connection_id, lambda c: c.configured(config, now))

    def truth(self) -> list[dict[str, Any]]:
        """The CRM's contacts as the person sees them, with notes/calls and opportunities/deals."""
        if self.provider == "ghl":
            answer = self.sb.http.get(
                self.sb.url("/_sandbox/ghl/contacts"), params={"location_id": GHL_LOCATION}
            )
        else:
            answer = self.sb.http.get(self.sb.url("/_sandbox/hubspot/contacts"), params={"hub_id": HUB})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["contacts"])

    def person_creates(self, first: str, email: str) -> str:
        if self.provider == "ghl":
            body: dict[str, Any] = {"location_id": GHL_LOCATION, "firstName": first, "email": email}
            answer = self.sb.http.post(self.sb.url("/_sandbox/ghl/contacts"), json=body)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["contact"]["id"])
        body = {"hub_id": HUB, "properties": {"firstname": first, "email": email}}
        answer = self.sb.http.post(self.sb.url("/_sandbox/hubspot/contacts"), json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def person_edits_first_name(self, external_id: str, first: str) -> None:
        if self.provider == "ghl":
            answer = self.sb.http.patch(
                self.sb.url(f"/_sandbox/ghl/contacts/{external_id}"), json={"firstName": first}
            )
        else:
            answer = self.sb.http.patch(
                self.sb.url(f"/_sandbox/hubspot/contacts/{external_id}"),
                json={"properties": {"firstname": first}},
            )
        assert answer.status_code == 200, answer.text

    def person_deletes(self, external_id: str) -> SyncJob:
        """Delete in the CRM's page; returns the job its webhook queues (as the receiver builds it)."""
        answer = self.sb.http.delete(self.sb.url(f"/_sandbox/{self.provider}/contacts/{external_id}"))
        assert answer.status_code == 200, answer.text
        kind = "ContactDelete" if self.provider == "ghl" else "contact.deletion"
        hint = {"source": "webhook", "event_type": kind, "object_id": external_id}
        return self.sync_job(**hint)

    def bulk(self, count: int) -> None:
        if self.provider == "ghl":
            body: dict[str, Any] = {"location_id": GHL_LOCATION, "count": count}
        else:
            body = {"hub_id": HUB, "count": count}
        answer = self.sb.http.post(self.sb.url(f"/_sandbox/{self.provider}/contacts-bulk"), json=body)
        assert answer.status_code == 201, answer.text

    def delete_stage(self, stage_id: str) -> None:
        answer = self.sb.http.delete(self.sb.url(f"/_sandbox/crm/stages/{stage_id}"))
        assert answer.status_code == 200, answer.text

    def requests(self, suffix: str) -> list[dict[str, Any]]:
        return [r for r in self.sb.requests_log() if str(r["path"]).endswith(suffix)]

    def throttled(self) -> int:
        answer = self.sb.http.get(self.sb.url("/_sandbox/crm/throttled")).json()["throttled"]
        return int(answer.get(self.provider, 0))

    # --- the platform's side ---

    def contact_upserted(
        self, fields: ContactFields = SAM, version: int = 1, contact_id: str = "ct-1"
    ) -> None:
        event = ContactUpserted(
            contact_id=contact_id, agency_id=AGENCY, client_id=CLIENT, fields=fields, version=version
        )
        self.platform(event)

    def contact_deleted(self, version: int, contact_id: str = "ct-1") -> None:
        event = ContactDeleted(contact_id=contact_id, agency_id=AGENCY, client_id=CLIENT, version=version)
        self.platform(event)

    def call_completed(
        self,
        call_id: str = "call-1",
        contact_id: str = "ct-1",
        fields: ContactFields = SAM,
        outcome: str = "booked",
    ) -> None:
        event = CallCompleted(
            call_id=call_id,
            agency_id=AGENCY,
            client_id=CLIENT,
            contact_id=contact_id,
            contact=fields,
            direction="outbound",
            outcome=outcome,
            duration_seconds=184,
            summary="Booked a roof inspection for Thursday.",
            recording_url="https://recordings.example.com/call-1.mp3",
            agent="Ava",
            started_at=datetime(2026, 12, 1, 8, 55, tzinfo=UTC),
        )
        self.platform(event)

    def platform(self, event: PlatformEvent) -> None:
        """Deliver a platform event to the sync worker function, as the bus rule does."""
        from tests.support.functions import load_handler

        app = load_handler("sync_worker")
        app.container = self.container
        bus_event = {
            "detail-type": event.detail_type,
            "source": "platform",
            "detail": event.model_dump(mode="json"),
        }
        assert app.platform_event(bus_event)["status"] == "applied"

    def sync_job(self, **hint: Any) -> SyncJob:
        return self.job(**hint)


@pytest.fixture(params=["ghl", "hubspot"])
def world(
    request: pytest.FixtureRequest, server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    server.reset()
    yield World(str(request.param), server, tmp_path, monkeypatch)
    clear_cache()


def _first_name(world: World, contact: dict[str, Any]) -> str:
    return str(contact["firstName"] if world.provider == "ghl" else contact["properties"]["firstname"])


def _company(world: World, contact: dict[str, Any]) -> str:
    if world.provider == "ghl":
        return str(contact["companyName"])
    return str(contact["properties"][HUBSPOT_MAPPING["company"]])


def test_a_platform_contact_lands_in_the_crm_mapped_and_comes_back_only_when_the_person_edits_it(
    world: World,
) -> None:
    world.configure()
    world.contact_upserted()
    world.drain()

    (contact,) = world.truth()
    assert _first_name(world, contact) == "Sam"
    assert _company(world, contact) == "Rivera Roofing"

    # Our own write, read back by the next sweep, is no change (no echo).
    world.drain()
    result = world.worker.handle(world.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)
    assert result.outcome is Outcome.DONE
    assert world.changed() == []

    world.person_edits_first_name(str(contact["id"]), "Samantha")
    world.worker.handle(world.sync_job(reason="webhook"), remaining_ms=lambda: 600_000)

    (changed,) = world.changed()
    assert changed.change == "updated"
    assert changed.contact_id == "ct-1"
    assert changed.external_id == str(contact["id"])
    assert changed.fields.first_name == "Samantha"
    assert changed.fields.company == "Rivera Roofing"
    assert changed.provider == world.provider and changed.client_id == CLIENT


def test_a_contact_made_in_the_crm_is_announced_once_as_added(world: World) -> None:
    external_id = world.person_creates("Jo", "jo@example.com")

    world.worker.handle(world.sync_job(reason="webhook"), remaining_ms=lambda: 600_000)
    world.worker.handle(world.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)

    (changed,) = world.changed()
    assert (changed.change, changed.external_id, changed.contact_id) == ("added", external_id, None)
    assert changed.fields.email == "jo@example.com"


def test_the_initial_import_reads_every_contact_in_pages_and_then_only_changes(world: World) -> None:
    world.bulk(450)

    result = world.worker.handle(world.sync_job(reason="connected"), remaining_ms=lambda: 600_000)

    assert result.outcome is Outcome.DONE
    assert len({e.external_id for e in world.changed()}) == 450
    assert {e.change for e in world.changed()} == {"added"}
    searches = world.requests("/contacts/search")
    page = 100 if world.provider == "ghl" else 200
    assert len(searches) == -(-450 // page) + (1 if 450 % page == 0 else 0)
    assert world.connection.status is PortalStatus.CONNECTED

    world.bus.events.clear()
    world.worker.handle(world.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)
    assert world.changed() == []


def _time_for(pages: int) -> Callable[[], int]:
    """A Lambda clock with room for `pages` pages (asked once for the lease, then after each page)."""
    left = [pages + 1]

    def remaining_ms() -> int:
        left[0] -= 1
        return 600_000 if left[0] > 0 else 0

    return remaining_ms


def test_the_initial_import_shows_its_progress_on_the_card_and_on_the_bus(world: World) -> None:
    world.bulk(450)
    page = 100 if world.provider == "ghl" else 200
    job = world.sync_job(reason="connected")

    # Given an import cut short after two pages (out of time), resumed by the next job
    first = world.worker.handle(job, remaining_ms=_time_for(2))
    assert first.outcome is Outcome.CONTINUE
    card = SyncView.of(world.connection, world.container.catalog.get(world.provider), datetime.now(UTC))

    # Then the card shows how far it is, with the provider's total
    running = card.contacts_import
    assert running is not None
    assert (running.state, running.imported, running.total) == ("importing", 2 * page, 450)
    assert running.message == f"Importing {2 * page} of 450 contacts from {world.connection.account.label}."

    # When the next job goes on from the cursor to the end
    world.worker.handle(world.sync_job(reason="continue"), remaining_ms=lambda: 600_000)

    # Then the card confirms, the bus followed every page, and every contact came once
    card = SyncView.of(world.connection, world.container.catalog.get(world.provider), datetime.now(UTC))
    done = card.contacts_import
    assert done is not None and (done.state, done.imported, done.total) == ("done", 450, 450)
    assert done.message == f"Imported 450 contacts from {world.connection.account.label}."
    progress = [e for e in world.bus.of(SyncProgress.detail_type) if e.connection_id == world.connection_id]
    pages = -(-450 // page)
    assert [(e.state, e.done) for e in progress] == [
        *(("running", min(450, n * page)) for n in range(1, pages + 1)),
        ("done", 450),
    ]
    assert {e.total for e in progress} == {450}
    assert len({e.progress_id for e in progress}) == len(progress)
    assert len({e.external_id for e in world.changed()}) == 450

    # and later sweeps are no import
    world.bus.events.clear()
    world.worker.handle(world.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)
    assert world.bus.of(SyncProgress.detail_type) == []


def test_a_burst_of_webhooks_for_one_contact_is_one_re_read(world: World) -> None:
    external_id = world.person_creates("Jo", "jo@example.com")
    world.person_edits_first_name(external_id, "Joanna")
    for _ in range(5):
        world.container.jobs.send(world.sync_job(reason="webhook"))
    before = len(world.requests("/contacts/search"))

    world.drain()

    assert len(world.requests("/contacts/search")) - before == 1
    (changed,) = world.changed()
    assert changed.fields.first_name == "Joanna"


def test_every_platform_event_delivered_three_times_writes_once(world: World) -> None:
    world.configure()
    for _ in range(3):
        world.contact_upserted()
    world.drain()
    for _ in range(3):
        world.call_completed()
    world.drain()

    (contact,) = world.truth()
    records = contact["notes"] if world.provider == "ghl" else contact["calls"]
    deals = contact["opportunities"] if world.provider == "ghl" else contact["deals"]
    assert len(records) == 1
    assert len(deals) == 1

    for _ in range(3):
        world.contact_deleted(version=2)
    world.drain()
    assert world.truth() == []
    assert world.changed() == []


def test_an_older_contact_version_arriving_late_changes_nothing(world: World) -> None:
    world.contact_upserted(version=5)
    world.contact_upserted(fields=SAM.model_copy(update={"first_name": "Old"}), version=4)
    world.drain()

    (contact,) = world.truth()
    assert _first_name(world, contact) == "Sam"


def test_a_completed_call_is_logged_on_the_contact_and_moves_the_deal_to_the_configured_stage(
    world: World,
) -> None:
    stage = world.configure(stage_index=2)
    world.contact_upserted()
    world.drain()

    world.call_completed()
    world.drain()

    (contact,) = world.truth()
    if world.provider == "ghl":
        (note,) = contact["notes"]
        assert "Outbound call, booked, 3m 4s" in note["body"]
        assert "Booked a roof inspection" in note["body"]
        (opportunity,) = contact["opportunities"]
        assert opportunity["pipelineStageId"] == stage
        assert opportunity["pipelineId"] == world.pipelines[1]["id"]
    else:
        (call,) = contact["calls"]
        assert call["properties"]["hs_call_direction"] == "OUTBOUND"
        assert call["properties"]["hs_call_duration"] == "184000"
        assert call["properties"]["hs_call_body"] == "Booked a roof inspection for Thursday."
        (deal,) = contact["deals"]
        assert deal["properties"]["dealstage"] == stage
        assert deal["properties"]["pipeline"] == world.pipelines[1]["id"]
        assert contact["properties"]["ai_call_summary"] == "Booked a roof inspection for Thursday."


def test_a_second_call_moves_the_same_deal(world: World) -> None:
    world.configure(stage_index=0)
    world.call_completed(call_id="call-1")
    world.drain()
    stage = world.configure(stage_index=2)

    world.call_completed(call_id="call-2")
    world.drain()

    (contact,) = world.truth()
    deals = contact["opportunities"] if world.provider == "ghl" else contact["deals"]
    assert len(deals) == 1
    moved = deals[0]["pipelineStageId"] if world.provider == "ghl" else deals[0]["properties"]["dealstage"]
    assert moved == stage


def test_a_deleted_stage_asks_for_the_config_and_the_waiting_call_runs_once_fixed(world: World) -> None:
    stage = world.configure(stage_index=1)
    world.delete_stage(stage)
    world.call_completed()
    (job,) = _received(world)

    waiting = world.worker.handle(job, remaining_ms=lambda: 600_000)

    assert waiting.outcome is Outcome.DEFER
    connection = world.connection
    assert connection.status is PortalStatus.ERROR
    assert connection.error is not None and connection.error.code.value == "config_required"
    assert "stage" in connection.error.message
    requeued, delay = world.sent[-1]
    assert delay == 900
    assert requeued.hint["waiting_since"]

    # While the config is wrong the job waits without calling the CRM again.
    calls_before = len(world.sb.requests_log(kind="api"))
    assert world.worker.handle(requeued, remaining_ms=lambda: 600_000).outcome is Outcome.DEFER
    assert len(world.sb.requests_log(kind="api")) == calls_before
    requeued, _ = world.sent[-1]
    assert requeued.hint["waiting_since"] == world.sent[-2][0].hint["waiting_since"]

    fixed = world.configure(stage_index=2)
    done = world.worker.handle(requeued, remaining_ms=lambda: 600_000)
    again = world.worker.handle(requeued, remaining_ms=lambda: 600_000)

    assert (done.outcome, done.reason) == (Outcome.DONE, "logged")
    assert (again.outcome, again.reason) == (Outcome.DONE, "unchanged")
    (contact,) = world.truth()
    records = contact["notes"] if world.provider == "ghl" else contact["calls"]
    deals = contact["opportunities"] if world.provider == "ghl" else contact["deals"]
    assert len(records) == 1
    (deal,) = deals
    assert (deal["pipelineStageId"] if world.provider == "ghl" else deal["properties"]["dealstage"]) == fixed
    assert world.connection.status is PortalStatus.CONNECTED


def _records(world: World, contact: dict[str, Any]) -> list[dict[str, Any]]:
    """The notes (GHL) or call engagements (HubSpot) on the contact."""
    return list(contact["notes"] if world.provider == "ghl" else contact["calls"])


def _deal_stages(world: World, contact: dict[str, Any]) -> list[str]:
    """The stage of each opportunity (GHL) or deal (HubSpot) of the contact."""
    if world.provider == "ghl":
        return [str(o["pipelineStageId"]) for o in contact["opportunities"]]
    return [str(d["properties"]["dealstage"]) for d in contact["deals"]]


def _deal_writes(world: World) -> list[dict[str, Any]]:
    """Opportunity (GHL) or deal (HubSpot) writes the CRM received."""
    return [
        r
        for r in world.sb.requests_log(kind="api")
        if r["method"] != "GET"
        and ("/opportunities/upsert" in r["path"] or "/objects/deals" in r["path"])
        and not str(r["path"]).endswith("/search")
    ]


def test_a_mapped_outcome_moves_the_deal_to_its_own_stage(world: World) -> None:
    world.configure(stage_index=0, by_outcome={"booked": 2, "no answer": 1})

    world.call_completed(call_id="call-1", outcome="Booked")
    world.drain()

    (contact,) = world.truth()
    assert len(_records(world, contact)) == 1
    assert _deal_stages(world, contact) == [world.stage(2)]

    world.call_completed(call_id="call-2", outcome="no answer")
    world.drain()

    (contact,) = world.truth()
    assert len(_records(world, contact)) == 2
    assert _deal_stages(world, contact) == [world.stage(1)]


def test_an_unmapped_outcome_is_logged_and_moves_nothing(world: World) -> None:
    world.configure(stage_index=0, by_outcome={"no answer": 1})
    read_before = len(world.requests("/pipelines") + world.requests("/pipelines/deals"))

    world.call_completed(outcome="voicemail")
    world.drain()

    (contact,) = world.truth()
    assert len(_records(world, contact)) == 1
    assert _deal_stages(world, contact) == []
    # Neither the pipelines nor the deals were asked for: no move was due.
    assert len(world.requests("/pipelines") + world.requests("/pipelines/deals")) == read_before
    assert _deal_writes(world) == []


def test_without_a_mapping_every_outcome_goes_to_the_single_stage(world: World) -> None:
    stage = world.configure(stage_index=1)

    world.call_completed(call_id="call-1", outcome="voicemail")
    world.call_completed(call_id="call-2", outcome="booked")
    world.drain()

    (contact,) = world.truth()
    assert len(_records(world, contact)) == 2
    assert _deal_stages(world, contact) == [stage]


def test_a_deleted_mapped_stage_names_it_and_the_call_moves_once_the_mapping_is_fixed(
    world: World,
) -> None:
    world.configure(stage_index=0, by_outcome={"booked": 1})
    gone = world.stage(1)
    world.delete_stage(gone)
    world.call_completed(outcome="booked")
    (job,) = _received(world)

    waiting = world.worker.handle(job, remaining_ms=lambda: 600_000)

    assert waiting.outcome is Outcome.DEFER
    error = world.connection.error
    assert error is not None and error.code.value == "config_required"
    assert gone in error.message and "\u201cbooked\u201d" in error.message
    # The call is logged already; only the deal waits.
    (contact,) = world.truth()
    assert len(_records(world, contact)) == 1
    assert _deal_stages(world, contact) == []
    requeued, _ = world.sent[-1]

    world.configure(stage_index=0, by_outcome={"booked": 2})
    done = world.worker.handle(requeued, remaining_ms=lambda: 600_000)
    again = world.worker.handle(requeued, remaining_ms=lambda: 600_000)

    assert (done.outcome, done.reason) == (Outcome.DONE, "logged")
    assert (again.outcome, again.reason) == (Outcome.DONE, "unchanged")
    (contact,) = world.truth()
    assert len(_records(world, contact)) == 1
    assert _deal_stages(world, contact) == [world.stage(2)]
    assert world.connection.status is PortalStatus.CONNECTED


def test_a_deleted_pipeline_stage_is_found_before_the_deal_is_written(world: World) -> None:
    stage = world.configure(stage_index=1)
    world.delete_stage(stage)
    world.call_completed()
    (job,) = _received(world)

    world.worker.handle(job, remaining_ms=lambda: 600_000)

    error = world.connection.error
    assert error is not None and stage in error.message and "\u201cbooked\u201d" in error.message
    # Refused by the check, not by the CRM: no deal write was sent.
    assert _deal_writes(world) == []


def test_a_refused_grant_turns_the_card_to_reauth_and_the_call_waits(world: World) -> None:
    world.configure()
    answer = world.sb.http.post(
        world.sb.url("/_sandbox/faults"), json={"app": world.provider, "kind": "revoke_grants"}
    )
    assert answer.status_code == 200, answer.text
    world.call_completed()
    (job,) = _received(world)

    result = world.worker.handle(job, remaining_ms=lambda: 600_000)

    assert result.outcome is Outcome.DEFER
    connection = world.connection
    assert connection.error is not None and connection.error.code.value == "reauth_required"


def test_a_429_defers_the_write_by_retry_after_without_a_failure(world: World) -> None:
    world.contact_upserted()
    answer = world.sb.http.post(
        world.sb.url("/_sandbox/faults"),
        json={"app": world.provider, "kind": "rate_limit", "retry_after": 7, "endpoint": "api"},
    )
    assert answer.status_code == 201, answer.text
    (job,) = _received(world)

    result = world.worker.handle(job, remaining_ms=lambda: 600_000)

    assert (result.outcome, round(result.delay_seconds), result.failed) == (Outcome.DEFER, 7, False)
    assert world.connection.consecutive_failures == 0


def _received(world: World) -> list[SyncJob]:
    """Take what is on the queue now (delays ignored), as the next deliveries."""
    sqs = aws_clients.sqs()
    found: list[SyncJob] = []
    while True:
        answer = sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(SyncJob.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_an_import_of_2000_contacts_with_live_calls_interleaved_keeps_the_limits(world: World) -> None:
    """The CRM's real window (GHL 100 / 10 s per location, HubSpot 110 / 10 s): the import paces
    itself, calls keep their share, a refused call waits Retry-After once instead of hammering."""
    world.configure()
    world.bulk(2000)
    started = time.time()
    calls = 40
    world.container.jobs.send(world.sync_job(reason="connected"))
    for n in range(calls):
        fields = ContactFields(first_name=f"Caller{n}", email=f"caller{n}@example.com")
        world.call_completed(call_id=f"call-{n}", contact_id=f"ct-call-{n}", fields=fields)

    world.drain(timeout=120)

    truth = world.truth()
    assert len(truth) == 2000 + calls
    logged = [c for c in truth if (c["notes"] if world.provider == "ghl" else c["calls"])]
    assert len(logged) == calls
    # Every call landed within a minute of its event despite the import (deadline).
    stamps = [
        parse_instant(c["notes"][0]["dateAdded"] if world.provider == "ghl" else c["calls"][0]["createdAt"])
        for c in logged
    ]
    assert all(s is not None and s - started < 60 for s in stamps)
    # The import finished and read every contact once as added.
    assert len({e.external_id for e in world.changed()}) >= 2000
    assert world.connection.status is PortalStatus.CONNECTED
    # No 429 storm: refused calls waited the window instead of retrying into it. HubSpot's marketplace
    # rule (errors under 5% of calls) is the bar for both.
    made = len(world.sb.requests_log(app=world.provider, kind="api"))
    assert made > 2000 // 200 + calls
    assert world.throttled() <= made * 0.05


def test_a_contact_deleted_in_the_crm_is_announced_as_deleted_even_after_a_later_sweep(world: World) -> None:
    world.contact_upserted()
    world.drain()
    (contact,) = world.truth()

    hinted = world.person_deletes(str(contact["id"]))
    world.worker.handle(world.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)
    world.worker.handle(hinted, remaining_ms=lambda: 600_000)
    world.worker.handle(hinted, remaining_ms=lambda: 600_000)

    (changed,) = world.changed()
    assert (changed.change, changed.external_id, changed.contact_id) == (
        "deleted",
        str(contact["id"]),
        "ct-1",
    )


# --- HubSpot: new contacts waiting for one connection go in batches ---


@pytest.fixture
def hubspot(server: Sandbox, aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    server.reset()
    yield World("hubspot", server, tmp_path, monkeypatch)
    clear_cache()


def _many(world: World, count: int, version: int = 1) -> list[str]:
    emails = [f"lead{n}@example.com" for n in range(count)]
    for n, email in enumerate(emails):
        fields = ContactFields(first_name=f"Lead{n}", email=email)
        world.contact_upserted(fields, version=version, contact_id=f"ct-{n}")
    return emails


def _contact_writes(world: World) -> list[dict[str, Any]]:
    return [
        r
        for r in world.sb.requests_log(app="hubspot", kind="api")
        if "/crm/v3/objects/contacts" in str(r["path"]) and not str(r["path"]).endswith("/search")
    ]


@pytest.mark.parametrize(("count", "calls"), [(100, 1), (250, 3)])
def test_new_contacts_waiting_for_hubspot_go_in_batches_of_100(
    hubspot: World, count: int, calls: int
) -> None:
    hubspot.configure()
    _many(hubspot, count)

    hubspot.drain(timeout=120)

    # One batch/upsert per 100 contacts, and no other contact write
    writes = _contact_writes(hubspot)
    assert len(writes) == calls
    assert all(str(w["path"]).endswith("/contacts/batch/upsert") for w in writes)
    # Every contact is in HubSpot once, linked, and its own write read back is no change
    assert len(hubspot.truth()) == count
    for n in (0, count - 1):
        external = hubspot.container.crm_store.external_id(AGENCY, CLIENT, f"ct-{n}", hubspot.connection_id)
        assert external is not None
    hubspot.worker.handle(hubspot.sync_job(reason="sweep"), remaining_ms=lambda: 600_000)
    assert hubspot.changed() == []


def test_a_single_contact_is_one_single_upsert(hubspot: World) -> None:
    hubspot.configure()
    hubspot.contact_upserted()

    hubspot.drain()

    (write,) = _contact_writes(hubspot)
    assert str(write["path"]).endswith("/contacts/batch/upsert")
    assert [c["properties"]["email"] for c in hubspot.truth()] == ["sam@example.com"]


def test_inputs_hubspot_refuses_in_a_batch_are_retried_alone(hubspot: World) -> None:
    hubspot.configure()
    emails = _many(hubspot, 100)
    refused = emails[40:43]
    answer = hubspot.sb.http.post(
        hubspot.sb.url("/_sandbox/hubspot/upsert-refusals"), json={"emails": refused}
    )
    assert answer.status_code == 201, answer.text
    jobs = _received(hubspot)

    # The first job sends all 100: HubSpot answers 207 naming the three it refused
    hubspot.worker.handle(jobs[0], remaining_ms=lambda: 600_000)
    first = {c["properties"]["email"]: c["updatedAt"] for c in hubspot.truth()}
    assert set(first) == set(emails) - set(refused)
    assert [w["status"] for w in _contact_writes(hubspot)] == [207]

    # The other jobs: only the three refused are written again (one batch), the rest touch nothing
    for job in jobs[1:]:
        hubspot.worker.handle(job, remaining_ms=lambda: 600_000)

    after = {c["properties"]["email"]: c["updatedAt"] for c in hubspot.truth()}
    assert set(after) == set(emails)
    assert {e: after[e] for e in first} == first
    assert [w["status"] for w in _contact_writes(hubspot)] == [207, 200]
    for n in range(100):
        assert hubspot.container.crm_store.external_id(AGENCY, CLIENT, f"ct-{n}", hubspot.connection_id)


def test_a_newer_version_arriving_while_a_batch_runs_is_still_written(hubspot: World) -> None:
    hubspot.configure()
    _many(hubspot, 5)
    jobs = _received(hubspot)
    hubspot.worker.handle(jobs[0], remaining_ms=lambda: 600_000)

    # A contact of that batch changes again before its own job runs
    hubspot.contact_upserted(ContactFields(first_name="Renamed", email="lead3@example.com"), 2, "ct-3")
    for job in [*jobs[1:], *_received(hubspot)]:
        hubspot.worker.handle(job, remaining_ms=lambda: 600_000)

    names = {c["properties"]["email"]: c["properties"]["firstname"] for c in hubspot.truth()}
    assert names["lead3@example.com"] == "Renamed"
    assert len(names) == 5
