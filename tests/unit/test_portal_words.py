"""The catalog's words for people (consent labels, grant lifetimes) and the portal page's messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from integrations.catalog import OAuthSpec, load_catalog
from integrations.catalog.loader import clear_cache
from integrations.domain.access import Level, Role
from integrations.domain.authorization import Decision, DenyReason, explained_to
from integrations.domain.connection import Connection, ErrorCode, ExternalAccount
from integrations.domain.flow import FlowErrorCode
from integrations.domain.principal import Principal
from integrations.portal import words

ROOT = Path(__file__).resolve().parents[2]
APP_JS = ROOT / "infra" / "portal" / "app.js"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_catalog() -> None:
    clear_cache()


def principal(role: Role) -> Principal:
    client = None if role.is_agency_role else "client-a"
    return Principal(sub="p", agency_id="agency-1", role=role, permissions=frozenset(), client_id=client)


def connection(provider: str, **fields: object) -> Connection:
    return Connection(
        id="c1",
        provider=provider,
        level=Level.CLIENT,
        agency_id="agency-1",
        client_id="client-a",
        account=ExternalAccount(id="a", label="a"),
        created_at=NOW,
        **fields,  # type: ignore[arg-type]
    )


def test_every_required_scope_has_the_consent_screens_label() -> None:
    for spec in load_catalog(""):
        if spec.oauth is None:
            continue
        for scope in spec.oauth.required_scopes:
            assert scope in spec.oauth.scope_labels, f"{spec.id}: no label for {scope}"
            assert "://" not in spec.oauth.scope_label(scope)


def test_a_label_for_a_scope_that_is_not_requested_is_refused() -> None:
    with pytest.raises(ValidationError, match="scope_labels"):
        OAuthSpec(
            app="x",
            authorize_url="https://a",
            token_url="https://t",
            scopes=["read"],
            required_scopes=["read"],
            scope_labels={"write": "Write"},
        )


@pytest.mark.parametrize(
    ("provider", "unused_days", "testing_days"),
    [
        ("google_calendar", 180, 7),
        ("gmail", 180, 7),
        ("ghl", 365, None),
        ("outlook_calendar", 90, None),
    ],
)
def test_grant_lifetimes_are_catalog_data(provider: str, unused_days: int, testing_days: int | None) -> None:
    spec = load_catalog("").get(provider)
    assert spec.oauth is not None and spec.oauth.grant_lifetime is not None
    assert spec.oauth.grant_lifetime.unused_days == unused_days
    assert spec.oauth.grant_lifetime.testing_days == testing_days


@pytest.mark.parametrize("provider", ["hubspot", "calendly", "slack"])
def test_providers_whose_grants_do_not_lapse_by_time_have_no_lifetime(provider: str) -> None:
    spec = load_catalog("").get(provider)
    assert spec.oauth is not None and spec.oauth.grant_lifetime is None


def test_a_lapse_is_counted_from_the_last_renewal_not_the_access_token() -> None:
    spec = load_catalog("").get("outlook_calendar")
    renewed = connection("outlook_calendar", token_expires_at=NOW - timedelta(hours=2))

    lapse = words.grant_lapse(spec, renewed, NOW)

    assert lapse is not None
    assert lapse.lapses_at == NOW - timedelta(hours=2) + timedelta(days=90)
    assert lapse.soon is False


def test_a_grant_within_two_weeks_of_lapsing_is_flagged_with_the_date() -> None:
    spec = load_catalog("").get("ghl")
    stale = connection("ghl", token_expires_at=NOW - timedelta(days=360))

    lapse = words.grant_lapse(spec, stale, NOW)

    assert lapse is not None and lapse.soon
    assert "2026-01-06" in lapse.message
    assert lapse.note is None


def test_google_grants_carry_the_testing_mode_caveat() -> None:
    spec = load_catalog("").get("gmail")

    lapse = words.grant_lapse(spec, connection("gmail", token_expires_at=NOW), NOW)

    assert lapse is not None and lapse.note is not None
    assert "7 days" in lapse.note


@pytest.mark.parametrize("reason", [DenyReason.TIER_TOO_LOW, DenyReason.DISABLED_BY_AGENCY])
@pytest.mark.parametrize("role", [Role.CLIENT_USER, Role.PROSPECT, Role.AGENCY_STAFF])
def test_only_agency_admins_hear_about_the_plan(reason: DenyReason, role: Role) -> None:
    decision = Decision.deny(reason, "Available on the growth plan and above.")

    told = explained_to(principal(role), decision)
    admin = explained_to(principal(Role.AGENCY_ADMIN), decision)

    assert told.reason is DenyReason.NOT_AVAILABLE
    assert told.message == "Not available. Ask your agency if you need it."
    assert admin == decision


@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("agency", [True, False])
def test_every_error_code_has_words_without_the_code(code: ErrorCode, agency: bool) -> None:
    spec = load_catalog("").get("ghl")

    said = words.explain(code, spec, connection("ghl"), agency=agency)

    text = f"{said.message} {said.advice}"
    assert said.message and said.advice
    assert code.value not in text and "_" not in text
    assert ("contact your agency" in text) is (not agency and code in _RETRYABLE)


_RETRYABLE = {ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.SYNC_FAILED}


def test_each_status_has_the_promised_label() -> None:
    assert set(words.STATUS_LABELS.values()) == {"Connected", "Not connected", "Error", "Syncing"}


def _result_message_codes() -> set[str]:
    source = APP_JS.read_text(encoding="utf-8")
    block = source[source.index("const RESULT_MESSAGES = {") :]
    block = block[: block.index("\n};")]
    return set(re.findall(r"^  ([a-z_]+): ", block, flags=re.MULTILINE))


def test_the_portal_page_explains_every_code_the_oauth_callback_can_return() -> None:
    assert _result_message_codes() == {code.value for code in FlowErrorCode}


def test_the_portal_page_prints_no_error_code_into_its_text() -> None:
    source = APP_JS.read_text(encoding="utf-8")

    assert "(${err.code" not in source and "(${failed.code" not in source
    assert "h('code'" not in source


def test_the_sandbox_consent_screen_uses_the_catalogs_labels() -> None:
    from infra.local.sandbox.oauth import scope_labels

    labels = scope_labels("google")

    assert labels["https://www.googleapis.com/auth/calendar.events"] == (
        "View and edit events on all your calendars"
    )
    assert scope_labels("ghl")["contacts.write"] == "Edit Contacts"
