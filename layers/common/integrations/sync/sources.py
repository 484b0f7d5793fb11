"""Calendar adapters found by provider: `providers/<id>/sync.py` offers `ADAPTER`, `calendars()` and
`push_calendar()`; the catalog says whether an entry reads changes and whether it takes pushes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from types import ModuleType

from integrations.catalog import Catalog
from integrations.domain.connection import Connection
from integrations.domain.credentials import Credentials
from integrations.domain.errors import ReauthRequired
from integrations.events import AppointmentUpserted
from integrations.providers.registry import part
from integrations.sync.calendar import CalendarAdapter
from integrations.sync.preferences import preferences_of

# How long an adapter reuses credentials before asking the token manager again.
CREDENTIALS_REUSE = timedelta(minutes=1)


def bearer(credentials: Callable[[], Credentials]) -> Callable[[], str]:
    """An access-token getter over a credentials getter, for OAuth adapters."""

    def token() -> str:
        value = credentials().access_token
        if value is None:
            raise ReauthRequired("This connection has no access token; connect it again.")
        return value.get_secret_value()

    return token


class ProviderCalendars:
    """Builds a connection's calendar adapter with a credentials getter that refreshes when needed.

    An adapter factory (`ADAPTER` in `providers/<id>/sync.py`) is called as
    `ADAPTER(spec, connection_id, credentials, clock, lookback)` with `credentials: Callable[[],
    Credentials]`: OAuth adapters read the access token from it (`bearer`), CalDAV ones the
    app-specific password. `lookback` is the sync window's past side (`window_past_days`): an adapter
    whose provider reads by time range asks from then, so a narrower window is narrower at the provider.
    """

    def __init__(
        self,
        catalog: Catalog,
        credentials: Callable[[Connection], Credentials],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._credentials = credentials
        self._clock = clock

    def adapter(self, connection: Connection) -> CalendarAdapter | None:
        """The adapter to read changes with; None for entries that never read (one-way calendars) and
        for connections whose preferences read nothing (neither fetching nor checking conflicts)."""
        if not self._reads(connection) or not self.calendars(connection):
            return None
        return self.writer(connection)

    def writer(self, connection: Connection) -> CalendarAdapter | None:
        """The adapter to write appointments with; None when the provider has no calendar adapter."""
        module = self._module(connection)
        if module is None:
            return None
        spec = self._catalog.get(connection.provider)
        factory = module.ADAPTER
        lookback = timedelta(days=preferences_of(connection).past_days)
        adapter: CalendarAdapter = factory(
            spec, connection.id, self._reused_credentials(connection), self._clock, lookback
        )
        return adapter

    def _reused_credentials(self, connection: Connection) -> Callable[[], Credentials]:
        """A credentials getter for one adapter: each read is used for a minute before it is asked
        for again (reading decrypts; a token is handed out only with minutes of life left)."""
        held: dict[str, object] = {}

        def credentials() -> Credentials:
            now = self._clock()
            until, value = held.get("until"), held.get("value")
            if not isinstance(until, datetime) or now >= until or not isinstance(value, Credentials):
                value = self._credentials(connection)
                held["value"], held["until"] = value, now + CREDENTIALS_REUSE
            return value

        return credentials

    def conflict_calendars(self, connection: Connection) -> Sequence[str]:
        """The calendars whose busy time blocks availability: the connection's conflict calendars
        (its synced calendar unless chosen otherwise); none when conflicts are off or it never reads."""
        synced = self.synced_calendar(connection)
        if synced is None or not self._reads(connection):
            return []
        return preferences_of(connection).conflict_set(synced)

    def calendars(self, connection: Connection) -> Sequence[str]:
        """The calendars sync reads: the synced one when fetching, and the conflict calendars."""
        synced = self.synced_calendar(connection)
        return preferences_of(connection).read_set(synced) if synced is not None else []

    def synced_calendar(self, connection: Connection) -> str | None:
        """The calendar the connection is linked to (where it pushes and what it fetches)."""
        module = self._module(connection)
        found = list(module.calendars(connection)) if module is not None else []
        return found[0] if found else None

    def publishes(self, connection: Connection, calendar_id: str) -> bool:
        """Whether changes read from this calendar become `Calendar Event Changed`: only the synced
        calendar's, and only while fetching (conflict calendars are read for their busy time)."""
        return preferences_of(connection).fetch and calendar_id == self.synced_calendar(connection)

    def takes(self, connection: Connection, appointment: AppointmentUpserted) -> bool:
        """Whether this appointment goes to the connection's calendar (push on, its type chosen)."""
        return self.pushes(connection) and preferences_of(connection).pushes_type(appointment.type)

    def _reads(self, connection: Connection) -> bool:
        return connection.provider in self._catalog and self._catalog.get(connection.provider).reads_changes

    def push_calendar(self, connection: Connection) -> str | None:
        module = self._module(connection)
        return str(module.push_calendar(connection)) if module is not None else None

    def calendar_label(self, connection: Connection, calendar_id: str) -> str:
        """The calendar's name as the person sees it; its id when the provider cannot say now."""
        adapter = self.writer(connection)
        if adapter is None:
            return calendar_id
        try:
            return adapter.calendar_name(calendar_id)
        except Exception:  # a label is a nicety: the replay starts without it
            return calendar_id

    def pushes(self, connection: Connection) -> bool:
        """Whether appointments go to this connection's calendar: the entry takes them and the
        owner has not switched pushing off."""
        return (
            connection.provider in self._catalog
            and self._catalog.get(connection.provider).pushes_appointments
            and preferences_of(connection).push
        )

    def takes_pushes(self, connection: Connection) -> bool:
        """Whether the entry can take appointments at all, whatever the preferences say."""
        return (
            connection.provider in self._catalog
            and self._catalog.get(connection.provider).pushes_appointments
        )

    def _module(self, connection: Connection) -> ModuleType | None:
        module = part(connection.provider, "sync")
        return module if module is not None and hasattr(module, "ADAPTER") else None
