"""The portal API through API Gateway v2 events with JWT claims, against moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from integrations.domain.access import Level, Tier
from integrations.providers.base import Option
from integrations.providers.ghl import connect as ghl_connect
from tests.support import seed
from tests.support.events import body_of, claims, http_event

Call = Callable[[dict[str, Any]], dict[str, Any]]
ADMIN = claims(sub="admin-1", agency_id="agency-1", client_id=None, role="agency_admin", permissions="[]")
MANAGER = claims(sub="user-1", agency_id="agency-1", client_id="client-a")
VIEWER = claims(sub="viewer-1", agency_id="agency-1", client_id="client-a", permissions="[view_integrations]")
NO_VIEW = claims(sub="nobody-1", agency_id="agency-1", client_id="client-a", permissions="[]")


def test_me_for_a_manager(call: Call) -> None:
    answer = call(http_event("GET", "/me", claims=MANAGER))

    assert answer["statusCode"] == 200
    assert body_of(answer) == {"show_integrations": True, "can_manage": True, "levels": ["client", "user"]}


def test_me_hides_integrations_without_view_permission(call: Call) -> None:
    answer = call(http_event("GET", "/me", claims=NO_VIEW))

    assert body_of(answer) == {"show_integrations": False, "can_manage": False, "levels": []}


def test_me_without_claims_is_401(call: Call) -> None:
    answer = call(http_event("GET", "/me"))

    assert answer["statusCode"] == 401
    assert body_of(answer)["code"] == "missing_token"


def test_client_cards_list_every_client_level_provider_with_connections(call: Call) -> None:
    seed.agency("agency-1", Tier.STARTER)
    conn = seed.connection(provider="ghl")

    answer = call(http_event("GET", "/integrations", claims=MANAGER, query={"level": "client"}))

    assert answer["statusCode"] == 200
    cards = {c["provider"]: c for c in body_of(answer)["integrations"]}
    assert set(cards) == {"ghl", "hubspot", "google_calendar", "calendly", "slack", "bcc_email"}
    assert cards["ghl"]["status"] == "connected"
    assert cards["ghl"]["connections"][0]["id"] == conn.id
    assert cards["ghl"]["can_manage"] is True
    assert cards["hubspot"]["available"] is False
    assert cards["hubspot"]["unavailable_code"] == "not_available"
    assert cards["slack"]["status"] == "not_connected"


def test_listing_a_clients_cards_costs_one_query(call: Call, dynamodb_calls: list[str]) -> None:
    seed.agency("agency-1")
    for _ in range(3):
        seed.connection(provider="ghl")
    dynamodb_calls.clear()

    call(http_event("GET", "/integrations", claims=MANAGER, query={"level": "client"}))

    assert dynamodb_calls.count("Query") == 1
    assert "Scan" not in dynamodb_calls
    assert dynamodb_calls == ["GetItem", "Query"]


def test_disabled_provider_card_says_why_to_an_agency_admin(call: Call) -> None:
    seed.agency("agency-1", enabled_providers=["ghl"])

    query = {"level": "client", "client_id": "client-a"}
    cards = body_of(call(http_event("GET", "/integrations", claims=ADMIN, query=query)))

    slack = next(c for c in cards["integrations"] if c["provider"] == "slack")
    assert slack["available"] is False
    assert slack["unavailable_code"] == "disabled_by_agency"


def test_invalid_level_is_422_with_the_field_named(call: Call) -> None:
    answer = call(http_event("GET", "/integrations", claims=MANAGER, query={"level": "galaxy"}))

    assert answer["statusCode"] == 422
    body = body_of(answer)
    assert body["code"] == "invalid_request"
    assert body["details"][0]["field"] == "level"


def test_admin_lists_a_named_client(call: Call) -> None:
    conn = seed.connection(provider="slack", client_id="client-b")

    answer = call(
        http_event("GET", "/integrations", claims=ADMIN, query={"level": "client", "client_id": "client-b"})
    )

    slack = next(c for c in body_of(answer)["integrations"] if c["provider"] == "slack")
    assert slack["connections"][0]["id"] == conn.id


def test_user_level_cards_show_only_the_callers_own_accounts(call: Call) -> None:
    mine = seed.connection(provider="google_calendar", level=Level.USER, user_id="user-1")
    seed.connection(provider="google_calendar", level=Level.USER, user_id="user-2")

    answer = call(http_event("GET", "/integrations", claims=MANAGER, query={"level": "user"}))

    google = next(c for c in body_of(answer)["integrations"] if c["provider"] == "google_calendar")
    assert [c["id"] for c in google["connections"]] == [mine.id]


def test_get_connection(call: Call) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(http_event("GET", f"/connections/{conn.id}", claims=VIEWER))

    body = body_of(answer)
    assert answer["statusCode"] == 200
    assert body["id"] == conn.id
    assert body["can_manage"] is False
    assert "access_token" not in json.dumps(body)


# What the sandbox's HighLevel would list: pipelines, and each pipeline's stages.
GHL_CHOICES = {"pipeline_id": {None: ["p1", "p2"]}, "stage_id": {"p1": ["s1"], "p2": ["s2"]}}


@dataclass
class ProviderChoices:
    """Stands in for HighLevel's option lists; records each lookup."""

    asked: list[tuple[str, str | None]] = field(default_factory=list)

    def options(
        self, spec: Any, connection: Any, credentials: Any, name: str, parent: str | None
    ) -> list[Option]:
        self.asked.append((name, parent))
        return [Option(value=v, label=v.upper()) for v in GHL_CHOICES[name].get(parent, [])]


@pytest.fixture
def ghl_choices(monkeypatch: pytest.MonkeyPatch) -> ProviderChoices:
    choices = ProviderChoices()
    monkeypatch.setattr(ghl_connect.MODULE, "options", choices.options)
    return choices


def test_patch_config_validates_against_the_schema(call: Call, ghl_choices: ProviderChoices) -> None:
    conn = seed.connection(provider="ghl")

    bad = call(
        http_event("PATCH", f"/connections/{conn.id}", claims=MANAGER, body={"config": {"pipeline_id": 5}})
    )
    good = call(
        http_event(
            "PATCH",
            f"/connections/{conn.id}",
            claims=MANAGER,
            body={"config": {"pipeline_id": "p1", "stage_id": "s1"}},
        )
    )

    assert bad["statusCode"] == 422
    assert {d["field"] for d in body_of(bad)["details"]} == {"pipeline_id", "stage_id"}
    assert good["statusCode"] == 200
    assert body_of(good)["config"] == {"pipeline_id": "p1", "stage_id": "s1"}


def _patch(call: Call, conn_id: str, config: dict[str, Any]) -> dict[str, Any]:
    return call(http_event("PATCH", f"/connections/{conn_id}", claims=MANAGER, body={"config": config}))


def test_a_value_the_provider_does_not_offer_is_a_422_naming_the_field(
    call: Call, ghl_choices: ProviderChoices
) -> None:
    conn = seed.connection(provider="ghl")

    made_up_stage = _patch(call, conn.id, {"pipeline_id": "p1", "stage_id": "s2"})
    made_up_pipeline = _patch(call, conn.id, {"pipeline_id": "evil", "stage_id": "s1"})

    assert made_up_stage["statusCode"] == 422
    assert body_of(made_up_stage)["code"] == "invalid_config"
    assert [d["field"] for d in body_of(made_up_stage)["details"]] == ["stage_id"]
    assert "Stage" in body_of(made_up_stage)["details"][0]["message"]
    assert [d["field"] for d in body_of(made_up_pipeline)["details"]] == ["pipeline_id"]
    # A stage is looked up among the chosen pipeline's stages, and not at all under a refused pipeline
    assert ghl_choices.asked == [("pipeline_id", None), ("stage_id", "p1"), ("pipeline_id", None)]


def test_unchanged_values_are_not_looked_up_again(call: Call, ghl_choices: ProviderChoices) -> None:
    conn = seed.connection(provider="ghl")
    assert _patch(call, conn.id, {"pipeline_id": "p1", "stage_id": "s1"})["statusCode"] == 200
    ghl_choices.asked.clear()

    same = _patch(call, conn.id, {"pipeline_id": "p1", "stage_id": "s1"})
    moved = _patch(call, conn.id, {"pipeline_id": "p2", "stage_id": "s1"})

    assert same["statusCode"] == 200
    assert moved["statusCode"] == 422
    assert [d["field"] for d in body_of(moved)["details"]] == ["stage_id"]
    # The stage did not change, but its pipeline did: it is checked against the new pipeline's stages
    assert ghl_choices.asked == [("pipeline_id", None), ("stage_id", "p2")]


@pytest.mark.parametrize("body", ["{not json", "[]", '{"config": "x"}', "{}"])
def test_malformed_patch_bodies_are_4xx_never_5xx(call: Call, body: str) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(http_event("PATCH", f"/connections/{conn.id}", claims=MANAGER, body=body))

    assert 400 <= answer["statusCode"] < 500
    assert "code" in body_of(answer)


def test_delete_removes_connection_credentials_and_emits_disconnected(call: Call, aws: Any) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(http_event("DELETE", f"/connections/{conn.id}", claims=MANAGER))

    assert answer["statusCode"] == 204
    connections, _ = seed.repositories()
    assert connections.get(conn.id) is None
    again = call(http_event("GET", f"/connections/{conn.id}", claims=MANAGER))
    assert again["statusCode"] == 404


def test_health_lists_every_client_with_status_filter_and_pages(call: Call) -> None:
    ids = {seed.connection(provider="ghl", client_id=f"client-{i}").id for i in range(5)}

    first = body_of(call(http_event("GET", "/agency/health", claims=ADMIN, query={"limit": "3"})))
    second = body_of(
        call(
            http_event(
                "GET", "/agency/health", claims=ADMIN, query={"limit": "3", "cursor": first["next_cursor"]}
            )
        )
    )
    connected = body_of(
        call(http_event("GET", "/agency/health", claims=ADMIN, query={"status": "connected"}))
    )
    errored = body_of(call(http_event("GET", "/agency/health", claims=ADMIN, query={"status": "error"})))

    seen = {i["connection_id"] for i in first["items"] + second["items"]}
    assert seen == ids
    assert len(connected["items"]) == 5
    assert errored["items"] == []
    assert first["items"][0]["token_expires_at"] is not None


def test_health_cursor_cannot_be_replayed_by_another_agency(call: Call) -> None:
    for i in range(3):
        seed.connection(provider="ghl", client_id=f"client-{i}")
    cursor = body_of(call(http_event("GET", "/agency/health", claims=ADMIN, query={"limit": "1"})))[
        "next_cursor"
    ]
    other_admin = claims(sub="admin-2", agency_id="agency-2", client_id=None, role="agency_admin")

    answer = call(http_event("GET", "/agency/health", claims=other_admin, query={"cursor": cursor}))

    assert answer["statusCode"] == 400
    assert body_of(answer)["code"] == "invalid_cursor"


def test_settings_round_trip_and_tier_is_not_settable(call: Call) -> None:
    seed.agency("agency-1", Tier.GROWTH)
    update = {
        "enabled_providers": ["ghl", "slack"],
        "staff_personal_connections": False,
        "contact_personal_connections": True,
    }

    put = call(http_event("PUT", "/agency/settings", claims=ADMIN, body=update))
    got = call(http_event("GET", "/agency/settings", claims=ADMIN))
    with_tier = call(
        http_event("PUT", "/agency/settings", claims=ADMIN, body={**update, "tier": "enterprise"})
    )

    assert put["statusCode"] == 200
    assert body_of(got) == {"tier": "growth", **update}
    assert with_tier["statusCode"] == 422


def test_settings_reject_unknown_providers(call: Call) -> None:
    answer = call(
        http_event("PUT", "/agency/settings", claims=ADMIN, body={"enabled_providers": ["myspace"]})
    )

    assert answer["statusCode"] == 422
    assert body_of(answer)["code"] == "unknown_provider"


def test_unknown_route_is_a_json_404(call: Call) -> None:
    answer = call(http_event("GET", "/nope", claims=MANAGER))

    assert answer["statusCode"] == 404
    assert body_of(answer)["code"] == "route_not_found"


def test_committed_openapi_document_matches_the_code(call: Call) -> None:
    from tests.support.openapi_export import TARGET, generate

    served = call(http_event("GET", "/openapi.json"))

    assert served["statusCode"] == 200
    assert json.loads(served["body"]) == json.loads(TARGET.read_text())
    assert json.loads(generate()) == json.loads(TARGET.read_text()), "run `make openapi` and commit"


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        ("text/plain", 415, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_a_body_that_is_not_json_is_4xx_never_5xx(
    call: Call, content_type: str, status: int, code: str
) -> None:
    conn = seed.connection(provider="ghl")

    answer = call(
        http_event(
            "PATCH",
            f"/connections/{conn.id}",
            claims=MANAGER,
            body="_/du",
            headers={"content-type": content_type},
        )
    )

    assert answer["statusCode"] == status
    assert body_of(answer)["code"] == code
