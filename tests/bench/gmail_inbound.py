"""Gmail inbound through the sandbox: messages per second per worker, and memory.

As tests/bench/calendar_sync.py: the provider sandbox and moto's DynamoDB each run as a server process
of their own, and every measured pull runs in a fresh worker process (`python -m
tests.bench.gmail_inbound BASE MESSAGES [--trace]`), so the worker's memory is its own.

A run: connect a Gmail account through the sandbox's OAuth flow (gmail.modify), take the mailbox's
history id (T0), put one contact in the client's address directory (DynamoDB), then let MESSAGES mails
arrive through the person-acts route `/_sandbox/gmail/receive` (every other one from the contact, the
rest from strangers). The engine pulls from T0 with `MailboxPuller` + the Gmail adapter + `MailPublisher`:
history.list pages, messages.get (`format=full`) per message, the privacy rule against the directory,
`Email Received` published once through the delivery ledger (DynamoDB) to a counting sink, the cursor
checkpointed on the connection after every page. The CRM logger is a counting stand-in: logging is
the CRM's latency, measured with the CRM steps. The floor reads the same history pages and the same
messages (messages.get `format=full`, `.json()`) with plain `requests`.

Sizes: `BENCH_GMAIL_MESSAGES` (default 2000) for throughput, `BENCH_GMAIL_MEMORY` (default
"200,2000") for the traced runs; set them small while developing.
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.bench.calendar_sync import ROOT, _cpu_of, _servers, _trace_start, _trace_stop

CONTACT = "kim@client.example"
GMAIL_SCOPES = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/gmail.modify",
]


@dataclass(frozen=True, slots=True)
class MailRun:
    """What one worker process measured."""

    messages: int
    published: int
    logged: int
    pages: int
    engine_seconds: float
    engine_cpu_seconds: float
    moto_cpu_seconds: float
    sandbox_cpu_seconds: float
    floor_seconds: float
    floor_messages: int
    engine_peak: int
    floor_peak: int

    @property
    def engine_rate(self) -> float:
        return self.messages / self.engine_seconds

    @property
    def floor_rate(self) -> float:
        return self.floor_messages / self.floor_seconds


# --------------------------------------------------------------------------- the worker process


class _Counted:
    """The bus and the CRM logger stand in as counters."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, events: Sequence[Any]) -> None:
        self.count += len(events)

    def log(self, entry: Any) -> Sequence[Any]:
        self.count += 1
        return []


def _token(base: str, account: str) -> str:
    from infra.local.sandbox import SandboxApp
    from tests.support.sandbox import Sandbox, callback_params, decide, exchange, start_authorization

    sandbox = Sandbox(base=base, app=SandboxApp.__new__(SandboxApp))
    sandbox.http.trust_env = False
    auth = start_authorization(sandbox, "google", scopes=GMAIL_SCOPES)
    code = callback_params(decide(sandbox, auth, account=account))["code"]
    answer = exchange(sandbox, "google", code, verifier=auth.verifier)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _seed(base: str, account: str, count: int) -> None:
    """Mail arrives as people write it: every other one from the contact, the rest from strangers."""
    import requests

    session = requests.Session()
    session.trust_env = False
    for i in range(count):
        sender = CONTACT if i % 2 == 0 else f"stranger-{i}@elsewhere.example"
        text = "Numbers attached.\n" * 20
        body = {"account": account, "from": sender, "subject": f"Mail {i}", "text": text}
        session.post(f"{base}/_sandbox/gmail/receive", json=body, timeout=30).raise_for_status()


def _floor(base: str, token: str, start: str) -> int:
    """history.list from `start` to its last page, and messages.get for each message, with requests."""
    import requests

    from integrations.providers.gmail.sync import PAGE_SIZE

    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token}"
    api = f"{base}/google/gmail/v1/users/me"
    params: dict[str, Any] = {
        "startHistoryId": start,
        "historyTypes": "messageAdded",
        "maxResults": PAGE_SIZE,
    }
    read = 0
    while True:
        answer = session.get(f"{api}/history", params=params, timeout=60)
        answer.raise_for_status()
        page = answer.json()
        ids = [a["message"]["id"] for h in page.get("history", []) for a in h.get("messagesAdded", [])]
        for message_id in dict.fromkeys(ids):
            got = session.get(f"{api}/messages/{message_id}", params={"format": "full"}, timeout=60)
            got.raise_for_status()
            got.json()
            read += 1
        next_page = page.get("nextPageToken")
        del answer, page
        if not next_page:
            return read
        params["pageToken"] = next_page


def run_worker(base: str, messages: int, trace: bool) -> MailRun:
    """One measured run in this process (see the module docstring)."""
    from datetime import UTC, datetime

    from infra.local.sandbox import catalog_overrides
    from integrations import aws
    from integrations.catalog import load_catalog
    from integrations.config import Settings
    from integrations.domain.access import Level
    from integrations.domain.connection import Connection, ExternalAccount
    from integrations.providers.gmail.sync import GmailMailbox
    from integrations.store.connections import ConnectionRepository
    from integrations.store.delivery_ledger import DynamoDeliveryLedger
    from integrations.store.mail_contacts import DynamoMailContacts
    from integrations.sync.mail import MAIL_CURSOR, MailboxPuller, MailCursor
    from integrations.sync.mail_events import MailPublisher
    from integrations.sync.steps import publish_once

    account = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    token = _token(base, account)
    overrides = Path(os.environ["BENCH_TMP"]) / f"overrides-{os.getpid()}.json"
    overrides.write_text(json.dumps(catalog_overrides(base)))
    spec = load_catalog(str(overrides)).get("gmail")
    settings = Settings.from_env()
    db = aws.dynamodb()
    connections = ConnectionRepository(db, settings.table_name)
    connection = Connection(
        id=uuid.uuid4().hex,
        provider="gmail",
        level=Level.USER,
        agency_id="agency-bench",
        client_id="client-bench",
        user_id="user-bench",
        account=ExternalAccount(id=account, label=account),
    )
    connections.create(connection)
    contacts = DynamoMailContacts(db, settings.sync_table_name)
    contacts.set_contact("agency-bench", "client-bench", CONTACT, "contact-kim")
    ledger = DynamoDeliveryLedger(db, settings.state_table_name)
    published, logged = _Counted(), _Counted()

    def now() -> datetime:
        return datetime.now(UTC)

    def checkpoint(cursor: MailCursor) -> None:
        # What the worker's checkpoint does through the connections package: read, transition, save.
        current = connections.get(connection.id)
        assert current is not None
        current.cursor_saved(MAIL_CURSOR, cursor.to_json(), now())
        connections.save(current)

    adapter = GmailMailbox(spec, connection, lambda: token)
    start = adapter.current_cursor()
    _seed(base, account, messages)
    publisher = MailPublisher(
        connection=connection,
        contacts=contacts,
        logger=logged,
        publish_once=lambda key, events: publish_once(ledger, published, connection, now(), key, events),
    )
    puller = MailboxPuller(deliver=publisher.deliver, checkpoint=checkpoint, clock=now)

    _trace_start(trace)
    servers = _server_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    result = puller.pull(adapter, MailCursor(cursor=start), lambda: True)
    engine_seconds, engine_cpu = time.perf_counter() - started, time.process_time() - cpu
    moto_cpu, sandbox_cpu = (after - before for after, before in zip(_server_cpu(), servers, strict=True))
    engine_peak = _trace_stop(trace)
    from_contact = (messages + 1) // 2
    assert result.done and published.count == from_contact == logged.count, (result, published.count)

    _trace_start(trace)
    started = time.perf_counter()
    floor_messages = _floor(base, token, start)
    floor_seconds = time.perf_counter() - started
    floor_peak = _trace_stop(trace)
    assert floor_messages == messages, floor_messages
    return MailRun(
        messages=messages,
        published=published.count,
        logged=logged.count,
        pages=result.pages,
        engine_seconds=engine_seconds,
        engine_cpu_seconds=engine_cpu,
        moto_cpu_seconds=moto_cpu,
        sandbox_cpu_seconds=sandbox_cpu,
        floor_seconds=floor_seconds,
        floor_messages=floor_messages,
        engine_peak=engine_peak,
        floor_peak=floor_peak,
    )


def _server_cpu() -> tuple[float, float]:
    return _cpu_of(os.environ.get("BENCH_MOTO_PID")), _cpu_of(os.environ.get("BENCH_SANDBOX_PID"))


# --------------------------------------------------------------------------- the orchestrator


def _worker(base: str, env: dict[str, str], messages: int, trace: bool) -> MailRun:
    command = [sys.executable, "-m", "tests.bench.gmail_inbound", base, str(messages)]
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
    return MailRun(**json.loads(out.stdout.strip().splitlines()[-1]))


@functools.cache
def measure() -> tuple[MailRun, list[MailRun]]:
    """One throughput run (untraced) and one traced run per memory size."""
    count = int(os.environ.get("BENCH_GMAIL_MESSAGES", "2000"))
    sizes = [int(n) for n in os.environ.get("BENCH_GMAIL_MEMORY", "200,2000").split(",")]
    with tempfile.TemporaryDirectory() as tmp, _servers(Path(tmp)) as (base, env):
        throughput = _worker(base, env, count, trace=False)
        memory = [_worker(base, env, n, trace=True) for n in sizes]
    return throughput, memory


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f}"


def section() -> list[str]:
    """The RESULTS.md section."""
    from integrations.providers.gmail.sync import PAGE_SIZE

    run, memory = measure()
    small, large = memory[0], memory[-1]
    return [
        "## Gmail inbound through the sandbox: messages per second per worker, and memory",
        "",
        "The provider sandbox and moto's DynamoDB server run as processes of their own; each measured"
        " pull runs in a fresh worker process. A run connects a new Gmail account through the sandbox's"
        " OAuth flow, takes its history id, puts one contact in the client's address directory, and lets"
        " the mails arrive through `/_sandbox/gmail/receive` (every other one from the contact, the rest"
        " from strangers). The engine pulls from that history id with `MailboxPuller` + the Gmail adapter"
        " + `MailPublisher`: history.list pages, messages.get (`format=full`) per message, the privacy"
        " rule against the directory, `Email Received` published once through the delivery ledger to a"
        " counting sink, the cursor checkpointed on the connection after every page. The CRM logger is a"
        " counting stand-in (the CRM's latency is not this path's). The floor reads the same history"
        " pages and messages with plain `requests` and `.json()`.",
        "",
        "| messages | from the contact (published, handed to the logger) | history pages | engine wall (s)"
        " | engine messages/s | worker CPU (s) | moto server CPU (s) | sandbox CPU (s) | floor wall (s)"
        " | floor messages/s | engine / floor time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {run.messages:,} | {run.published:,} | {run.pages} | {run.engine_seconds:.2f}"
        f" | {run.engine_rate:,.0f} | {run.engine_cpu_seconds:.2f} | {run.moto_cpu_seconds:.2f}"
        f" | {run.sandbox_cpu_seconds:.2f} | {run.floor_seconds:.2f} | {run.floor_rate:,.0f}"
        f" | {run.engine_seconds / run.floor_seconds:.1f}x |",
        "",
        "### Peak memory of the worker (tracemalloc, one traced run per size)",
        "",
        "| messages | history pages | engine peak (MiB) | floor peak (MiB) |",
        "|---:|---:|---:|---:|",
        *[f"| {r.messages:,} | {r.pages} | {_mib(r.engine_peak)} | {_mib(r.floor_peak)} |" for r in memory],
        "",
        f"history.list pages hold up to {PAGE_SIZE:,} records; a page's messages are read, then decided"
        " and published together, and let go before the next page, so the engine's peak follows the"
        " page, not the mailbox:"
        f" {large.engine_peak / small.engine_peak:.2f}x from {small.messages:,} to {large.messages:,}"
        f" messages (the floor: {large.floor_peak / small.floor_peak:.2f}x).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="one measured worker run (see the module docstring)")
    parser.add_argument("base")
    parser.add_argument("messages", type=int)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asdict(run_worker(args.base, args.messages, args.trace))))


if __name__ == "__main__":
    main()
