"""The Slack step's decisions without I/O: which events a channel hears, lifecycle webhooks, messages."""

from __future__ import annotations

from typing import Any

import pytest

from integrations import http
from integrations.catalog import load_catalog
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.credentials import Credentials
from integrations.http import AccessRefused
from integrations.providers.registry import module_for
from integrations.providers.slack.messages import call_completed, duration, escape
from integrations.providers.slack.sync import STEP
from integrations.sync.jobs import JobKind, SyncJob


def _connection(**config: Any) -> Connection:
    return Connection(
        id="c1",
        provider="slack",
        level=Level.CLIENT,
        agency_id="a",
        client_id="c",
        account=ExternalAccount(id="T1", label="Acme"),
        config=config,
    )


class _Context:
    def __init__(self, hint: dict[str, Any]) -> None:
        self.job = SyncJob(kind=JobKind.SYNC, connection_id="c1", provider="slack", hint=hint)
        self.connection = _connection(channel_id="C1")
        self.outbox = None


def test_calls_always_notify_and_bookings_and_errors_only_by_choice() -> None:
    plain, chosen = _connection(), _connection(notify_bookings=True, notify_errors=True)

    assert STEP.notifies(plain, "Call Completed") is True
    assert STEP.notifies(plain, "Booking Created") is False
    assert STEP.notifies(plain, "Integration Errored") is False
    assert STEP.notifies(chosen, "Booking Created") is True
    assert STEP.notifies(chosen, "Integration Errored") is True
    assert STEP.notifies(chosen, "Appointment Upserted") is False


@pytest.mark.parametrize(
    "hint",
    [
        {"source": "webhook", "event_type": "app_uninstalled"},
        {"source": "webhook", "event_type": "tokens_revoked", "revoked_tokens": {"bot": ["U1"]}},
    ],
)
def test_uninstall_and_a_revoked_bot_token_are_refused_grants(hint: dict[str, Any]) -> None:
    with pytest.raises(AccessRefused):
        STEP.run(_Context(hint))  # type: ignore[arg-type]


def test_a_revoked_user_token_changes_nothing() -> None:
    hint = {"source": "webhook", "event_type": "tokens_revoked", "revoked_tokens": {"oauth": ["U9"]}}

    assert STEP.run(_Context(hint)) == 0  # type: ignore[arg-type]


def test_durations_and_escaping_read_well() -> None:
    assert [duration(s) for s in (0, 42, 312, 3720)] == ["0s", "42s", "5m 12s", "1h 02m"]
    assert escape("a <b> & c") == "a &lt;b&gt; &amp; c"


def test_a_recording_link_that_is_not_http_gets_no_button() -> None:
    _, blocks = call_completed({"recording_url": "javascript:alert(1)", "summary": ""})

    assert [b["type"] for b in blocks] == ["header", "section"]


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "account_inactive"])
def test_the_grant_check_is_auth_test_and_slacks_refusals_are_reauth_required(
    error: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def api_call(method: str, url: str, **_: Any) -> dict[str, Any]:
        asked.append(url.rsplit("/", 1)[-1])
        return {"ok": False, "error": error}  # Slack refuses with HTTP 200

    monkeypatch.setattr(http, "api_call", api_call)
    module = module_for("slack")

    with pytest.raises(AccessRefused):
        module.check_grant(
            load_catalog().get("slack"), Credentials.model_validate({"access_token": "xoxb-1"})
        )

    assert module.checks_grant is True
    assert asked == ["auth.test"]
