"""Lambda SnapStart runtime hooks: what to load before the snapshot, what to renew after a restore.

One snapshot of an initialised function resumes many execution environments. What init computed is
shared by all of them, so nothing unique may be made there: Python's `random` is reseeded after each
restore (secrets and uuid4 read os.urandom, which the kernel keeps fresh), and AWS clients, with their
pooled connections and the credentials they read, are dropped so the first request builds new ones.
Before the snapshot, each function imports and loads what its first request needs, which a plain cold
start (no SnapStart: tests, the local stack) leaves to that request.

`snapshot_restore_py` ships in Lambda's Python managed runtimes; elsewhere there are no snapshots and
registering does nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def register(*, warm: Callable[[], None], restore: Callable[[], None]) -> bool:
    """Run `warm` before the snapshot and `restore` after each restore; False when not on SnapStart."""
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found,unused-ignore]
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(warm)
    register_after_restore(fresh_randomness)
    register_after_restore(restore)
    return True


def fresh_randomness() -> None:
    """Reseed `random` from os.urandom: every restored environment would otherwise share one sequence."""
    random.seed()
