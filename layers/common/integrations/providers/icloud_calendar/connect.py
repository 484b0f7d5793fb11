"""iCloud Calendar over CalDAV with an app-specific password (provider page §5).

There is no OAuth: the Apple ID and app-specific password are verified by CalDAV discovery
(principal → calendar home → calendars) before anything is stored, and then kept in the vault like
tokens. iCloud moves accounts to partition hosts, so URLs are always discovered, never built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from integrations.domain.errors import ProviderUnavailable, ValidationFailed
from integrations.providers.base import Option, ProviderModule

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.connection import Connection
    from integrations.domain.credentials import Credentials

TIMEOUT_SECONDS = 10
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

LOGIN_REJECTED_HELP = (
    "iCloud did not accept this Apple ID and password. iCloud needs an app-specific password, not "
    "your Apple ID password: create one at account.apple.com under Sign-In and Security > "
    "App-Specific Passwords (it looks like xxxx-xxxx-xxxx-xxxx; two-factor authentication must be on)."
)


class InvalidAppPassword(ValidationFailed):
    code = "invalid_app_password"


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    url: str
    name: str


@dataclass(frozen=True, slots=True)
class Discovery:
    principal_url: str
    calendars: list[CalendarInfo]


def discover(server_url: str, username: str, password: str) -> Discovery:
    """Log in and list the calendars; a rejected login is InvalidAppPassword (422)."""
    from caldav.davclient import DAVClient
    from caldav.lib import error as caldav_error
    from requests.auth import HTTPBasicAuth

    if not (username.isascii() and password.isascii()):
        # Basic auth carries ASCII only (requests would raise UnicodeEncodeError mid-request).
        raise ValidationFailed(
            "The Apple ID and app-specific password must be plain ASCII.", code="invalid_request"
        )
    parts = urlsplit(server_url)
    # TLS is required everywhere except a loopback stand-in used in development and tests.
    if parts.scheme != "https" and (parts.hostname or "") not in _LOOPBACK:
        raise ProviderUnavailable("The CalDAV server must be reached over HTTPS.")
    # Basic auth stated up front: iCloud takes app-specific passwords over Basic, and probing
    # other schemes first would send the password twice.
    client = DAVClient(
        url=server_url,
        auth=HTTPBasicAuth(username, password),
        timeout=TIMEOUT_SECONDS,
    )
    try:
        principal = client.principal()  # type: ignore[no-untyped-call]
        found = principal.calendars()
    except caldav_error.AuthorizationError:
        raise InvalidAppPassword(LOGIN_REJECTED_HELP) from None
    except caldav_error.DAVError as exc:
        raise ProviderUnavailable(
            f"iCloud's calendar server refused discovery ({type(exc).__name__})."
        ) from None
    except Exception as exc:
        # Network failures surface as the HTTP library's own exceptions; only their class is kept.
        raise ProviderUnavailable(
            f"iCloud's calendar server did not answer ({type(exc).__name__})."
        ) from None
    calendars = [CalendarInfo(url=str(c.url), name=_name(c)) for c in found]
    return Discovery(principal_url=str(principal.url), calendars=calendars)


def _name(calendar: Any) -> str:
    # The listing's display name (caldav fills `name` from the Depth 1 PROPFIND); then a direct
    # property read; the last path segment if neither has one.
    name = getattr(calendar, "name", None)
    if not name:
        try:
            name = calendar.get_display_name()
        except Exception:
            name = None
    return str(name) if isinstance(name, str) and name else str(calendar.url).rstrip("/").rsplit("/", 1)[-1]


class IcloudCalendarModule(ProviderModule):
    def password_credentials(self, spec: ProviderSpec, username: str, password: str) -> Credentials:
        """CalDAV discovery proves the app-specific password; the calendars found are kept with it."""
        from pydantic import SecretStr

        from integrations.domain.credentials import Credentials

        found = discover(spec.urls["caldav"], username, password)
        return Credentials(
            secrets={"app_password": SecretStr(password)},
            extra={
                "username": username,
                "principal_url": found.principal_url,
                "calendars": [{"url": c.url, "name": c.name} for c in found.calendars],
            },
        )

    def options(
        self,
        spec: ProviderSpec,
        connection: Connection,
        credentials: Credentials,
        field: str,
        parent: str | None,
    ) -> list[Option]:
        source = spec.config_field(field)
        if source is None or source.options_source not in ("calendars", "readable_calendars"):
            return []
        password = credentials.secrets.get("app_password")
        username = str(credentials.extra.get("username") or connection.account.id)
        if password is None:
            return []
        found = discover(spec.urls["caldav"], username, password.get_secret_value())
        return [Option(value=c.url, label=c.name) for c in found.calendars]


MODULE = IcloudCalendarModule()
