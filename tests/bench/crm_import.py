"""A CRM's initial contact import through the sandbox: contacts per second, provider requests per
1,000 contacts (batching), and peak memory of the worker at 10,000 contacts against 1,000.

As tests/bench/calendar_sync.py: the provider sandbox and moto (DynamoDB, SQS, the credential vault)
each run as a server process of their own, and every measured import runs in a fresh worker process
(`python -m tests.bench.crm_import BASE PROVIDER CONTACTS [--trace]`), so its memory is its own.

A run: a new HubSpot account (a fresh hub id) is connected through the sandbox's OAuth flow (consent,
allow, code exchange) and its connection stored with those tokens in the vault; its settings are saved
(the contact property mapping), as the portal's configure step does; CONTACTS contacts arrive in the
sandbox CRM in one request (`/_sandbox/hubspot/contacts-bulk`, an imported list). The engine is the
worker (`SyncWorker.handle` → the CRM steps → `CrmSync.pull` with the HubSpot adapter) draining the
real SQS queue from the connection's first sync job, as Lambda's event source mapping would, until
the queue is empty: every `Contact Changed` published to a counting bus, the mirror written, the
cursor and the import's progress checkpointed on the connection after every page, and a job paced
by the provider's rate limit re-queued with its delay. Provider requests are counted from the
sandbox's request log (`GET /_sandbox/requests`, by sequence number). The floor pages through the
same contacts search (same filter, sort, properties and page size) with plain `requests`, waiting
`Retry-After` when the search limit (5 per second) answers 429.

Sizes: `BENCH_CRM_CONTACTS` (default 10000) for the throughput run, `BENCH_CRM_MEMORY` (default
"1000,10000") for the traced runs; set them small while developing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.bench.calendar_sync import ROOT, _cpu_of, _servers, _trace_start, _trace_stop

AGENCY, CLIENT = "agency-bench", "client-bench"
# The settings saved on the connection before its import (the portal's configure step).
MAPPING = {"first_name": "firstname", "last_name": "lastname", "email": "email"}


@dataclass(frozen=True, slots=True)
class ImportRun:
    """What one worker process measured."""

    provider: str
    contacts: int
    imported: int
    changed: int
    pages: int
    jobs: int
    engine_seconds: float
    engine_cpu_seconds: float
    moto_cpu_seconds: float
    sandbox_cpu_seconds: float
    engine_requests: int
    engine_throttled: int
    floor_seconds: float
    floor_contacts: int
    floor_requests: int
    floor_throttled: int
    engine_peak: int
    floor_peak: int

    @property
    def engine_rate(self) -> float:
        return self.contacts / self.engine_seconds

    @property
    def floor_rate(self) -> float:
        return self.floor_contacts / self.floor_seconds

    def per_thousand(self, requests: int) -> float:
        return requests * 1000 / self.contacts


# --------------------------------------------------------------------------- the worker process


class _Bus:
    """The bus stands in as a counter of the contacts announced (publishing is EventBridge's cost)."""

    def __init__(self) -> None:
        self.external_ids: set[str] = set()
        self.events = 0

    def publish(self, *events: Any) -> None:
        for event in events:
            if event.detail_type == "Contact Changed":
                self.external_ids.add(event.external_id)
                self.events += 1


def _session() -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def _tokens(base: str, hub: str) -> dict[str, Any]:
    """The sandbox's OAuth flow: consent page, allow as the account, code exchanged for tokens."""
    from infra.local.sandbox import SandboxApp
    from tests.support.sandbox import Sandbox, connect

    sandbox = Sandbox(base=base, app=SandboxApp.__new__(SandboxApp))
    sandbox.http.trust_env = False
    return connect(sandbox, "hubspot", account=hub)


def _last_seq(base: str) -> int:
    entries = _session().get(f"{base}/_sandbox/requests", timeout=30).json()["requests"]
    return max((int(e["seq"]) for e in entries), default=0)


def _requests_since(base: str, seq: int) -> tuple[int, int]:
    """The provider API requests (HubSpot, kind api) after `seq`: (all, answered 429)."""
    entries = _session().get(f"{base}/_sandbox/requests", params={"app": "hubspot"}, timeout=30).json()
    found = [e for e in entries["requests"] if int(e["seq"]) > seq]
    everything = _session().get(f"{base}/_sandbox/requests", timeout=30).json()["requests"]
    # The log is bounded: the run's first request must still be in it, else the count is short.
    assert not everything or min(int(e["seq"]) for e in everything) <= seq + 1, "request log overflowed"
    api = [e for e in found if e["kind"] == "api"]
    return len(api), sum(1 for e in api if e["status"] == 429)


def _seed(base: str, hub: str, count: int) -> None:
    answer = _session().post(
        f"{base}/_sandbox/hubspot/contacts-bulk", json={"hub_id": hub, "count": count}, timeout=600
    )
    answer.raise_for_status()


def _floor(url: str, token: str, properties: list[str]) -> tuple[int, int, int]:
    """The same search, page by page from the start, with requests: (contacts, requests, 429s)."""
    from integrations.providers.hubspot.sync import PAGE_SIZE

    session = _session()
    session.headers["Authorization"] = f"Bearer {token}"
    body: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": properties,
        "limit": PAGE_SIZE,
        "after": "0",
    }
    contacts = made = throttled = 0
    while True:
        answer = session.post(url, json=body, timeout=60)
        made += 1
        if answer.status_code == 429:
            throttled += 1
            time.sleep(float(answer.headers.get("Retry-After", "1")))
            continue
        answer.raise_for_status()
        page = answer.json()
        contacts += len(page.get("results", []))
        following = ((page.get("paging") or {}).get("next") or {}).get("after")
        # Drop this page before fetching the next: the floor holds one page at a time.
        del answer, page
        if not following:
            return contacts, made, throttled
        body["after"] = following


def _drain(worker: Any, queue_url: str, deadline: float) -> int:
    """Run every job on the queue, as Lambda's event source mapping would, until it is empty."""
    from integrations import aws
    from integrations.sync.jobs import SyncJob
    from tests.support.sync_world import queue_empty

    sqs = aws.sqs()
    handled = 0
    while time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if not messages and queue_empty(queue_url):
            return handled
        for message in messages:
            job = SyncJob.model_validate_json(message["Body"])
            count = int(message["Attributes"]["ApproximateReceiveCount"])
            worker.handle(job, receive_count=count, remaining_ms=lambda: 600_000)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
    raise TimeoutError("the queue did not drain")


def run_worker(base: str, provider: str, contacts: int, trace: bool) -> ImportRun:
    """One measured run in this process (see the module docstring)."""
    from datetime import UTC, datetime

    from infra.local.sandbox import catalog_overrides
    from integrations.catalog.loader import OVERRIDES_ENV, clear_cache
    from integrations.config import Settings
    from integrations.container import Container
    from integrations.observability import get_logger
    from integrations.providers.hubspot.sync import DEFAULT_MAPPING
    from integrations.providers.support import api_url
    from integrations.sync.import_progress import ImportProgress
    from integrations.sync.jobs import JobKind, SyncJob
    from tests.support import seed

    assert provider == "hubspot", provider
    hub = str(10_000_000 + secrets.randbelow(89_999_999))
    tokens = _tokens(base, hub)
    overrides = Path(os.environ["BENCH_TMP"]) / f"overrides-{os.getpid()}.json"
    overrides.write_text(json.dumps(catalog_overrides(base)))
    os.environ[OVERRIDES_ENV] = str(overrides)
    clear_cache()
    settings = Settings.from_env()
    container = Container(settings)
    bus = _Bus()
    container.__dict__["events"] = bus
    worker = container.sync_worker(get_logger("bench"))
    connection = seed.connection(
        provider=provider,
        agency_id=AGENCY,
        client_id=CLIENT,
        account_id=hub,
        access_token=str(tokens["access_token"]),
        refresh_token=str(tokens["refresh_token"]),
    )
    # The settings saved, as the portal's configure step saves them; the import starts after.
    container.sync_state.apply(
        connection.id, lambda c: c.configured({"property_mapping": MAPPING}, datetime.now(UTC))
    )
    _seed(base, hub, contacts)
    job = SyncJob(
        kind=JobKind.SYNC, connection_id=connection.id, provider=provider, hint={"reason": "connected"}
    )

    before = _last_seq(base)
    _trace_start(trace)
    servers = _server_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    container.jobs.send(job)
    jobs = _drain(worker, settings.sync_queue_url, time.monotonic() + 900)
    engine_seconds, engine_cpu = time.perf_counter() - started, time.process_time() - cpu
    moto_cpu, sandbox_cpu = (after - before_ for after, before_ in zip(_server_cpu(), servers, strict=True))
    engine_peak = _trace_stop(trace)
    engine_requests, engine_throttled = _requests_since(base, before)

    stored = container.connections.get(connection.id)
    assert stored is not None
    progress = ImportProgress.of(stored)
    assert progress is not None and progress.state == "done", progress
    assert len(bus.external_ids) == contacts == progress.imported, (len(bus.external_ids), progress)

    time.sleep(1.1)  # the search's one-second window, left by the engine, is empty for the floor
    before = _last_seq(base)
    properties = sorted(set(DEFAULT_MAPPING.values()) | {"lastmodifieddate"})
    _trace_start(trace)
    started = time.perf_counter()
    floor_contacts, floor_requests, floor_throttled = _floor(
        api_url(container.catalog.get(provider), "crm/v3/objects/contacts/search"),
        str(tokens["access_token"]),
        properties,
    )
    floor_seconds = time.perf_counter() - started
    floor_peak = _trace_stop(trace)
    assert floor_contacts == contacts, floor_contacts
    return ImportRun(
        provider=provider,
        contacts=contacts,
        imported=progress.imported,
        changed=bus.events,
        pages=progress.pages,
        jobs=jobs,
        engine_seconds=engine_seconds,
        engine_cpu_seconds=engine_cpu,
        moto_cpu_seconds=moto_cpu,
        sandbox_cpu_seconds=sandbox_cpu,
        engine_requests=engine_requests,
        engine_throttled=engine_throttled,
        floor_seconds=floor_seconds,
        floor_contacts=floor_contacts,
        floor_requests=floor_requests,
        floor_throttled=floor_throttled,
        engine_peak=engine_peak,
        floor_peak=floor_peak,
    )


def _server_cpu() -> tuple[float, float]:
    return _cpu_of(os.environ.get("BENCH_MOTO_PID")), _cpu_of(os.environ.get("BENCH_SANDBOX_PID"))


# --------------------------------------------------------------------------- the orchestrator


def _worker(base: str, env: dict[str, str], provider: str, contacts: int, trace: bool) -> ImportRun:
    command = [sys.executable, "-m", "tests.bench.crm_import", base, provider, str(contacts)]
    out = subprocess.run(
        [*command, "--trace"] if trace else command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return ImportRun(**json.loads(out.stdout.strip().splitlines()[-1]))


@functools.cache
def measure() -> tuple[ImportRun, list[ImportRun]]:
    """One throughput run (untraced) and one traced run per memory size."""
    count = int(os.environ.get("BENCH_CRM_CONTACTS", "10000"))
    sizes = [int(n) for n in os.environ.get("BENCH_CRM_MEMORY", "1000,10000").split(",")]
    with tempfile.TemporaryDirectory() as tmp, _servers(Path(tmp)) as (base, env):
        throughput = _worker(base, env, "hubspot", count, trace=False)
        memory = [_worker(base, env, "hubspot", n, trace=True) for n in sizes]
    return throughput, memory


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f}"


def section() -> list[str]:
    """The RESULTS.md section."""
    from integrations.providers.hubspot.sync import PAGE_SIZE

    run, memory = measure()
    small, large = memory[0], memory[-1]
    least = -(-run.contacts // PAGE_SIZE)
    return [
        "## CRM initial import through the sandbox (HubSpot): contacts per second, requests, memory",
        "",
        "The provider sandbox and moto's server (DynamoDB, SQS, the credential vault) run as processes"
        " of their own; each measured import runs in a fresh worker process. A run connects a new HubSpot"
        " account through the sandbox's OAuth flow (consent, allow, code exchange), stores the connection"
        " with those tokens, saves its settings (the contact property mapping) as the portal's configure"
        " step does, and adds the contacts in one request (`/_sandbox/hubspot/contacts-bulk`). The engine"
        " is the sync worker draining the real SQS queue from the connection's first sync job until it is"
        " empty: the CRM steps run `CrmSync.pull` with the HubSpot adapter (contacts search by"
        f" `lastmodifieddate`, {PAGE_SIZE} a page), publish one `Contact Changed` per contact to a counting"
        " bus, write the mirror, checkpoint the cursor and the import's progress on the connection after"
        " every page. Provider requests are counted from the sandbox's request log. The floor pages"
        " through the same search (same filter, sort, properties, page size) with plain `requests`,"
        " waiting `Retry-After` on a 429. Both are held to HubSpot's real search limit (5 per second).",
        "",
        "| contacts | pages | jobs | engine wall (s) | engine contacts/s | worker CPU (s)"
        " | moto server CPU (s) | sandbox CPU (s) | provider requests (429s) | requests per 1,000 contacts"
        " | floor wall (s) | floor contacts/s | floor requests (429s) | engine / floor time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {run.contacts:,} | {run.pages} | {run.jobs} | {run.engine_seconds:.2f} | {run.engine_rate:,.0f}"
        f" | {run.engine_cpu_seconds:.2f} | {run.moto_cpu_seconds:.2f} | {run.sandbox_cpu_seconds:.2f}"
        f" | {run.engine_requests} ({run.engine_throttled}) | {run.per_thousand(run.engine_requests):.1f}"
        f" | {run.floor_seconds:.2f} | {run.floor_rate:,.0f} | {run.floor_requests} ({run.floor_throttled})"
        f" | {run.engine_seconds / run.floor_seconds:.1f}x |",
        "",
        "### Peak memory of the worker (tracemalloc, one traced run per size)",
        "",
        "| contacts | pages | engine peak (MiB) | floor peak (MiB) |",
        "|---:|---:|---:|---:|",
        *[f"| {r.contacts:,} | {r.pages} | {_mib(r.engine_peak)} | {_mib(r.floor_peak)} |" for r in memory],
        f"| {large.contacts:,} vs {small.contacts:,} | | **{large.engine_peak / small.engine_peak:.2f}x**"
        f" | {large.floor_peak / small.floor_peak:.2f}x |",
        "",
        "### Why",
        "",
        f"- Batching: a search page holds up to {PAGE_SIZE} contacts, so {run.contacts:,} contacts need at"
        f" least {least} searches ({least * 1000 / run.contacts:.1f} per 1,000); the engine made"
        f" {run.engine_requests} provider requests ({run.engine_throttled} answered 429), the floor"
        f" {run.floor_requests} ({run.floor_throttled} answered 429).",
        "- Memory follows the page, not the import: each page is published, mirrored and checkpointed,"
        " then let go before the next is read.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="one measured worker run (see the module docstring)")
    parser.add_argument("base")
    parser.add_argument("provider")
    parser.add_argument("contacts", type=int)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asdict(run_worker(args.base, args.provider, args.contacts, args.trace))))


if __name__ == "__main__":
    main()
