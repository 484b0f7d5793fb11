"""DynamoDB calls and capacity per 1,000 changed events, from the calendar sync benchmark's run."""

from __future__ import annotations

from tests.bench import calendar_sync
from tests.bench.dynamo_meter import DynamoMeter


def section() -> list[str]:
    """The RESULTS.md section."""
    run, _ = calendar_sync.measure()
    per = run.events / 1000
    meter = DynamoMeter()
    meter.calls.update(run.calls)
    return [
        "## DynamoDB calls and capacity per 1,000 changed events",
        "",
        f"From the calendar sync benchmark's untraced run ({run.events:,} events added since the sync"
        f" token, {run.engine_pages} pages), counted through botocore's event hooks in the worker."
        " Capacity is computed by DynamoDB's rules from the items sent and received"
        " (tests/bench/dynamo_meter.py), since moto reports constants: a strongly consistent read of a"
        " key that is not there still costs 1 RCU; each mirror item costs 1 WCU in the table and 1 in"
        " its ByStart index. Publishing goes to EventBridge and is not in these numbers.",
        "",
        "| per 1,000 changed events | DynamoDB calls | RCU | WCU |",
        "|---|---|---:|---:|",
        f"| mirror diff, mirror write, cursor checkpoint | {meter.summary(per)}"
        f" ({meter.total_calls / per:.1f} calls) | {run.read_units / per:.0f}"
        f" | {run.write_units / per:.0f} |",
        "",
        "Per page: one consistent BatchGetItem per 100 events (the diff), one BatchWriteItem per 25"
        " (the mirror), and one GetItem + PutItem for the checkpoint.",
    ]
