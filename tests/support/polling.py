"""Waiting for what the local stack does in the background (queues, bus rules, pushes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.2) -> Any:
    """Poll until `check` returns something truthy (bounded), then return it (or its last answer)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)
