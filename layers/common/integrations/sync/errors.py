"""Failures an adapter reports to the sync engine in the engine's own words (no provider status codes)."""

from __future__ import annotations

from integrations.domain.errors import IntegrationError

_EXPIRED = "The sync cursor expired; a full resync is needed."


class CursorExpired(IntegrationError):
    """The stored cursor is no longer accepted (Google 410, Gmail 404, Graph 410, CalDAV invalid
    sync-token): the scope it belongs to needs a full resync."""

    status = 409
    code = "cursor_expired"

    def __init__(
        self, scope: str, message: str = "The sync cursor expired; a full resync is needed."
    ) -> None:
        super().__init__(message, details={"scope": scope})
        self.scope = scope


class ConfigRequired(IntegrationError):
    """The connection's configuration names something the provider no longer has (a deleted calendar,
    stage or channel): the person must choose again; the action waits until then."""

    status = 409
    code = "config_required"
