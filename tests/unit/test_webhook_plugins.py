"""Webhook plug-ins: one per catalog entry that receives pushes, and a generic core that names none."""

from __future__ import annotations

import io
import re
import tokenize
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import integrations.providers
import integrations.webhooks
from integrations.catalog import load_catalog
from integrations.providers.registry import folder_of
from integrations.webhooks.errors import SignatureFailure, SignatureInvalid
from integrations.webhooks.plugin import KeyAccess, Material, ParsedWebhook, WebhookPlugin
from integrations.webhooks.receiver import NOT_FOUND, WebhookReceiver, receives_pushes, webhook_for
from integrations.webhooks.request import WebhookRequest
from integrations.webhooks.signatures import VerificationSecrets
from tests.support.webhooks import plain_request

CATALOG = load_catalog()
PROVIDERS_DIR = Path(integrations.providers.__file__).parent
WEBHOOKS_DIR = Path(integrations.webhooks.__file__).parent


@pytest.mark.parametrize("provider", sorted(s.id for s in CATALOG if s.webhook is not None))
def test_every_entry_with_a_webhook_section_has_a_plugin(provider: str) -> None:
    found = webhook_for(provider)

    assert found is not None
    assert isinstance(found[1], WebhookPlugin)
    assert receives_pushes(provider)


@pytest.mark.parametrize("provider", sorted(s.id for s in CATALOG if s.webhook is None))
def test_an_entry_without_a_webhook_section_receives_no_pushes(provider: str) -> None:
    assert webhook_for(provider) is None
    assert not receives_pushes(provider)


def test_every_plugin_folder_serves_an_entry_with_a_webhook_section() -> None:
    with_plugin = {path.parent.name for path in PROVIDERS_DIR.glob("*/webhook.py")}
    served = {folder_of(spec.id) for spec in CATALOG if spec.webhook is not None}

    assert with_plugin == served


def test_an_unknown_provider_receives_no_pushes() -> None:
    assert webhook_for("no_such_provider") is None


class _Untouchable:
    """Every port of the receiver: touching any of them fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was called for a provider without a plug-in")


def test_a_provider_without_a_plugin_is_refused_not_passed() -> None:
    untouchable: Any = _Untouchable()
    receiver = WebhookReceiver(
        lookups=untouchable,
        ledger=untouchable,
        jobs=untouchable,
        events=untouchable,
        app_secrets=untouchable,
        signing_keys=None,
        logger=untouchable,
        clock=lambda: datetime(2026, 5, 1, tzinfo=UTC),
    )
    request = plain_request("icloud_calendar", b"{}", {"Authorization": "Bearer x"})

    assert receiver.receive(request) == NOT_FOUND


def _named_ids(source: str, ids: list[str]) -> set[str]:
    """Provider ids a module's code names: as an identifier, or as a word in a string or docstring."""
    named: set[str] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        for provider in ids:
            if token.type == tokenize.NAME and token.string == provider:
                named.add(provider)
            if token.type == tokenize.STRING and re.search(rf"(?<![\w-]){provider}(?![\w-])", token.string):
                named.add(provider)
    return named


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(WEBHOOKS_DIR)) for p in WEBHOOKS_DIR.rglob("*.py")), ids=str
)
def test_no_module_of_the_webhooks_kit_names_a_provider_id(module: str) -> None:
    source = (WEBHOOKS_DIR / module).read_text()

    assert _named_ids(source, CATALOG.ids()) == set()


def test_the_provider_id_scan_finds_an_id_in_a_string() -> None:
    assert _named_ids('KIND = {"ghl": 1}\n', ["ghl", "slack"]) == {"ghl"}


# --------------------------------------------------------------------------- verify by default


class _RecordingVerifier:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[WebhookRequest, VerificationSecrets, datetime]] = []
        self.error = error

    def verify(self, request: WebhookRequest, secrets: VerificationSecrets, now: datetime) -> None:
        self.calls.append((request, secrets, now))
        if self.error is not None:
            raise self.error


class _PluginWith(WebhookPlugin):
    def __init__(self, verifier: _RecordingVerifier | None) -> None:
        self.verifier = verifier

    def secrets(self, material: Material, keys: KeyAccess) -> VerificationSecrets:
        return VerificationSecrets()

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        return ParsedWebhook()


NOW = datetime(2026, 5, 1, tzinfo=UTC)


def test_the_default_verify_hands_the_request_to_the_plugins_verifier() -> None:
    verifier = _RecordingVerifier()
    request, secrets = plain_request("any", b"{}"), VerificationSecrets(hmac_keys=("k",))

    _PluginWith(verifier).verify(request, secrets, NOW)

    assert verifier.calls == [(request, secrets, NOW)]


def test_the_default_verify_passes_the_verifiers_refusal_on() -> None:
    refusal = SignatureInvalid(SignatureFailure.BAD_SIGNATURE, "no")
    plugin = _PluginWith(_RecordingVerifier(refusal))

    with pytest.raises(SignatureInvalid) as raised:
        plugin.verify(plain_request("any", b"{}"), VerificationSecrets(), NOW)

    assert raised.value is refusal


def test_a_plugin_without_a_verifier_refuses_every_request() -> None:
    with pytest.raises(SignatureInvalid) as raised:
        _PluginWith(None).verify(plain_request("any", b"{}"), VerificationSecrets(hmac_keys=("k",)), NOW)

    assert raised.value.failure is SignatureFailure.MISSING_SIGNATURE


@pytest.mark.parametrize("provider", sorted(s.id for s in CATALOG if s.webhook is not None))
def test_every_plugin_refuses_an_unsigned_push(provider: str) -> None:
    found = webhook_for(provider)
    assert found is not None
    # A body each provider's scheme can read (Graph checks every notification it lists).
    request = plain_request(provider, b'{"value": [{"subscriptionId": "s-1", "clientState": "guess"}]}')
    plugin = found[1].for_request(request)

    with pytest.raises(SignatureInvalid):
        plugin.verify(request, VerificationSecrets(), NOW)
