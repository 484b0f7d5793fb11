"""Incremental calendar sync through the sandbox into the mirror: throughput, memory, DynamoDB cost.

Three processes, as in production: the provider sandbox and moto's DynamoDB each run as a server of
their own, and every measured pull runs in a fresh worker process (`python -m
tests.bench.calendar_sync EVENTS [--trace]`), so the worker's memory is the worker's alone (neither
the sandbox's calendar nor moto's table) and nothing warms up across runs.

A run: connect an account through the sandbox's OAuth flow, pull its empty calendar once (the sync
token T0), seed EVENTS events with the sandbox's bulk seed route (one HTTP request), then pull from
T0 with `CalendarPuller` + `GoogleCalendarAdapter` into `DynamoMirror` (the engine), and fetch the
same pages (events.list from T0, following nextPageToken) with plain requests (the floor).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
THROUGHPUT_EVENTS = 20_000
MEMORY_EVENTS = (1_000, 2_500, 100_000)
TARGET_RATE = 2_000
TARGET_MEMORY_RATIO = 1.2
STAGE = "bench"
BENCH_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "1",
}


@dataclass(frozen=True, slots=True)
class PullRun:
    """What one worker process measured."""

    events: int
    engine_seconds: float
    engine_cpu_seconds: float
    moto_cpu_seconds: float
    sandbox_cpu_seconds: float
    engine_events: int
    engine_pages: int
    floor_seconds: float
    floor_events: int
    engine_peak: int
    floor_peak: int
    calls: dict[str, int]
    items_read: int
    read_units: float
    write_units: float

    @property
    def engine_rate(self) -> float:
        return self.engine_events / self.engine_seconds

    @property
    def floor_rate(self) -> float:
        return self.floor_events / self.floor_seconds


# --------------------------------------------------------------------------- the worker process


class _Published:
    """The bus stands in as a counter: publishing is EventBridge's cost, not DynamoDB's."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, changes: Sequence[Any]) -> None:
        self.count += len(changes)


def _token(base: str, account: str) -> str:
    from infra.local.sandbox import SandboxApp
    from tests.support.sandbox import Sandbox, connect

    sandbox = Sandbox(base=base, app=SandboxApp.__new__(SandboxApp))
    sandbox.http.trust_env = False
    return str(connect(sandbox, "google", account=account)["access_token"])


def _seed(base: str, account: str, count: int) -> None:
    import requests

    answer = requests.post(
        f"{base}/_sandbox/google/calendars/primary/seed",
        json={"account": account, "count": count, "every_minutes": 30},
        timeout=600,
    )
    answer.raise_for_status()


def _floor(url: str, token: str, sync_token: str) -> int:
    """events.list from `sync_token` to the last page with plain requests; returns the items seen."""
    import requests

    from integrations.providers.google_calendar.sync import PAGE_SIZE

    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token}"
    params: dict[str, Any] = {
        "singleEvents": "false",
        "showDeleted": "true",
        "maxResults": PAGE_SIZE,
        "syncToken": sync_token,
    }
    items = 0
    while True:
        answer = session.get(url, params=params, timeout=60)
        answer.raise_for_status()
        body = answer.json()
        items += len(body.get("items", []))
        next_page = body.get("nextPageToken")
        # Drop this page before fetching the next: the floor holds one page at a time.
        del answer, body
        if not next_page:
            return items
        params["pageToken"] = next_page


def run_worker(base: str, events: int, trace: bool) -> PullRun:
    """One measured run in this process (see the module docstring)."""
    from infra.local.sandbox import catalog_overrides
    from integrations import aws
    from integrations.catalog import load_catalog
    from integrations.domain.access import Level
    from integrations.domain.connection import Connection, ExternalAccount
    from integrations.providers.google_calendar.sync import GoogleCalendarAdapter
    from integrations.providers.support import api_url
    from integrations.store.connections import ConnectionRepository
    from integrations.store.mirror import DynamoMirror
    from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller
    from integrations.sync.runner import cursor_key
    from tests.bench.dynamo_meter import DynamoMeter

    account = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    token = _token(base, account)
    overrides = Path(os.environ["BENCH_TMP"]) / f"overrides-{os.getpid()}.json"
    overrides.write_text(json.dumps(catalog_overrides(base)))
    spec = load_catalog(str(overrides)).get("google_calendar")
    db = aws.dynamodb()
    connections = ConnectionRepository(db, os.environ["TABLE_NAME"])
    connection = Connection(
        id=uuid.uuid4().hex,
        provider="google_calendar",
        level=Level.CLIENT,
        agency_id="agency-bench",
        client_id="client-bench",
        account=ExternalAccount(id=account, label=account),
    )
    connections.create(connection)
    mirror = DynamoMirror(db, os.environ["SYNC_TABLE_NAME"])
    published = _Published()

    def checkpoint(calendar_id: str, cursor: CalendarCursor) -> None:
        # What the runner's checkpoint does through the connections package: read, transition, save.
        current = connections.get(connection.id)
        assert current is not None
        current.cursor_saved(cursor_key(calendar_id), cursor.to_json(), _now())
        connections.save(current)

    adapter = GoogleCalendarAdapter(spec, connection.id, lambda: token)
    puller = CalendarPuller(mirror=mirror, pushed=mirror, publish=published, checkpoint=checkpoint)
    first = puller.pull(connection.id, "primary", adapter, CalendarCursor(), lambda: True)
    assert first.done and first.cursor.token, first
    _seed(base, account, events)

    meter = DynamoMeter()
    meter.attach(db)
    meter.reset()
    published.count = 0
    _trace_start(trace)
    started, cpu, servers = time.perf_counter(), time.process_time(), _server_cpu()
    result = puller.pull(connection.id, "primary", adapter, first.cursor, lambda: True)
    engine_seconds, engine_cpu = time.perf_counter() - started, time.process_time() - cpu
    moto_cpu, sandbox_cpu = (after - before for after, before in zip(_server_cpu(), servers, strict=True))
    engine_peak = _trace_stop(trace)
    assert result.done and published.count == events, (result, published.count)

    _trace_start(trace)
    started = time.perf_counter()
    floor_events = _floor(api_url(spec, "calendars/primary/events"), token, first.cursor.token)
    floor_seconds = time.perf_counter() - started
    floor_peak = _trace_stop(trace)
    assert floor_events == events, floor_events
    return PullRun(
        events=events,
        engine_seconds=engine_seconds,
        engine_cpu_seconds=engine_cpu,
        moto_cpu_seconds=moto_cpu,
        sandbox_cpu_seconds=sandbox_cpu,
        engine_events=published.count,
        engine_pages=result.pages,
        floor_seconds=floor_seconds,
        floor_events=floor_events,
        engine_peak=engine_peak,
        floor_peak=floor_peak,
        calls=dict(meter.calls),
        items_read=meter.items_read,
        read_units=meter.read_units,
        write_units=meter.write_units,
    )


def _server_cpu() -> tuple[float, float]:
    """CPU seconds used so far by moto's server and the sandbox (Linux /proc; 0 elsewhere)."""
    return _cpu_of(os.environ.get("BENCH_MOTO_PID")), _cpu_of(os.environ.get("BENCH_SANDBOX_PID"))


def _cpu_of(pid: str | None) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of stat(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _trace_start(trace: bool) -> None:
    if trace:
        tracemalloc.start()


def _trace_stop(trace: bool) -> int:
    if not trace:
        return 0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# --------------------------------------------------------------------------- the orchestrator


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # a server still starting on a busy machine
            time.sleep(0.2)
    raise TimeoutError(url)


@contextmanager
def _servers(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The sandbox and moto's server, each its own process; yields the sandbox URL and worker env."""
    moto_port, sandbox_port = _free_port(), _free_port()
    env = {**os.environ, **BENCH_ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/common")])}
    logs = (tmp / "servers.log").open("wb")
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        env=env,
        stdout=logs,
        stderr=logs,
    )
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "infra.local.sandbox", "--port", str(sandbox_port)],
        cwd=ROOT,
        env=env,
        stdout=logs,
        stderr=logs,
    )
    try:
        endpoint = f"http://127.0.0.1:{moto_port}"
        base = f"http://127.0.0.1:{sandbox_port}"
        _wait_for(endpoint, moto)
        _wait_for(base, sandbox)
        env["AWS_ENDPOINT_URL"] = endpoint
        env["BENCH_TMP"] = str(tmp)
        env["BENCH_MOTO_PID"], env["BENCH_SANDBOX_PID"] = str(moto.pid), str(sandbox.pid)
        env.update(_create_tables(env))
        yield base, env
    finally:
        for process in (sandbox, moto):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        logs.close()


def _create_tables(env: dict[str, str]) -> dict[str, str]:
    import boto3

    from infra.local.resources import create_resources, load_template

    session = boto3.Session(
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"]
    try:
        resources = create_resources(load_template(), stage=STAGE, session=session)
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL")
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
    return {
        **resources.environment(),
        "SYNC_TABLE_NAME": resources.tables["SyncTable"],
    }


def _worker(base: str, env: dict[str, str], events: int, trace: bool) -> PullRun:
    command = [sys.executable, "-m", "tests.bench.calendar_sync", base, str(events)]
    out = subprocess.run(
        [*command, "--trace"] if trace else command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker failed:\n{out.stdout}\n{out.stderr}")
    return PullRun(**json.loads(out.stdout.strip().splitlines()[-1]))


@functools.cache
def measure() -> tuple[PullRun, list[PullRun]]:
    """One throughput run (untraced) and one traced run per size in MEMORY_EVENTS."""
    with tempfile.TemporaryDirectory() as tmp, _servers(Path(tmp)) as (base, env):
        throughput = _worker(base, env, THROUGHPUT_EVENTS, trace=False)
        memory = [_worker(base, env, n, trace=True) for n in MEMORY_EVENTS]
    return throughput, memory


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f}"


def section() -> list[str]:
    """The RESULTS.md section."""
    from integrations.providers.google_calendar.sync import PAGE_SIZE

    run, memory = measure()
    small, page, large = memory[0], memory[1], memory[-1]
    ratio = large.engine_peak / small.engine_peak
    page_ratio = large.engine_peak / page.engine_peak
    floor_ratio = large.floor_peak / small.floor_peak
    floor_page_ratio = large.floor_peak / page.floor_peak
    cpu_rate = run.engine_events / run.engine_cpu_seconds
    return [
        "## Calendar sync through the sandbox: events per second per worker, and memory",
        "",
        "The provider sandbox and moto's DynamoDB server run as processes of their own; each measured"
        " pull runs in a fresh worker process. A run connects a new account through the sandbox's OAuth"
        " flow, pulls its empty calendar once (sync token T0), seeds the events with the sandbox's bulk"
        " seed route (one HTTP request; the sandbox's store is not touched directly), then pulls from T0"
        " with `CalendarPuller` + `GoogleCalendarAdapter` into `DynamoMirror` (the engine: diff against"
        " the mirror, publish to a counting sink, write the mirror, checkpoint the cursor on the"
        " connection through the repository after every page). The floor fetches the same pages"
        " (events.list from T0, following nextPageToken) with plain `requests` and `.json()`, one page"
        " held at a time. CPU seconds of each process during the engine's pull are read from /proc.",
        "",
        "| changed events | pages | engine wall (s) | engine events/s (target ≥ 2,000)"
        " | worker CPU (s) | events per worker CPU-second | moto server CPU (s) | sandbox CPU (s)"
        " | floor wall (s) | floor events/s | engine / floor time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {run.events:,} | {run.engine_pages} | {run.engine_seconds:.2f} | {run.engine_rate:,.0f}"
        f" ({_verdict(run.engine_rate >= TARGET_RATE)}) | {run.engine_cpu_seconds:.2f} | {cpu_rate:,.0f}"
        f" | {run.moto_cpu_seconds:.2f} | {run.sandbox_cpu_seconds:.2f} | {run.floor_seconds:.2f}"
        f" | {run.floor_rate:,.0f} | {run.engine_seconds / run.floor_seconds:.1f}x |",
        "",
        "### Peak memory of the worker (tracemalloc, one traced run per size)",
        "",
        "| changed events | pages | engine peak (MiB) | floor peak (MiB) |",
        "|---:|---:|---:|---:|",
        *[
            f"| {r.events:,} | {r.engine_pages} | {_mib(r.engine_peak)} | {_mib(r.floor_peak)} |"
            for r in memory
        ],
        f"| {large.events:,} vs {small.events:,} (target ≤ {TARGET_MEMORY_RATIO}x) | |"
        f" **{ratio:.2f}x** ({_verdict(ratio <= TARGET_MEMORY_RATIO)}) | {floor_ratio:.2f}x |",
        f"| {large.events:,} vs {page.events:,} (several full pages) | | {page_ratio:.2f}x"
        f" | {floor_page_ratio:.2f}x |",
        "",
        "### Why",
        "",
        f"- Throughput: the worker's own CPU handles {cpu_rate:,.0f} events per CPU-second. The wall"
        f" rate is lower because moto's server spent {run.moto_cpu_seconds:.1f} CPU-seconds emulating"
        f" the run's {sum(run.calls.values()):,} DynamoDB calls on the same two cores, and the worker"
        " waits for each answer (the mirror keeps four batches in flight). On DynamoDB that work is"
        " the service's, and the worker's wait is network latency, overlapped four batches at a time.",
        f"- Memory is bounded by the page, not the calendar: events.list pages hold up to {PAGE_SIZE:,}"
        f" events, so the {small.events:,}-event run holds a page of {small.events:,} and every larger"
        f" run a page of {PAGE_SIZE:,}. The floor grows by the same factor ({floor_ratio:.2f}x) between"
        f" {small.events:,} and {large.events:,}, and stays flat beyond a few full pages"
        f" ({floor_page_ratio:.2f}x). `CalendarPuller.pull` lets each page go before it fetches the next,"
        " so the engine holds one page, as the floor does.",
    ]


def _verdict(met: bool) -> str:
    return "meets" if met else "misses"


def main() -> None:
    parser = argparse.ArgumentParser(description="one measured worker run (see the module docstring)")
    parser.add_argument("base")
    parser.add_argument("events", type=int)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asdict(run_worker(args.base, args.events, args.trace))))


if __name__ == "__main__":
    main()
