"""A connect link opened outside the portal (forwarded, phished) asks the person before it binds."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from integrations import aws as aws_clients
from integrations.config import Settings
from tests.integration.oauth.conftest import GATEWAY, Browser, claims

FORWARDED: dict[str, str] = {}  # no Sec-Fetch-Site, no Referer: a link pasted or opened from a mail
TYPED = {"Sec-Fetch-Site": "none"}
FROM_ELSEWHERE = {"Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/page"}
FROM_PORTAL_ACROSS_SITES = {"Sec-Fetch-Site": "cross-site", "Referer": f"{GATEWAY}/portal/clients/a"}


def confirm_link(page: Any) -> str:
    found = re.search(r'id="continue" href="([^"]+)"', page.raw["body"])
    assert found, page.raw["body"]
    return unescape(found.group(1))


def session_items() -> list[dict[str, Any]]:
    table = Settings.from_env().state_table_name
    items = aws_clients.dynamodb().scan(TableName=table)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("OAUTH#")]


def started(browser: Browser, provider: str = "hubspot", **kwargs: Any) -> str:
    answer = browser.start(provider, **kwargs)
    assert answer.status == 200, answer.body
    return str(answer.body["redirect_url"])


def test_a_forwarded_link_gets_a_confirmation_page_and_binds_nothing(browser: Browser) -> None:
    who = claims(sub="user-1", agency_id="agency-1", client_id="client-a", role="client_user")
    who["email"] = "sam@agency.example"
    link = started(browser, who=who)
    page = browser.get(link, headers=FORWARDED)
    assert page.status == 200
    assert page.location == ""
    body = page.raw["body"]
    assert 'id="provider">HubSpot<' in body
    assert "client client-a of agency agency-1" in body
    assert 'id="requested-by">sam@agency.example<' in body
    headers = {k.lower(): v for k, v in page.headers.items()}
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    # Not bound: no binding cookie, and the stored session has no cookie hash yet.
    assert not any(c.startswith("oauth_session_") for c in page.cookies)
    assert [("cookie_hash" in i) for i in session_items()] == [False]


def test_typed_and_cross_site_navigations_are_asked_too(browser: Browser) -> None:
    for headers in (TYPED, FROM_ELSEWHERE):
        page = browser.get(started(browser), headers=headers)
        assert page.status == 200 and 'id="continue"' in page.raw["body"], headers


def test_the_portal_navigation_redirects_straight_to_the_provider(browser: Browser) -> None:
    for headers in (
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-site"},
        FROM_PORTAL_ACROSS_SITES,
    ):
        answer = browser.get(started(browser), headers=headers)
        assert answer.status == 302, headers
        assert "/hubspot/oauth/authorize" in answer.location
        assert any(c.startswith("oauth_session_hubspot=") for c in answer.cookies)


def test_confirming_binds_and_goes_on_to_the_provider_and_back(browser: Browser) -> None:
    page = browser.get(started(browser), headers=FORWARDED)
    # The click on "Continue" is a same-origin navigation from our own page.
    at_provider = browser.get(confirm_link(page), headers={"Sec-Fetch-Site": "same-origin"})
    assert at_provider.status == 302
    assert "/hubspot/oauth/authorize" in at_provider.location
    cleared = [c for c in at_provider.cookies if c.startswith("oauth_confirm_hubspot=")]
    assert cleared and "Max-Age=0" in cleared[0]
    assert [("cookie_hash" in i) for i in session_items()] == [True]
    done = browser.get(browser.consent(at_provider.location))
    assert done.result()["result"] == "connected"


def test_a_confirm_token_cannot_be_replayed(browser: Browser) -> None:
    page = browser.get(started(browser), headers=FORWARDED)
    link = confirm_link(page)
    jar = dict(browser.jar)
    assert browser.get(link).status == 302
    browser.jar.update(jar)  # the confirm cookie again, as a replaying browser would hold it
    again = browser.get(link)
    assert again.status == 302
    assert again.result() == {"integration": "hubspot", "result": "error", "code": "session_used"}


def test_a_confirm_token_does_not_work_for_another_session(browser: Browser) -> None:
    page_a = browser.get(started(browser), headers=FORWARDED)
    link_a = confirm_link(page_a)
    link_b = started(browser)
    token_a = re.search(r"confirm=([^&]+)", link_a)
    assert token_a
    forged = f"{link_b}&confirm={token_a.group(1)}"
    answer = browser.get(forged)
    # Asked again, and session B stays unbound.
    assert answer.status == 200 and 'id="continue"' in answer.raw["body"]
    assert sorted("cookie_hash" in i for i in session_items()) == [False, False]


def test_a_confirm_link_forwarded_to_another_browser_asks_that_browser(
    browser: Browser, oauth_function: Any, lambda_context: Any
) -> None:
    page = browser.get(started(browser), headers=FORWARDED)
    other = Browser(oauth_function.handler, lambda_context)
    answer = other.get(confirm_link(page))
    assert answer.status == 200 and 'id="continue"' in answer.raw["body"]
    assert [("cookie_hash" in i) for i in session_items()] == [False]
