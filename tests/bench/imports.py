"""Each function's cold start as a ratio of the boto3 floor, in paired fresh interpreters.

Cold start: a fresh interpreter imports the handler and creates the DynamoDB client it needs (so a
client deferred to the first request is still counted), against one running
`import boto3; boto3.client("dynamodb")`. Each pair runs back to back (alternating which goes first)
and gives one ratio; the median ratio is reported, so load on a shared machine cancels out.

First answer: the same, plus the first invocation of a sample event from events/ against AWS
emulated by moto's server in another process, against the floor plus one GetItem.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = 9
# Function folder → its sample event (events/), the first request measured.
FUNCTIONS = {
    "connectors": "connectors_get_me.json",
    "oauth": "oauth_start.json",
    "internal": "internal_availability.json",
    "webhooks": "webhook_ghl.json",
    "sync_scheduler": "sync_scheduler_tick.json",
    "sync_worker": "sync_worker_sqs_batch.json",
    "inbound_mail": "inbound_mail_ses.json",
}
# Ceilings on each function's cold start, as a multiple of the floor: 1.3x, and 1.15x for the webhook
# receiver, which providers wait on and which must answer within their timeouts.
LIMITS = {"webhooks": 1.15}
DEFAULT_LIMIT = 1.3
BASE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "Integrations",
    # What template.yaml's Globals set: each function validates its settings at import.
    "STAGE": "bench",
    "TABLE_NAME": "integrations-bench-main",
    "STATE_TABLE_NAME": "integrations-bench-state",
    "SYNC_TABLE_NAME": "integrations-bench-sync",
    "EVENT_BUS_NAME": "integrations-bench",
    "SYNC_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/integrations-bench-sync",
    "KMS_KEY_ID": "alias/integrations-bench",
    "PUBLIC_API_URL": "https://api.example.com",
    # As template.yaml's Globals: pydantic skips its scan of installed packages for plugins.
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
}
FLOOR = 'import boto3;c=boto3.client("dynamodb")'
FLOOR_ANSWER = FLOOR + ';c.get_item(TableName=os.environ["TABLE_NAME"],Key={"pk":{"S":"x"},"sk":{"S":"x"}})'
HANDLER = "import app;from integrations import aws;aws.dynamodb()"
# Stands in for the Lambda context Powertools reads.
_CONTEXT = (
    "ctx=types.SimpleNamespace(function_name='bench',memory_limit_in_mb=512,aws_request_id='r-1',"
    "invoked_function_arn='arn:aws:lambda:us-east-1:123456789012:function:bench',"
    "get_remaining_time_in_millis=lambda:29000)"
)


def _env(folder: Path | None, extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))
    }
    env.update(BASE_ENV)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder or ""), str(ROOT / "layers/common")]))
    return env


def timed_ms(folder: Path | None, statement: str, extra: Mapping[str, str], setup: str = "") -> float:
    """Wall time of `statement` in a fresh interpreter (start-up and `setup` not counted)."""
    code = (
        "import os,sys,time,json,types;"
        + (setup + ";" if setup else "")
        + "t=time.perf_counter();"
        + statement
        + ";print((time.perf_counter()-t)*1000)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder or ROOT,
        env=_env(folder, extra),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def paired(
    folder: Path, statement: str, floor: str, extra: Mapping[str, str], setup: str = ""
) -> tuple[float, float, float]:
    """Median ms of the function, of the floor, and the median of the per-pair ratios."""
    mine: list[float] = []
    floors: list[float] = []
    for run in range(RUNS):
        if run % 2:
            mine.append(timed_ms(folder, statement, extra, setup))
            floors.append(timed_ms(None, floor, extra))
        else:
            floors.append(timed_ms(None, floor, extra))
            mine.append(timed_ms(folder, statement, extra, setup))
    ratios = [m / f for m, f in zip(mine, floors, strict=True)]
    return statistics.median(mine), statistics.median(floors), statistics.median(ratios)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in its own process; yields its endpoint URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(None, {}),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def _pointed_at(endpoint: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in [*BASE_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update({**BASE_ENV, "AWS_ENDPOINT_URL": endpoint})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def first_answers(names: list[str]) -> dict[str, tuple[float, float, float, str]]:
    """Per function: median ms to its first answer, the floor + GetItem, their ratio, the answer seen."""
    from infra.local.resources import create_resources, load_template

    results: dict[str, tuple[float, float, float, str]] = {}
    with moto_server() as endpoint, _pointed_at(endpoint):
        resources = create_resources(load_template(), stage="bench")
        for name in names:
            extra = {
                **resources.environment(_logical_id(name)),
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
            event = ROOT / "events" / FUNCTIONS[name]
            setup = f"e=json.loads(open({str(event)!r}).read());{_CONTEXT}"
            statement = "import app;r=app.handler(e,ctx)"
            folder = ROOT / "functions" / name
            answer = _answer(folder, statement, extra, setup)
            mine, floor, ratio = paired(folder, statement, FLOOR_ANSWER, extra, setup)
            results[name] = (mine, floor, ratio, answer)
    return results


def _logical_id(name: str) -> str:
    from infra.local.resources import functions, load_template

    for logical_id, spec in functions(load_template()).items():
        if spec.name == name:
            return logical_id
    raise KeyError(name)


def _answer(folder: Path, statement: str, extra: Mapping[str, str], setup: str) -> str:
    """What the first invocation answered (status code or a short summary), to show it is a real one."""
    code = (
        f"import os,sys,time,json,types;{setup};{statement};"
        "print(r.get('statusCode', sorted(r)) if isinstance(r,dict) else type(r).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env=_env(folder, extra),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def section() -> list[str]:
    """The RESULTS.md section."""
    names = [name for name in FUNCTIONS if (ROOT / "functions" / name / "app.py").exists()]
    starts = {name: paired(ROOT / "functions" / name, HANDLER, FLOOR, {}) for name in names}
    answers = first_answers(names)
    lines = [
        "## Cold start of each handler",
        "",
        f"{RUNS} pairs of fresh interpreters per function, each pair run back to back; the ratio is the"
        " median of the pairs' ratios. Cold start: `import app` and creating its DynamoDB client"
        ' (`integrations.aws.dynamodb()`), against `import boto3; boto3.client("dynamodb")`. First'
        " answer: `import app` and one invocation of its sample event from events/ against moto's"
        " server in another process, against the same floor plus one GetItem. Interpreter start-up"
        " is not counted. Ceiling: 1.3x (webhooks 1.15x).",
        "",
        "| function | cold start (ms) | floor (ms) | ratio | ceiling | first answer (ms) "
        "| floor + GetItem (ms) | ratio | answer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in names:
        mine, floor, ratio = starts[name]
        a_mine, a_floor, a_ratio, answer = answers[name]
        limit = LIMITS.get(name, DEFAULT_LIMIT)
        mark = "" if ratio <= limit else " (over)"
        lines.append(
            f"| {name} | {mine:.0f} | {floor:.0f} | {ratio:.2f}x{mark} | {limit:.2f}x | {a_mine:.0f}"
            f" | {a_floor:.0f} | {a_ratio:.2f}x | {answer} |"
        )
    return lines


if __name__ == "__main__":
    print(json.dumps(section(), indent=1))
