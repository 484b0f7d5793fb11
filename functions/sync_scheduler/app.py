"""Every minute: queue a sync job for each connection that is due."""

from __future__ import annotations

# First: the rest of init runs with the garbage collector paused (integrations.coldstart).
from integrations import coldstart

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from integrations import snapstart
from integrations.config import Settings
from integrations.container import Container
from integrations.domain.clock import utcnow
from integrations.metrics import SCHEDULED_JOBS, EmfCounter
from integrations.observability import get_logger

logger = get_logger("sync_scheduler")
counter = EmfCounter()
# Built once per container; a missing variable fails here, at cold start, naming it.
container = Container(Settings.from_env())


def _warm() -> None:
    """Before a SnapStart snapshot: import what a run needs (no AWS client yet)."""
    import integrations.sync.scheduler  # noqa: F401


snapstart.register(warm=_warm, restore=container.forget_connections)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    result = container.sync_scheduler().run(utcnow())
    logger.info("scheduled", extra={"queued": result.queued, "failed": result.failed})
    counter.count(SCHEDULED_JOBS, result.queued, outcome="queued")
    counter.count(SCHEDULED_JOBS, result.failed, outcome="failed")
    if result.failed:
        # Claimed but not queued: fail the run so the schedule's retry and the alarm both see it.
        raise RuntimeError(f"{result.failed} sync jobs could not be queued")
    return {"queued": result.queued}


coldstart.loaded()
