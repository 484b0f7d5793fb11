"""Which connections read changes, which take pushes, and where their appointments go."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from integrations.catalog import load_catalog
from integrations.domain.access import Level
from integrations.domain.connection import Connection, ExternalAccount
from integrations.domain.credentials import Credentials
from integrations.providers.google_calendar.sync import GoogleCalendarAdapter
from integrations.sync.sources import ProviderCalendars


def _connection(provider: str, **config: object) -> Connection:
    return Connection(
        id=f"c-{provider}",
        provider=provider,
        level=Level.USER,
        agency_id="a",
        client_id="c",
        user_id="u",
        account=ExternalAccount(id="x", label="x@example.com"),
        config=dict(config),
    )


def _source() -> ProviderCalendars:
    return ProviderCalendars(
        load_catalog(""),
        lambda connection: Credentials(access_token=SecretStr("token")),
        lambda: datetime.now(UTC),
    )


def test_two_way_google_reads_and_pushes_to_the_chosen_calendar() -> None:
    source = _source()
    connection = _connection("google_calendar", calendar_id="work@example.com")
    assert isinstance(source.adapter(connection), GoogleCalendarAdapter)
    assert source.pushes(connection)
    assert source.push_calendar(connection) == "work@example.com"
    assert source.calendars(connection) == ["work@example.com"]


def test_one_way_google_pushes_but_never_reads() -> None:
    source = _source()
    connection = _connection("google_calendar_oneway")
    assert source.adapter(connection) is None
    assert isinstance(source.writer(connection), GoogleCalendarAdapter)
    assert source.pushes(connection)
    assert source.push_calendar(connection) == "primary"


def test_providers_without_a_calendar_adapter_neither_read_nor_take_pushes() -> None:
    source = _source()
    for provider in ("ghl", "slack", "bcc_email"):
        connection = _connection(provider)
        assert source.adapter(connection) is None
        assert source.writer(connection) is None
        assert not source.pushes(connection)
