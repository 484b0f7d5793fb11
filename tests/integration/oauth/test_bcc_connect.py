"""The BCC logging address: reserved once per owner, routed by a lookup item, gone at disconnect."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import pytest

from integrations import aws as aws_clients
from integrations.config import Settings
from integrations.store.connections import ConnectionRepository
from tests.integration.oauth.conftest import Browser
from tests.support.events import body_of, claims, http_event
from tests.support.functions import load_handler

MANAGER = claims(sub="user-1", agency_id="agency-1", client_id="client-a")
VIEWER = claims(sub="viewer-1", agency_id="agency-1", client_id="client-a", permissions="[view_integrations]")
OTHER_CLIENT = claims(sub="user-9", agency_id="agency-1", client_id="client-b")

pytestmark = pytest.mark.usefixtures("oauth_env")


def reserve(browser: Browser, who: dict[str, Any], **body: Any) -> Any:
    return browser.call(http_event("POST", "/integrations/bcc_email/connect", claims=who, body=body or {}))


def repository() -> ConnectionRepository:
    return ConnectionRepository(aws_clients.dynamodb(), Settings.from_env().table_name)


def test_connect_reserves_an_unguessable_address_with_a_routing_lookup(browser: Browser) -> None:
    answer = reserve(browser, MANAGER)

    assert answer.status == 201
    address = answer.body["account_label"]
    assert re.fullmatch(r"log-[0-9a-f]{16}@bcc\.integrations\.invalid", address)
    connection = repository().get(answer.body["id"])
    assert connection is not None
    lookup = repository().get_lookup("bcc_email", "address", address.split("@")[0])
    assert lookup is not None
    assert (lookup.connection_id, lookup.agency_id, lookup.client_id) == (
        connection.id,
        "agency-1",
        "client-a",
    )


def test_connecting_again_answers_the_same_address(browser: Browser) -> None:
    first = reserve(browser, MANAGER)

    second = reserve(browser, MANAGER)

    assert second.status == 200
    assert second.body["id"] == first.body["id"]
    assert second.body["account_label"] == first.body["account_label"]


def test_each_client_gets_its_own_address(browser: Browser) -> None:
    mine = reserve(browser, MANAGER)

    theirs = reserve(browser, OTHER_CLIENT)

    assert theirs.body["account_label"] != mine.body["account_label"]


def test_a_viewer_cannot_reserve_an_address(browser: Browser) -> None:
    answer = reserve(browser, VIEWER)

    assert answer.status == 403
    assert answer.body["code"] == "missing_manage_permission"


def test_disconnect_removes_the_address_lookup(browser: Browser, lambda_context: Any) -> None:
    address = reserve(browser, MANAGER).body
    connectors: ModuleType = load_handler("connectors")

    removed = connectors.handler(
        http_event("DELETE", f"/connections/{address['id']}", claims=MANAGER), lambda_context
    )

    assert removed["statusCode"] == 204, body_of(removed)
    local_part = address["account_label"].split("@")[0]
    assert repository().get_lookup("bcc_email", "address", local_part) is None


def test_the_reserving_persons_verified_email_is_kept_as_the_owners_address(browser: Browser) -> None:
    with_email = {**MANAGER, "email": "Sam@Agency.example"}

    answer = reserve(browser, with_email)

    connection = repository().get(answer.body["id"])
    assert connection is not None and connection.owner_email == "sam@agency.example"


def test_without_an_email_claim_no_owner_address_is_kept(browser: Browser) -> None:
    answer = reserve(browser, MANAGER)

    connection = repository().get(answer.body["id"])
    assert connection is not None and connection.owner_email is None
