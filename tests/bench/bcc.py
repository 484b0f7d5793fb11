"""BCC logging: messages parsed and logged per second, and peak memory for a large message.

The inbound path (integrations/mail/inbound.py) runs with in-memory ports: routing by lookup, a
stored-mail source that serves at most the read limit (as the S3 adapter's ranged GET does) and a
logger that records. So the numbers are the function's own work (parsing, deciding, building the
entry), without S3, DynamoDB or CRM latency.

Sizes: `BENCH_BCC_MESSAGES` (default 2000), `BENCH_BCC_LARGE_MB` (default 20), `BENCH_BCC_SMALL_KB`
(default 20); set them small while developing.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from email.message import EmailMessage

from integrations.mail.inbound import READ_LIMIT
from integrations.mail.message import parse_mail
from tests.unit.test_inbound_mail import DOMAIN, World, connection, ses_event

ADDRESS = f"log-aaaa@{DOMAIN}"


def message(size: int, index: int = 0) -> bytes:
    """A mail from the owner to a contact with a text body and an attachment making up `size` bytes."""
    mail = EmailMessage()
    mail["From"] = "Sam Rivera <sam@agency.example>"
    mail["To"] = "Kim Lee <kim@client.example>"
    mail["Subject"] = f"Pricing for next quarter #{index}"
    mail["Message-ID"] = f"<bench.{index}@agency.example>"
    mail.set_content("Here are the numbers.\n" * 20)
    attachment = max(0, (size - 2_000) * 3 // 4)  # base64 grows it by a third
    if attachment:
        mail.add_attachment(b"\0" * attachment, maintype="application", subtype="pdf", filename="quote.pdf")
    return mail.as_bytes()


def throughput(count: int, size: int) -> float:
    """Messages handled (read, parsed, decided, logged) per second."""
    world = World(connection("log-aaaa"))
    raws = [message(size, i) for i in range(count)]
    for i, raw in enumerate(raws):
        world.raw.objects[("mail-bucket", f"inbound/m{i}")] = raw
    events = [ses_event([ADDRESS], message_id=f"m{i}") for i in range(count)]
    started = time.perf_counter()
    for event in events:
        world.inbound.receive(event)
    elapsed = time.perf_counter() - started
    assert len(world.logger.entries) == count
    return count / elapsed


def peak(raw: bytes, *, capped: bool) -> int:
    """Peak bytes allocated while one message is handled (capped) or parsed whole (uncapped)."""
    world = World(connection("log-aaaa"))
    world.raw.objects[("mail-bucket", "inbound/one")] = raw
    event = ses_event([ADDRESS], message_id="one")
    tracemalloc.start()
    try:
        if capped:
            world.inbound.receive(event)
        else:
            parse_mail(raw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def section() -> list[str]:
    """The RESULTS.md section."""
    count = int(os.environ.get("BENCH_BCC_MESSAGES", "2000"))
    large = int(float(os.environ.get("BENCH_BCC_LARGE_MB", "20")) * 1_000_000)
    small = int(float(os.environ.get("BENCH_BCC_SMALL_KB", "20")) * 1_000)
    rate = throughput(count, small)
    big, little = message(large), message(small)
    rows = [
        (f"{len(little) / 1000:,.0f} kB", peak(little, capped=True), peak(little, capped=False)),
        (f"{len(big) / 1_000_000:,.1f} MB", peak(big, capped=True), peak(big, capped=False)),
    ]
    return [
        "## BCC logging: throughput and memory",
        "",
        f"The inbound path with in-memory ports (tests/bench/bcc.py): {count:,} messages of"
        f" {len(little) / 1000:,.0f} kB handled (read, parsed, routed, owner addresses, logged) at"
        f" **{rate:,.0f} messages per second** on one core.",
        "",
        f"Peak memory (tracemalloc) for one message: handled as the function does (read up to"
        f" {READ_LIMIT / 1_000_000:g} MB, header fields cut) against parsed whole.",
        "",
        "| message | handled (capped read) | parsed whole |",
        "|---|---:|---:|",
        *(
            f"| {label} | {capped / 1_000_000:,.1f} MB | {whole / 1_000_000:,.1f} MB |"
            for label, capped, whole in rows
        ),
    ]
