"""Calendar adapters found by provider: `providers/<id>/sync.py` offers `ADAPTER`, `calendars()` and
`push_calendar()`; the catalog says whether an entry reads changes and whether it takes pushes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from types import ModuleType

from integrations.catalog import Catalog
from integrations.domain.connection import Connection
from integrations.providers.registry import part
from integrations.sync.calendar import CalendarAdapter

# How long an adapter reuses an access token before asking the token manager again.
TOKEN_REUSE = timedelta(minutes=1)


class ProviderCalendars:
    """Builds a connection's calendar adapter with a token getter that refreshes when needed."""

    def __init__(
        self,
        catalog: Catalog,
        access_token: Callable[[Connection], str],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._token = access_token
        self._clock = clock

    def adapter(self, connection: Connection) -> CalendarAdapter | None:
        """The adapter to read changes with; None for entries that never read (one-way calendars)."""
        if (
            connection.provider not in self._catalog
            or not self._catalog.get(connection.provider).reads_changes
        ):
            return None
        return self.writer(connection)

    def writer(self, connection: Connection) -> CalendarAdapter | None:
        """The adapter to write appointments with; None when the provider has no calendar adapter."""
        module = self._module(connection)
        if module is None:
            return None
        spec = self._catalog.get(connection.provider)
        factory = module.ADAPTER
        adapter: CalendarAdapter = factory(spec, connection.id, self._reused_token(connection), self._clock)
        return adapter

    def _reused_token(self, connection: Connection) -> Callable[[], str]:
        """A token getter for one adapter: each token is used for a minute before it is asked for
        again (reading it decrypts it; a token is handed out only with minutes of life left)."""
        held: dict[str, object] = {}

        def token() -> str:
            now = self._clock()
            until = held.get("until")
            if not isinstance(until, datetime) or now >= until:
                held["value"], held["until"] = self._token(connection), now + TOKEN_REUSE
            return str(held["value"])

        return token

    def calendars(self, connection: Connection) -> Sequence[str]:
        module = self._module(connection)
        return list(module.calendars(connection)) if module is not None else []

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
        """Whether appointments go to this connection's calendar."""
        return (
            connection.provider in self._catalog
            and self._catalog.get(connection.provider).pushes_appointments
        )

    def _module(self, connection: Connection) -> ModuleType | None:
        module = part(connection.provider, "sync")
        return module if module is not None and hasattr(module, "ADAPTER") else None
