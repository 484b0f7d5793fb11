"""OAuth sessions on the StateTable: hashed at rest, bound to one browser, consumed exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.domain.access import Level
from integrations.oauth.sessions import BindOutcome, SessionStore, hash_secret
from integrations.store.oauth_sessions import DynamoSessionStore


@pytest.fixture
def store(aws: Any) -> SessionStore:
    return DynamoSessionStore(aws_clients.dynamodb(), Settings.from_env().state_table_name)


def new(store: SessionStore, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "provider": "ghl",
        "level": Level.CLIENT,
        "agency_id": "agency-1",
        "client_id": "client-a",
        "user_id": None,
        "requested_by": "user-1",
        "return_to": "http://127.0.0.1:3000/portal/",
        "verifier": "v" * 64,
        "app_client_id": "client-id",
    }
    fields.update(changes)
    return store.create(store.new_session(**fields))


def test_only_a_hash_of_the_state_is_stored(store: SessionStore) -> None:
    state = new(store)
    items = aws_clients.dynamodb().scan(TableName=Settings.from_env().state_table_name)["Items"]
    assert [i["pk"]["S"] for i in items] == [f"OAUTH#{hash_secret(state)}"]
    assert state not in str(items)


def test_sessions_expire_after_ten_minutes(store: SessionStore) -> None:
    state = new(store)
    session = store.get(state)
    assert session is not None
    now = datetime.now(UTC)
    assert timedelta(minutes=9) < session.expires_at - now <= timedelta(minutes=10)
    assert not session.expired(now)
    assert session.expired(now + timedelta(minutes=10, seconds=1))


def test_first_browser_binds_and_only_its_cookie_matches(store: SessionStore) -> None:
    state = new(store)
    assert store.bind_cookie(state, "cookie-1") is BindOutcome.BOUND
    assert store.bind_cookie(state, "cookie-2") is BindOutcome.ALREADY_BOUND
    session = store.consume(state)
    assert session is not None
    assert session.cookie_matches("cookie-1")
    assert not session.cookie_matches("cookie-2")
    assert not session.cookie_matches(None)
    assert not session.cookie_matches("")


def test_binding_an_unknown_session_says_so(store: SessionStore) -> None:
    assert store.bind_cookie("never-issued", "cookie") is BindOutcome.UNKNOWN


def test_consumed_session_leaves_only_a_marker(store: SessionStore) -> None:
    state = new(store, provider="slack")
    assert store.consume(state) is not None
    assert store.consume(state) is None
    assert store.get(state) is None
    used = store.used(state)
    assert used is not None and used.provider == "slack"
    assert store.used("never-issued") is None


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(["consume", "bind", "get"]), min_size=1, max_size=8))
def test_a_session_is_consumed_at_most_once_in_any_order(store: SessionStore, steps: list[str]) -> None:
    state = new(store)
    consumed = 0
    for step in steps:
        if step == "consume":
            consumed += store.consume(state) is not None
        elif step == "bind":
            store.bind_cookie(state, "cookie")
        else:
            store.get(state)
    assert consumed == (1 if "consume" in steps else 0)
