"""Every portal route, tried by the wrong people: nothing leaks and nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from integrations.domain.connection import Connection
from tests.support import seed
from tests.support.events import body_of, claims, http_event

Call = Callable[[dict[str, Any]], dict[str, Any]]

OTHER_CLIENT = claims(sub="intruder-1", agency_id="agency-1", client_id="client-b")
OTHER_AGENCY = claims(sub="intruder-2", agency_id="agency-2", client_id="client-a")
OTHER_AGENCY_ADMIN = claims(sub="intruder-3", agency_id="agency-2", client_id=None, role="agency_admin")
VIEWER = claims(sub="viewer-1", agency_id="agency-1", client_id="client-a", permissions="[view_integrations]")
NO_VIEW = claims(sub="nobody-1", agency_id="agency-1", client_id="client-a", permissions="[]")
STAFF = claims(sub="staff-1", agency_id="agency-1", client_id=None, role="agency_staff")


def requests_on(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
    base = f"/connections/{conn.id}"
    return [
        ("read", {"method": "GET", "path": base}),
        (
            "write",
            {
                "method": "PATCH",
                "path": base,
                "body": {"config": {"pipeline_id": "evil", "stage_id": "evil"}},
            },
        ),
        ("write", {"method": "DELETE", "path": base}),
        ("write", {"method": "GET", "path": f"{base}/options/pipeline_id"}),
    ]


def snapshot(conn: Connection) -> str:
    connections, _ = seed.repositories()
    stored = connections.get(conn.id)
    assert stored is not None, "the connection must survive every intruder"
    return stored.model_dump_json()


@pytest.mark.parametrize("intruder", [OTHER_CLIENT, OTHER_AGENCY, OTHER_AGENCY_ADMIN, STAFF])
def test_another_tenant_gets_404_on_every_connection_route(call: Call, intruder: dict[str, Any]) -> None:
    conn = seed.connection(provider="ghl", access_token="at-ISOLATION-SECRET")
    before = snapshot(conn)

    for _, request in requests_on(conn):
        answer = call(
            http_event(request["method"], request["path"], claims=intruder, body=request.get("body"))
        )
        assert answer["statusCode"] == 404, request
        assert body_of(answer)["code"] == "connection_not_found"
        assert conn.account.label not in json.dumps(body_of(answer))

    assert snapshot(conn) == before


def test_viewer_can_read_but_not_change(call: Call) -> None:
    conn = seed.connection(provider="ghl")
    before = snapshot(conn)

    for kind, request in requests_on(conn):
        answer = call(http_event(request["method"], request["path"], claims=VIEWER, body=request.get("body")))
        if kind == "read":
            assert answer["statusCode"] == 200
        else:
            assert answer["statusCode"] == 403, request
            assert body_of(answer)["code"] == "missing_manage_permission"

    assert snapshot(conn) == before


def test_user_without_view_permission_sees_nothing(call: Call) -> None:
    conn = seed.connection(provider="ghl")
    before = snapshot(conn)

    for _, request in requests_on(conn):
        answer = call(
            http_event(request["method"], request["path"], claims=NO_VIEW, body=request.get("body"))
        )
        assert answer["statusCode"] == 404, request
    cards = call(http_event("GET", "/integrations", claims=NO_VIEW, query={"level": "client"}))

    assert cards["statusCode"] == 403
    assert body_of(cards)["code"] == "missing_view_permission"
    assert snapshot(conn) == before


@pytest.mark.parametrize("intruder", [OTHER_CLIENT, OTHER_AGENCY])
def test_another_tenants_cards_never_show_the_connection(call: Call, intruder: dict[str, Any]) -> None:
    conn = seed.connection(provider="ghl")

    own = call(http_event("GET", "/integrations", claims=intruder, query={"level": "client"}))
    named = call(
        http_event(
            "GET", "/integrations", claims=intruder, query={"level": "client", "client_id": "client-a"}
        )
    )

    assert conn.id not in json.dumps(body_of(own))
    # Naming client-a is another tenant for client-b (404); for agency-2's client-a it is its own client.
    assert named["statusCode"] == (404 if intruder is OTHER_CLIENT else 200)
    assert conn.id not in json.dumps(body_of(named))


def test_another_agencys_admin_naming_our_client_sees_only_its_own_agency(call: Call) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(
        http_event(
            "GET",
            "/integrations",
            claims=OTHER_AGENCY_ADMIN,
            query={"level": "client", "client_id": "client-a"},
        )
    )

    assert answer["statusCode"] == 200
    assert conn.id not in json.dumps(body_of(answer))


def test_someone_elses_personal_calendar_is_404_even_for_the_agency_admin(call: Call) -> None:
    from integrations.domain.access import Level

    conn = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1")
    admin = claims(sub="admin-1", agency_id="agency-1", client_id=None, role="agency_admin")

    answer = call(http_event("DELETE", f"/connections/{conn.id}", claims=admin))

    assert answer["statusCode"] == 404
    snapshot(conn)


@pytest.mark.parametrize("intruder", [OTHER_CLIENT, VIEWER, NO_VIEW, STAFF])
def test_agency_routes_are_for_agency_admins_only(call: Call, intruder: dict[str, Any]) -> None:
    seed.connection(provider="ghl")
    _, agencies = seed.repositories()
    before = agencies.get("agency-1")

    for method, path, body in (
        ("GET", "/agency/health", None),
        ("GET", "/agency/settings", None),
        ("PUT", "/agency/settings", {"enabled_providers": []}),
    ):
        answer = call(http_event(method, path, claims=intruder, body=body))
        assert answer["statusCode"] == 403
        assert body_of(answer)["code"] == "agency_admin_only"

    assert agencies.get("agency-1") == before


def test_another_agencys_admin_sees_none_of_our_health(call: Call) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(http_event("GET", "/agency/health", claims=OTHER_AGENCY_ADMIN))

    assert answer["statusCode"] == 200
    assert conn.id not in json.dumps(body_of(answer))


# A personal connection belongs to its person within the client context it was connected in.
SAME_PERSON_OTHER_CLIENT = claims(sub="user-1", agency_id="agency-1", client_id="client-b")
SAME_PERSON_AS_STAFF = claims(sub="user-1", agency_id="agency-1", client_id=None, role="agency_staff")


@pytest.mark.parametrize("other_context", [SAME_PERSON_OTHER_CLIENT, SAME_PERSON_AS_STAFF])
def test_a_personal_connection_is_404_for_the_same_person_in_another_client_context(
    call: Call, other_context: dict[str, Any]
) -> None:
    from integrations.domain.access import Level

    conn = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1")
    before = snapshot(conn)

    listing = call(http_event("GET", "/integrations", claims=other_context, query={"level": "user"}))
    assert conn.id not in json.dumps(body_of(listing))
    for _, request in requests_on(conn):
        answer = call(
            http_event(request["method"], request["path"], claims=other_context, body=request.get("body"))
        )
        assert answer["statusCode"] == 404, request
        assert body_of(answer)["code"] == "connection_not_found"

    assert snapshot(conn) == before


def test_a_personal_connection_is_listed_and_readable_in_its_own_client_context(call: Call) -> None:
    from integrations.domain.access import Level

    conn = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1")
    owner = claims(sub="user-1", agency_id="agency-1", client_id="client-a")

    listing = call(http_event("GET", "/integrations", claims=owner, query={"level": "user"}))
    read = call(http_event("GET", f"/connections/{conn.id}", claims=owner))

    assert conn.id in json.dumps(body_of(listing))
    assert read["statusCode"] == 200
    assert body_of(read)["id"] == conn.id
