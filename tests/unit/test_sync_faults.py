"""The engine's fault table: which failure leads to which action."""

from __future__ import annotations

import random

import pytest

from integrations.domain.errors import ProviderUnavailable, ReauthRequired
from integrations.http import ProviderApiError, RateLimited
from integrations.sync.errors import ConfigRequired, CursorExpired
from integrations.sync.faults import (
    BACKOFF_CAP_SECONDS,
    MAX_DEFER_SECONDS,
    POISON_RECEIVES,
    SUSTAINED_FAILURES,
    ActionKind,
    Fault,
    FaultKind,
    backoff_delay,
    classify,
    decide,
    is_sustained,
)


def _decide(error: BaseException, *, failures: int = 1, receives: int = 1) -> ActionKind:
    rng = random.Random(7)  # noqa: S311 - jitter, not secrets
    return decide(classify(error), failures=failures, receive_count=receives, rng=rng).kind


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimited("slow down", retry_after=30), ActionKind.DEFER),
        (ProviderUnavailable("HTTP 503"), ActionKind.BACKOFF),
        (ReauthRequired("grant gone"), ActionKind.REAUTH),
        (ProviderApiError(401, {"error": "invalid_token"}), ActionKind.REAUTH),
        (ProviderApiError(403, {"error": "forbidden"}), ActionKind.REAUTH),
        (CursorExpired("calendar:primary"), ActionKind.FULL_RESYNC),
        (ConfigRequired("The calendar Work no longer exists."), ActionKind.CONFIG_REQUIRED),
        (KeyError("surprise"), ActionKind.BACKOFF),
    ],
)
def test_each_failure_has_one_action(error: BaseException, expected: ActionKind) -> None:
    assert _decide(error) is expected


def test_rate_limit_waits_for_the_providers_retry_after_and_is_not_a_failure() -> None:
    action = decide(classify(RateLimited("x", retry_after=42)), failures=0, receive_count=1)
    assert action.kind is ActionKind.DEFER
    assert action.delay_seconds == 42


def test_an_absurd_retry_after_is_clamped() -> None:
    action = decide(Fault(FaultKind.RATE_LIMITED, "x", retry_after=86_400), failures=0, receive_count=1)
    assert action.delay_seconds == MAX_DEFER_SECONDS


def test_unexpected_errors_become_poison_after_repeated_deliveries() -> None:
    assert _decide(ValueError("bad data"), receives=POISON_RECEIVES - 1) is ActionKind.BACKOFF
    assert _decide(ValueError("bad data"), receives=POISON_RECEIVES) is ActionKind.POISON


def test_unexpected_error_message_names_only_the_class() -> None:
    fault = classify(ValueError("provider said: secret-ish data"))
    assert fault.kind is FaultKind.UNEXPECTED
    assert "secret-ish" not in fault.message
    assert "ValueError" in fault.message


def test_backoff_grows_with_failures_within_jittered_bounds_and_is_capped() -> None:
    rng = random.Random(1)  # noqa: S311 - jitter, not secrets
    for failures in range(1, 20):
        delay = backoff_delay(failures, rng)
        ceiling = min(BACKOFF_CAP_SECONDS, 10.0 * 2 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_only_a_sustained_run_of_failures_is_reported() -> None:
    assert not is_sustained(SUSTAINED_FAILURES - 1)
    assert is_sustained(SUSTAINED_FAILURES)
