"""Incremental iCloud (CalDAV) sync against Radicale into the mirror: throughput, memory, floor.

Three processes: Radicale (infra.local.radicale, the CalDAV server the tests and `make dev` run) and
moto's DynamoDB each run as a server of their own, and every measured pass runs in a fresh worker
process (`python -m tests.bench.caldav_sync worker ...`), so tracemalloc sees the worker's memory only.

A run: make a calendar, pull it empty once through the engine (the sync-token T0), add EVENTS events,
then pull from T0 with `CalendarPuller` + `CalDavCalendarAdapter` into `DynamoMirror`, checkpointing on
the connection after every page. The floor sends the same REPORTs with plain `requests` and parses them
with caldav's `DAVResponse`: the sync-collection from T0, then calendar-multiget REPORTs of the changed
hrefs, PAGE_SIZE at a time (the bodies are the product of a pass; iCalendar is not parsed).

Seeding: Radicale's PUT checks every event of the collection for a duplicate UID, so N PUTs cost
O(N²) (tens of minutes for 10,000 on this machine). The worker writes the same iCalendar files into the
collection's folder of Radicale's storage (where a PUT puts them), then one unmeasured sync-collection
from T0 lets Radicale build its item and history caches, as its PUTs and the first client would have.
The engine's and the floor's passes then meet the same warm server.

BENCH_CALDAV_EVENTS sets the larger size (default 10,000), BENCH_CALDAV_SMALL the smaller (1,000).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.availability import _moto
from tests.bench.calendar_sync import ROOT, _cpu_of, _free_port, _now, _trace_start, _trace_stop, _wait_for

USER = "bench"
# The calendar sync target per worker (tests/bench/calendar_sync.py), for every calendar provider.
TARGET_RATE = 2_000
FIRST = datetime(2031, 3, 3, 8, tzinfo=UTC)


def sizes() -> tuple[int, int]:
    return int(os.environ.get("BENCH_CALDAV_SMALL", "1000")), int(
        os.environ.get("BENCH_CALDAV_EVENTS", "10000")
    )


@dataclass(frozen=True, slots=True)
class CalDavRun:
    """What one worker process measured."""

    events: int
    engine_seconds: float
    engine_cpu_seconds: float
    radicale_cpu_seconds: float
    moto_cpu_seconds: float
    engine_events: int
    engine_pages: int
    reports: int
    floor_seconds: float
    floor_listing_seconds: float
    floor_events: int
    floor_reports: int
    engine_peak: int
    floor_peak: int
    calls: dict[str, int]

    @property
    def engine_rate(self) -> float:
        return self.engine_events / self.engine_seconds

    @property
    def floor_rate(self) -> float:
        return self.floor_events / self.floor_seconds


# --------------------------------------------------------------------------- the worker process


class _Published:
    """The bus stands in as a counter: publishing is EventBridge's cost."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, changes: Sequence[Any]) -> None:
        self.count += len(changes)


def _ics(uid: str, i: int) -> str:
    start = FIRST + timedelta(minutes=30 * i)
    stamp = "%Y%m%dT%H%M%SZ"
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Apple Inc.//macOS 15.0//EN",
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20310101T000000Z",
            f"DTSTART:{start:{stamp}}",
            f"DTEND:{start + timedelta(minutes=30):{stamp}}",
            f"SUMMARY:Meeting {i} with a client about the quarterly plan",
            "LOCATION:Office",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )


def _http() -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False
    session.auth = (USER, "")
    return session


def _make_calendar(base: str, slug: str) -> str:
    from infra.local.radicale import _mkcalendar_body

    http = _http()
    home = f"{base}/{USER}/"
    if http.request("PROPFIND", home, headers={"Depth": "0"}, timeout=30).status_code == 404:
        http.request("MKCOL", home, timeout=30).raise_for_status()
    url = f"{home}{slug}/"
    http.request(
        "MKCALENDAR",
        url,
        data=_mkcalendar_body(slug).encode(),
        headers={"Content-Type": "application/xml; charset=utf-8"},
        timeout=30,
    ).raise_for_status()
    return url


def _seed(folder: Path, slug: str, count: int) -> None:
    """The events' files where Radicale's PUT writes them (see the module docstring)."""
    collection = folder / "collection-root" / USER / slug
    for i in range(count):
        uid = f"bench-{i:06d}-{uuid.uuid4().hex[:8]}"
        (collection / f"{uid}.ics").write_text(_ics(uid, i), newline="")


def _report(http: Any, url: str, body: str) -> Any:
    from caldav.davclient import DAVResponse

    answer = http.request(
        "REPORT",
        url,
        data=body.encode(),
        headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
        timeout=600,
    )
    assert answer.status_code == 207, answer.status_code
    return DAVResponse(answer)


def _listing(http: Any, url: str, token: str) -> list[str]:
    """The sync-collection REPORT from `token`: the changed hrefs (what the adapter lists)."""
    from integrations.providers.icloud_calendar.sync import _same_path, _sync_collection

    parsed = _report(http, url, _sync_collection(token))
    return [href for href in parsed.find_objects_and_props() if not _same_path(href, url)]


def _floor(url: str, token: str) -> tuple[int, int, float]:
    """The same REPORTs with plain requests and caldav's parser: (bodies, REPORTs, listing seconds)."""
    from integrations.providers.icloud_calendar.sync import _CALDAV, PAGE_SIZE, _multiget

    http = _http()
    started = time.perf_counter()
    hrefs = sorted(_listing(http, url, token))
    listed = time.perf_counter() - started
    bodies, reports = 0, 1
    for first in range(0, len(hrefs), PAGE_SIZE):
        parsed = _report(http, url, _multiget(hrefs[first : first + PAGE_SIZE]))
        reports += 1
        bodies += sum(
            1
            for props in parsed.find_objects_and_props().values()
            if props.get(f"{_CALDAV}calendar-data") is not None
        )
        del parsed  # one page at a time, as the engine holds it
    return bodies, reports, listed


class _CountingReports:
    """Counts the REPORTs the adapter sends (its `_request`, wrapped)."""

    def __init__(self, adapter: Any) -> None:
        self.count = 0
        inner = adapter._request

        def request(url: str, method: str, body: str, headers: dict[str, str]) -> Any:
            self.count += method == "REPORT"
            return inner(url, method, body, headers)

        adapter._request = request


def run_worker(base: str, folder: Path, events: int, trace: bool) -> CalDavRun:
    """One measured run in this process (see the module docstring)."""
    from pydantic import SecretStr

    from integrations import aws
    from integrations.catalog import load_catalog
    from integrations.domain.access import Level
    from integrations.domain.connection import Connection, ExternalAccount
    from integrations.domain.credentials import Credentials
    from integrations.providers.icloud_calendar.sync import CalDavCalendarAdapter
    from integrations.store.connections import ConnectionRepository
    from integrations.store.mirror import DynamoMirror
    from integrations.sync.calendar_sync import CalendarCursor, CalendarPuller
    from integrations.sync.runner import cursor_key
    from tests.bench.dynamo_meter import DynamoMeter

    slug = uuid.uuid4().hex[:12]
    url = _make_calendar(base, slug)
    spec = load_catalog("").get("icloud_calendar").model_copy(update={"urls": {"caldav": f"{base}/"}})
    credentials = Credentials(secrets={"app_password": SecretStr("")}, extra={"username": USER})
    db = aws.dynamodb()
    connections = ConnectionRepository(db, os.environ["TABLE_NAME"])
    connection = Connection(
        id=uuid.uuid4().hex,
        provider="icloud_calendar",
        level=Level.USER,
        agency_id="agency-bench",
        client_id="client-bench",
        user_id="user-bench",
        account=ExternalAccount(id=USER, label=USER),
        config={"calendar_url": url},
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

    adapter = CalDavCalendarAdapter(spec, connection.id, lambda: credentials)
    puller = CalendarPuller(mirror=mirror, pushed=mirror, publish=published, checkpoint=checkpoint)
    first = puller.pull(connection.id, url, adapter, CalendarCursor(), lambda: True)
    assert first.done and first.cursor.token, first
    _seed(folder, slug, events)
    assert len(_listing(_http(), url, first.cursor.token)) == events  # warms Radicale's caches

    reports = _CountingReports(adapter)
    meter = DynamoMeter()
    meter.attach(db)
    meter.reset()
    published.count = 0
    radicale_pid, moto_pid = os.environ["BENCH_RADICALE_PID"], os.environ["BENCH_MOTO_PID"]
    radicale_cpu, moto_cpu = _cpu_of(radicale_pid), _cpu_of(moto_pid)
    _trace_start(trace)
    started, cpu = time.perf_counter(), time.process_time()
    result = puller.pull(connection.id, url, adapter, first.cursor, lambda: True)
    engine_seconds, engine_cpu = time.perf_counter() - started, time.process_time() - cpu
    engine_peak = _trace_stop(trace)
    radicale_cpu, moto_cpu = _cpu_of(radicale_pid) - radicale_cpu, _cpu_of(moto_pid) - moto_cpu
    assert result.done and published.count == events, (result, published.count)

    _trace_start(trace)
    started = time.perf_counter()
    floor_events, floor_reports, listed = _floor(url, first.cursor.token)
    floor_seconds = time.perf_counter() - started
    floor_peak = _trace_stop(trace)
    assert floor_events == events, floor_events
    return CalDavRun(
        events=events,
        engine_seconds=engine_seconds,
        engine_cpu_seconds=engine_cpu,
        radicale_cpu_seconds=radicale_cpu,
        moto_cpu_seconds=moto_cpu,
        engine_events=published.count,
        engine_pages=result.pages,
        reports=reports.count,
        floor_seconds=floor_seconds,
        floor_listing_seconds=listed,
        floor_events=floor_events,
        floor_reports=floor_reports,
        engine_peak=engine_peak,
        floor_peak=floor_peak,
        calls=dict(meter.calls),
    )


def serve_radicale(port: int, folder: Path) -> None:
    """Radicale on 127.0.0.1:`port` with its storage in `folder`, until terminated."""
    from infra.local.radicale import RadicaleServer

    RadicaleServer(folder, port=port).start()
    while True:
        time.sleep(3600)


# --------------------------------------------------------------------------- the orchestrator


@contextmanager
def _servers(tmp: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """moto's server and Radicale, each its own process; yields Radicale's URL, its folder, the env."""
    port, folder = _free_port(), tmp / "radicale"
    folder.mkdir()
    with _moto(tmp) as env, (tmp / "radicale.log").open("wb") as log:
        radicale = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.caldav_sync", "radicale", str(port), str(folder)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for(base, radicale)
            env["BENCH_RADICALE_PID"] = str(radicale.pid)
            yield base, folder, env
        finally:
            radicale.terminate()
            try:
                radicale.wait(timeout=10)
            except subprocess.TimeoutExpired:
                radicale.kill()
                radicale.wait(timeout=10)


def _worker(base: str, folder: Path, env: dict[str, str], events: int, trace: bool) -> CalDavRun:
    command = [sys.executable, "-m", "tests.bench.caldav_sync", "worker", base, str(folder), str(events)]
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
    return CalDavRun(**json.loads(out.stdout.strip().splitlines()[-1]))


@functools.cache
def measure() -> tuple[CalDavRun, list[CalDavRun]]:
    """One throughput run (untraced) at the larger size, and one traced run per size."""
    small, large = sizes()
    with tempfile.TemporaryDirectory() as tmp, _servers(Path(tmp)) as (base, folder, env):
        throughput = _worker(base, folder, env, large, trace=False)
        memory = [_worker(base, folder, env, n, trace=True) for n in (small, large)]
    return throughput, memory


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f}"


def _verdict(met: bool) -> str:
    return "meets" if met else "misses"


def section() -> list[str]:
    """The RESULTS.md section."""
    from integrations.providers.icloud_calendar.sync import PAGE_SIZE

    run, memory = measure()
    small, large = memory
    ratio = large.engine_peak / small.engine_peak
    floor_ratio = large.floor_peak / small.floor_peak
    sized = (
        ""
        if (small.events, large.events) == (1_000, 10_000)
        else f" (BENCH_CALDAV_SMALL={small.events}, BENCH_CALDAV_EVENTS={large.events})"
    )
    return [
        "## iCloud (CalDAV) incremental sync against Radicale: events per second, and memory",
        "",
        "Radicale (infra.local.radicale) and moto's DynamoDB server run as processes of their own; each"
        " measured pass runs in a fresh worker process. A run makes a calendar, pulls it empty once"
        " through the engine (sync-token T0), adds the events, then pulls from T0 with `CalendarPuller`"
        " + `CalDavCalendarAdapter` into `DynamoMirror` (diff against the mirror, publish to a counting"
        " sink, write the mirror, checkpoint the cursor on the connection after every page). The floor"
        " sends the same REPORTs with plain `requests`, parsed by caldav's `DAVResponse`: the"
        f" sync-collection from T0, then calendar-multiget REPORTs of {PAGE_SIZE} hrefs (no iCalendar"
        " parsing). The events are written as files into the collection's folder of Radicale's"
        " storage, where its PUT writes them (its PUT checks every event for a duplicate UID, so"
        " seeding by PUT is quadratic), and one unmeasured sync-collection from T0 then warms"
        f" Radicale's caches for both passes{sized}. CPU seconds of each process during the engine's"
        " pass are read from /proc.",
        "",
        "| changed events | pages | REPORTs (engine / floor) | engine wall (s) | engine events/s"
        f" (target ≥ {TARGET_RATE:,}) | worker CPU (s) | Radicale CPU (s) | moto CPU (s)"
        " | floor wall (s) | floor sync-collection (s) | floor events/s | engine / floor time |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {run.events:,} | {run.engine_pages} | {run.reports} / {run.floor_reports}"
        f" | {run.engine_seconds:.2f} | {run.engine_rate:,.0f} ({_verdict(run.engine_rate >= TARGET_RATE)})"
        f" | {run.engine_cpu_seconds:.2f} | {run.radicale_cpu_seconds:.2f} | {run.moto_cpu_seconds:.2f}"
        f" | {run.floor_seconds:.2f} | {run.floor_listing_seconds:.2f} | {run.floor_rate:,.0f}"
        f" | {run.engine_seconds / run.floor_seconds:.1f}x |",
        "",
        "### Peak memory of the worker (tracemalloc, a fresh process per size)",
        "",
        "| changed events | pages | engine peak (MiB) | floor peak (MiB) |",
        "|---:|---:|---:|---:|",
        *[
            f"| {r.events:,} | {r.engine_pages} | {_mib(r.engine_peak)} | {_mib(r.floor_peak)} |"
            for r in memory
        ],
        f"| {large.events:,} vs {small.events:,} | | **{ratio:.2f}x** | {floor_ratio:.2f}x |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Radicale, or one measured worker run (see the module docstring)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    radicale = commands.add_parser("radicale")
    radicale.add_argument("port", type=int)
    radicale.add_argument("folder", type=Path)
    worker = commands.add_parser("worker")
    worker.add_argument("base")
    worker.add_argument("folder", type=Path)
    worker.add_argument("events", type=int)
    worker.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.command == "radicale":
        serve_radicale(args.port, args.folder)
    else:
        print(json.dumps(asdict(run_worker(args.base, args.folder, args.events, args.trace))))


if __name__ == "__main__":
    main()
