"""The wall clock every timestamp comes from (a module of its own: cheap to import at cold start)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)
