"""Small helpers the subscription managers share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.http import ProviderApiError

if TYPE_CHECKING:
    from integrations.catalog.model import ProviderSpec
    from integrations.domain.lookup import Lookup

log = logging.getLogger("integrations.webhooks.subscriptions")


def api_url(spec: ProviderSpec, path: str) -> str:
    """`path` under the provider's API base URL from the catalog (overridable for the sandbox)."""
    return f"{(spec.api_base_url or '').rstrip('/')}/{path.lstrip('/')}"


def iso(moment: datetime) -> str:
    """UTC ISO-8601, the form `Attr.EXPIRES_AT` holds."""
    return moment.astimezone(UTC).isoformat()


def from_epoch_ms(value: Any) -> str:
    """An epoch-milliseconds value (Google and Gmail send them as strings) as ISO-8601, or ''."""
    try:
        return iso(datetime.fromtimestamp(int(str(value)) / 1000, UTC))
    except (TypeError, ValueError, OverflowError):
        return ""


def of_kind(lookups: Iterable[Lookup], provider: str, kind: str) -> list[Lookup]:
    return [item for item in lookups if item.provider == provider and item.kind == kind]


def best_effort(what: str, call: Callable[[], object], *, gone: Iterable[int] = (404, 410)) -> None:
    """Run a removal; a provider failure is logged, never raised (it must not block a disconnect)."""
    try:
        call()
    except ProviderApiError as exc:
        if exc.status not in set(gone):
            log.warning("unsubscribe refused", extra={"what": what, "status": exc.status})
    except (ProviderUnavailable, ReauthRequired) as exc:
        log.warning("unsubscribe failed", extra={"what": what, "error": exc.code})
