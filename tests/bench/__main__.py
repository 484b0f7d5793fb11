"""Run the benchmarks and write tests/bench/RESULTS.md. Run with `make bench`.

`python -m tests.bench [NAME ...]` runs only the named benchmarks (see BENCHES) and rewrites only
their sections of RESULTS.md, keeping the others as they were.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import (
    availability,
    aws_calls,
    bcc,
    caldav_sync,
    calendar_sync,
    crm_import,
    gmail_inbound,
    imports,
    mirror_calls,
    scheduler,
)

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# Name → the function measuring it and returning its RESULTS.md section, in the file's order.
BENCHES: dict[str, Callable[[], list[str]]] = {
    "imports": imports.section,
    "aws_calls": aws_calls.section,
    "scheduler": scheduler.section,
    "calendar_sync": calendar_sync.section,
    "mirror_calls": mirror_calls.section,
    "bcc": bcc.section,
    "gmail_inbound": gmail_inbound.section,
    "availability": availability.section,
    "caldav_sync": caldav_sync.section,
    "crm_import": crm_import.section,
}
_MARK = re.compile(r"^<!-- bench:(\w+) -->$", re.MULTILINE)


def existing_sections(text: str) -> dict[str, str]:
    """The sections of a RESULTS.md by bench name (each starts at its marker)."""
    marks = list(_MARK.finditer(text))
    return {
        m.group(1): text[m.start() : marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip()
        for i, m in enumerate(marks)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHES)}")
    chosen = parser.parse_args().names or list(BENCHES)
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    sections = existing_sections(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in chosen:
        print(f"running {name} …", flush=True)
        started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        body = BENCHES[name]()
        sections[name] = "\n".join([f"<!-- bench:{name} -->", body[0], "", f"Measured {started}.", *body[1:]])
    lines = [
        "# Benchmarks",
        "",
        f"On {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores."
        " Regenerate with `make bench`, or one section with `python -m tests.bench NAME`"
        f" ({', '.join(BENCHES)}).",
    ]
    for name in BENCHES:
        if name in sections:
            lines += ["", sections[name]]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
