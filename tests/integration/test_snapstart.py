"""SnapStart: each function loads what it needs before the snapshot and renews what must be unique after."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from integrations import aws as aws_clients
from tests.support.functions import load_handler

FUNCTIONS = {
    "connectors": "integrations.portal.service",
    "oauth": "integrations.oauth.service",
    "internal": "integrations.sync.booking",
    "webhooks": "integrations.webhooks.receiver",
    "sync_scheduler": "integrations.sync.scheduler",
    "sync_worker": "integrations.sync.worker",
}


class Hooks:
    """Stands in for `snapshot_restore_py`, which only Lambda's managed runtimes ship."""

    def __init__(self) -> None:
        self.before: list[Callable[[], None]] = []
        self.after: list[Callable[[], None]] = []

    def snapshot(self) -> None:
        for hook in reversed(self.before):  # the runtime runs them in reverse order of registration
            hook()

    def restore(self) -> None:
        for hook in self.after:
            hook()


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Hooks:
    registered = Hooks()
    module: Any = types.ModuleType("snapshot_restore_py")
    module.register_before_snapshot = registered.before.append
    module.register_after_restore = registered.after.append
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    return registered


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_the_snapshot_holds_the_request_code_but_no_aws_client(
    function: str, aws: Any, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, FUNCTIONS[function], raising=False)
    aws_clients.reset_clients()
    load_handler(function)

    hooks.snapshot()

    assert FUNCTIONS[function] in sys.modules
    assert aws_clients._client.cache_info().currsize == 0


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_a_restore_builds_new_aws_clients(function: str, aws: Any, hooks: Hooks) -> None:
    module = load_handler(function)
    hooks.snapshot()
    before = aws_clients.dynamodb()
    adapter = module.container.connections

    hooks.restore()

    assert aws_clients.dynamodb() is not before
    assert module.container.connections is not adapter


def test_environments_restored_from_one_snapshot_draw_different_random_numbers(
    aws: Any, hooks: Hooks
) -> None:
    load_handler("webhooks")
    hooks.snapshot()
    random.seed(7)
    snapshot = random.getstate()

    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        hooks.restore()
        draws.append(random.random())  # noqa: S311 - the generator under test, not a secret

    assert draws[0] != draws[1]


def test_without_the_runtime_library_nothing_is_registered(aws: Any) -> None:
    from integrations import snapstart

    assert "snapshot_restore_py" not in sys.modules
    assert snapstart.register(warm=lambda: None, restore=lambda: None) is False
