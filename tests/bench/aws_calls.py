"""Count the AWS calls each portal route makes, through botocore's event hooks against moto."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any


def count_calls_per_route() -> list[tuple[str, str, str]]:
    from moto import mock_aws

    from infra.local.resources import create_resources, load_template
    from integrations import aws
    from tests.support import seed
    from tests.support.events import claims, http_event
    from tests.support.functions import load_handler
    from tests.support.lambda_context import LambdaContextStub

    manager = claims(sub="user-1", agency_id="agency-1", client_id="client-a")
    admin = claims(sub="admin-1", agency_id="agency-1", client_id=None, role="agency_admin")
    rows: list[tuple[str, str, str]] = []
    os.environ.update(
        {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    )
    with mock_aws():
        aws.reset_clients()
        os.environ.update(create_resources(load_template(), stage="bench").environment())
        seed.agency("agency-1")
        conns = [seed.connection(provider="ghl") for _ in range(3)]
        module = load_handler("connectors")
        calls: Counter[str] = Counter()

        def record(model: Any, **_: Any) -> None:
            calls[f"{model.service_model.service_name}:{model.name}"] += 1

        for client in (aws.dynamodb(), aws.kms(), aws.events(), aws.secretsmanager(), aws.sqs()):
            client.meta.events.register("before-call", record)
        routes = [
            ("GET /me", http_event("GET", "/me", claims=manager)),
            (
                "GET /integrations?level=client",
                http_event("GET", "/integrations", claims=manager, query={"level": "client"}),
            ),
            ("GET /connections/{id}", http_event("GET", f"/connections/{conns[0].id}", claims=manager)),
            (
                "PATCH /connections/{id}",
                http_event(
                    "PATCH",
                    f"/connections/{conns[0].id}",
                    claims=manager,
                    body={"config": {"pipeline_id": "p", "stage_id": "s"}},
                ),
            ),
            ("GET /agency/health", http_event("GET", "/agency/health", claims=admin)),
            ("GET /agency/settings", http_event("GET", "/agency/settings", claims=admin)),
            ("DELETE /connections/{id}", http_event("DELETE", f"/connections/{conns[1].id}", claims=manager)),
        ]
        for name, event in routes:
            calls.clear()
            module.handler(event, LambdaContextStub())
            ddb = ", ".join(
                f"{k.split(':')[1]}x{v}" for k, v in sorted(calls.items()) if k.startswith("dynamodb")
            )
            other = ", ".join(f"{k}x{v}" for k, v in sorted(calls.items()) if not k.startswith("dynamodb"))
            rows.append((name, ddb, other))
    return rows


def section() -> list[str]:
    """The RESULTS.md section."""
    lines = [
        "## AWS calls per portal route",
        "",
        "Counted through botocore's event hooks against moto, with three connections seeded.",
        "",
        "| route | DynamoDB calls | other AWS calls |",
        "|---|---|---|",
    ]
    lines += [f"| `{route}` | {ddb} | {other or '-'} |" for route, ddb, other in count_calls_per_route()]
    return lines
