"""Each function's cold import beside the `import boto3` floor, in fresh interpreters."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = 7
FUNCTIONS = ["connectors", "oauth", "internal", "webhooks", "sync_scheduler", "sync_worker"]
ENV = {
    **os.environ,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "1",
    # What template.yaml's Globals set: each function validates its settings at import.
    "STAGE": "bench",
    "TABLE_NAME": "integrations-bench-main",
    "STATE_TABLE_NAME": "integrations-bench-state",
    "SYNC_TABLE_NAME": "integrations-bench-sync",
    "EVENT_BUS_NAME": "integrations-bench",
    "SYNC_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/integrations-bench-sync",
    "KMS_KEY_ID": "alias/integrations-bench",
    "PUBLIC_API_URL": "https://api.example.com",
}


def cold_import_ms(folder: Path | None, statement: str) -> float:
    """Median wall time of a fresh interpreter running `statement` (interpreter start-up subtracted)."""
    code = "import time,sys;t=time.perf_counter();" + statement + ";print((time.perf_counter()-t)*1000)"
    env = dict(ENV)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(folder) if folder else "", str(ROOT / "layers/common")])
    )
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=folder or ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def section() -> list[str]:
    """The RESULTS.md section."""
    floor = cold_import_ms(None, "import boto3")
    rows = []
    for name in FUNCTIONS:
        folder = ROOT / "functions" / name
        if not (folder / "app.py").exists():
            continue
        rows.append((name, cold_import_ms(folder, "import app")))
    lines = [
        "## Cold import of each handler",
        "",
        f"Median of {RUNS} fresh interpreters.",
        "",
        "| function | import app (ms) | over `import boto3` floor (ms) |",
        "|---|---:|---:|",
        f"| (floor) `import boto3` | {floor:.0f} | 0 |",
    ]
    lines += [f"| {name} | {ms:.0f} | {ms - floor:+.0f} |" for name, ms in rows]
    return lines
