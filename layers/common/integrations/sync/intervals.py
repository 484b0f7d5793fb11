"""How often a connection is polled when nothing pushes: the engine's default and a person's limits."""

from __future__ import annotations

DEFAULT_INTERVAL_MINUTES = 15
MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 24 * 60
