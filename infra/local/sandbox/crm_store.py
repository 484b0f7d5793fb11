"""The sandbox CRMs' records (GHL contacts, notes, opportunities; HubSpot contacts, calls, emails,
deals), the
stages a person deleted, and the providers' rolling rate-limit windows.

Limits as documented (provider page §1.6 and §2.4): GHL 100 requests per 10 s per location; HubSpot
110 per 10 s per account for a public app, and CRM search about 5 per second per account.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.local.sandbox.core import Sandbox

GHL_BURST = (100, 10.0)
HUBSPOT_BURST = (110, 10.0)
HUBSPOT_SEARCH = (5, 1.0)


@dataclass
class CrmStore:
    """Every record of both CRMs (callers hold the state lock)."""

    # GHL: contact id → the contact in GHL's wire shape (+ `_ms`, updated at, epoch milliseconds).
    ghl_contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    ghl_notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ghl_opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)
    # HubSpot: object id → {"id", "properties", "createdAt", "updatedAt", "archived", "_hub", "_ms"}.
    hubspot_contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    hubspot_calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    hubspot_emails: dict[str, dict[str, Any]] = field(default_factory=dict)
    hubspot_deals: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Call, email and deal → contact associations (HubSpot).
    hubspot_associations: set[tuple[str, str, str]] = field(default_factory=set)
    deleted_stages: set[str] = field(default_factory=set)
    # HubSpot batch upsert: email → how many more times its input is refused (a per-input error).
    hubspot_refused_inputs: dict[str, int] = field(default_factory=dict)
    # GHL agencies: location id → {"companyId", "name"} (seeded by ghl_agency on first use).
    ghl_locations: dict[str, dict[str, str]] = field(default_factory=dict)
    windows: dict[str, deque[float]] = field(default_factory=dict)
    # How many 429s the limits answered, per app (tests count the storm).
    throttled: dict[str, int] = field(default_factory=dict)
    last_id: int = 0
    # Update times in epoch milliseconds strictly increase (modified-since reads rely on it).
    last_stamp: int = 0

    def next_id(self) -> str:
        self.last_id += 1
        return str(self.last_id)

    def stamp(self, now: float) -> int:
        """The next update time in epoch milliseconds."""
        self.last_stamp = max(int(now * 1000), self.last_stamp + 1)
        return self.last_stamp


def crm_of(sb: Sandbox) -> CrmStore:
    """The CRM store (callers hold the state lock)."""
    store = sb.state.extensions.get("crm")
    if not isinstance(store, CrmStore):
        store = CrmStore()
        sb.state.extensions["crm"] = store
    return store


def deleted_stages(sb: Sandbox) -> set[str]:
    with sb.state.lock:
        return set(crm_of(sb).deleted_stages)


def take(sb: Sandbox, app: str, key: str, limit: tuple[int, float]) -> tuple[float | None, int]:
    """Count one call against a rolling window: (seconds to wait when over the limit, calls left)."""
    count, seconds = limit
    now = sb.now()
    with sb.state.lock:
        store = crm_of(sb)
        window = store.windows.setdefault(key, deque())
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) >= count:
            store.throttled[app] = store.throttled.get(app, 0) + 1
            return max(0.001, window[0] + seconds - now), 0
        window.append(now)
        return None, count - len(window)


def iso_ms(epoch: float) -> str:
    """An ISO-8601 instant with milliseconds (from epoch seconds), as both CRMs write them."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(value: Any) -> float | None:
    """Epoch seconds from epoch milliseconds (number or digits) or an ISO-8601 string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return int(text) / 1000
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None
