"""Whole round trips, including failures, leave no state, code, verifier, cookie or token in any log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from infra.local.sandbox import APP_CREDENTIALS
from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.container import build_vault
from integrations.domain.access import Level
from integrations.domain.authorization import Scope
from integrations.oauth.sessions import hash_secret
from integrations.observability import RedactingFormatter
from integrations.store.connections import ConnectionRepository
from integrations.store.vault import credential_ref
from tests.integration.oauth.conftest import GATEWAY, Browser

pytestmark = pytest.mark.usefixtures("oauth_env")


@pytest.fixture
def log_output(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything the Powertools loggers write (their real handlers, at DEBUG), plus stdlib records."""
    buffer = io.StringIO()
    caplog.set_level(logging.DEBUG)
    swapped: list[tuple[logging.StreamHandler[Any], Any, int, logging.Logger]] = []
    for logger in [logging.getLogger(n) for n in list(logging.Logger.manager.loggerDict)]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and isinstance(
                handler.formatter, RedactingFormatter
            ):
                # Assign instead of setStream(): that flushes the old stream, which may be a capture
                # file an earlier test has already closed.
                swapped.append((handler, handler.stream, logger.level, logger))
                handler.stream = buffer
                logger.setLevel(logging.DEBUG)
    yield buffer
    for handler, stream, level, logger in swapped:
        handler.stream = stream
        logger.setLevel(level)
    buffer.write("\n".join(r.getMessage() + " " + str(r.__dict__) for r in caplog.records))


def secrets_of_a_round_trip(browser: Browser, provider: str, *, untick: tuple[str, ...] = ()) -> list[str]:
    """Run connect once and return every secret that crossed our code on the way."""
    started = browser.start(provider)
    state = dict(parse_qsl(urlsplit(started.body["redirect_url"]).query))["session"]
    at_provider = browser.get(started.body["redirect_url"])
    cookie = next(iter(browser.jar.values()))
    table = Settings.from_env().state_table_name
    item = aws_clients.dynamodb().get_item(TableName=table, Key={"pk": {"S": f"OAUTH#{hash_secret(state)}"}})
    verifier = item["Item"].get("verifier", {}).get("S", "")
    callback = browser.consent(at_provider.location, untick=untick)
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    done = browser.get(callback)
    assert done.status == 302
    found = [state, cookie, code, verifier]
    return [s for s in found if s]


def stored_tokens(provider: str) -> list[str]:
    repo = ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)
    scope = Scope(
        "agency-1",
        Level.USER if provider.startswith("google") else Level.CLIENT,
        "client-a",
        "user-1" if provider.startswith("google") else None,
    )
    values: list[str] = []
    for connection in repo.list_for_scope(scope):
        creds = build_vault(Settings.from_env()).get(credential_ref(connection))
        assert creds is not None
        values += [s.get_secret_value() for s in (creds.access_token, creds.refresh_token) if s is not None]
    return values


@pytest.mark.parametrize("provider", ["google_calendar", "ghl", "slack"])
def test_connect_logs_no_secret(browser: Browser, provider: str, log_output: io.StringIO) -> None:
    secrets = secrets_of_a_round_trip(browser, provider)
    secrets += stored_tokens(provider)
    app = {"google_calendar": "google"}.get(provider, provider)
    secrets.append(APP_CREDENTIALS[app]["client_secret"])

    text = log_output.getvalue()

    assert "connected" in text  # the capture works: our records are in it
    assert len(secrets) >= 5
    for secret in secrets:
        assert secret not in text


def test_failed_connect_logs_no_secret(browser: Browser, log_output: io.StringIO) -> None:
    secrets = secrets_of_a_round_trip(browser, "hubspot", untick=("crm.objects.deals.write",))
    secrets.append(APP_CREDENTIALS["hubspot"]["client_secret"])

    text = log_output.getvalue()

    assert "oauth callback refused" in text
    for secret in secrets:
        assert secret not in text


def test_replayed_callback_logs_no_secret(browser: Browser, log_output: io.StringIO) -> None:
    started = browser.start("calendly")
    state = dict(parse_qsl(urlsplit(started.body["redirect_url"]).query))["session"]
    at_provider = browser.get(started.body["redirect_url"])
    callback = browser.consent(at_provider.location)
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    browser.get(callback)
    browser.get(f"{GATEWAY}/oauth/calendly/callback?{urlsplit(callback).query}")

    text = log_output.getvalue()

    assert state not in text and code not in text
