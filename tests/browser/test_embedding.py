"""The embed snippet on another site, with third-party cookies blocked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import suppress

import pytest
import requests
from babel.messages.pofile import read_po
from playwright.sync_api import Page, Request, Response, expect

from app.plumbing.i18n import TRANSLATIONS
from tests.browser.conftest import EmbeddingSite, demo_key, read_event_json
from tests.support.servers import AppServer, free_port


@pytest.fixture
def allowed_site(widget_server: AppServer, allowed_site_port: int) -> Iterator[EmbeddingSite]:
    site = EmbeddingSite(widget_server.url, allowed_site_port)
    yield site
    site.close()


@pytest.fixture
def unlisted_site(widget_server: AppServer) -> Iterator[EmbeddingSite]:
    site = EmbeddingSite(widget_server.url, free_port())
    yield site
    site.close()


def _wait_for_event(page: Page, count: int = 1) -> list[dict]:
    page.wait_for_function(f"(window.passidEvents || []).length >= {count}", timeout=10_000)
    return read_event_json(page)


def test_the_snippet_inserts_the_widget_and_delivers_passid_success(
    page: Page, allowed_site: EmbeddingSite, widget_server: AppServer
) -> None:
    set_cookies: list[str] = []
    page.on("response", lambda r: set_cookies.append(r.url) if "set-cookie" in r.headers else None)
    page.goto(allowed_site.origin)
    widget = page.frame_locator("#passid iframe")
    expect(widget.locator("#passid-widget")).to_have_attribute("data-state", "idle")
    expect(widget.locator(".passid__institution")).to_have_text("Partner Bank")
    widget.get_by_label("Enter a PASSID token").fill("ke8v3txyz72l")
    widget.get_by_role("button", name="Verify token").click()

    [event] = _wait_for_event(page)
    assert event["type"] == "passid:success"
    detail = event["detail"]
    assert detail["token"] == "KE8V-3TXY-Z72L"
    # Only what this embed asked for: full_score and identity_verified.
    assert set(detail["claims"]) == {
        "fsi_score", "fsi_low", "fsi_high", "tier", "confidence", "p_stable", "identity_verified",
    }
    assert detail["resultId"].startswith("res_")

    # The institution's backend does not trust the browser: it fetches the result with its key.
    fetched = requests.get(
        f"{widget_server.url}/api/results/{detail['resultId']}",
        headers={"X-Institution-Key": demo_key(widget_server)}, timeout=10,
    ).json()
    assert fetched["verified"] is True and fetched["claims"] == detail["claims"]
    assert fetched["token"] == "KE8V-3TXY-Z72L" and fetched["source"] == "manual"

    # Third-party cookies are blocked, and the widget never needed one.
    assert set_cookies == []
    assert page.context.cookies() == []


def test_a_qr_approval_reaches_the_embedding_page_with_the_request_id(
    page: Page, sandbox_phone: Page, allowed_site: EmbeddingSite
) -> None:
    page.goto(allowed_site.origin)
    widget = page.frame_locator("#passid iframe")
    widget.get_by_role("button", name="Generate QR").click()
    phone_url = widget.locator("[data-phone-link]").get_attribute("href")
    sandbox_phone.goto(phone_url)
    expect(sandbox_phone.get_by_role("heading")).to_contain_text("Partner Bank")
    sandbox_phone.get_by_role("button", name="Share & Verify").click()
    [event] = _wait_for_event(page)
    assert event["type"] == "passid:success"
    assert event["detail"]["requestId"] == phone_url.split("r=")[1]
    assert event["detail"]["claims"]["fsi_score"] == 812


def test_nothing_the_browser_receives_in_a_sanctions_decline_names_the_reason(
    page: Page, allowed_site: EmbeddingSite, widget_server: AppServer
) -> None:
    """Tipping-off: every response, URL and header the customer's browser gets, and the event the page
    gets, is free of the reason; only the institution's server reads it, by result id, with its key."""
    received: list[str] = []

    def keep(response: Response) -> None:
        received.append(response.url)
        received.append(str(response.all_headers()))
        with suppress(Exception):  # a redirect or an aborted request has no body to read
            received.append(response.body().decode("utf-8", "replace"))

    page.on("response", keep)
    page.goto(allowed_site.origin)
    widget = page.frame_locator("#passid iframe")
    widget.get_by_label("Enter a PASSID token").fill("TEST-SANC-0005")
    widget.get_by_role("button", name="Verify token").click()
    [event] = _wait_for_event(page)
    expect(widget.locator(".passid-message")).to_contain_text("can't complete this verification here")
    assert event["type"] == "passid:decline"
    assert event["detail"] == {"reason": "denied", "resultId": event["detail"]["resultId"]}
    seen = "\n".join([*received, str(event), page.url, *(frame.url for frame in page.frames)]).upper()
    assert len(received) >= 6 and "TEST-SANC-0005" in seen  # the scan saw the verify's own answer
    assert "HARD_DENY" not in seen and "SANCTION" not in seen

    fetched = requests.get(
        f"{widget_server.url}/api/results/{event['detail']['resultId']}",
        headers={"X-Institution-Key": demo_key(widget_server)}, timeout=10,
    ).json()
    assert fetched["denyReason"] == "HARD_DENY_SANCTIONS_MATCH"


def test_a_page_not_on_the_allow_list_cannot_frame_the_widget_or_get_messages(
    page: Page, unlisted_site: EmbeddingSite, widget_server: AppServer
) -> None:
    """The browser says it refused the frame (not merely that the widget has not shown yet)."""

    def is_widget(request: Request) -> bool:
        return request.url.startswith(f"{widget_server.url}/verify?")

    refusal = re.compile(r"Framing '[^']+' violates the following Content Security Policy directive: \"frame-ancestors")
    with page.expect_console_message(lambda message: bool(refusal.search(message.text))) as refused, \
            page.expect_event("requestfailed", is_widget) as blocked:
        page.goto(unlisted_site.origin)
    assert blocked.value.failure == "net::ERR_BLOCKED_BY_RESPONSE"  # the answer came, and its CSP refused the frame
    assert refused.value.type == "error"
    [child] = page.main_frame.child_frames
    child.wait_for_url("chrome-error://chromewebdata/")  # Chromium's error page stands in its place
    assert page.frame_locator("#passid iframe").locator("#passid-widget").count() == 0
    assert read_event_json(page) == []
    # Even asked directly, the widget will not address messages to that origin.
    html = requests.get(f"{widget_server.url}/verify", params={"origin": unlisted_site.origin}, timeout=10).text
    assert "data-parent-origin" not in html


def test_the_frame_ancestors_policy_lists_exactly_the_allowed_origins(
    widget_server: AppServer, allowed_site_port: int
) -> None:
    policy = requests.get(f"{widget_server.url}/verify", timeout=10).headers["Content-Security-Policy"]
    ancestors = next(part for part in policy.split(";") if "frame-ancestors" in part).split()[1:]
    assert ancestors == ["'self'", f"http://localhost:{allowed_site_port}"]
    assert "unsafe-inline" not in policy and "*" not in ancestors


def catalogue_text(locale: str, msgid: str) -> str:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        entry = read_po(source).get(msgid)
    assert entry is not None and entry.string, msgid
    return str(entry.string)


def test_the_snippet_s_language_and_look_reach_the_widget_and_stay_through_its_later_answers(
    page: Page, widget_server: AppServer, allowed_site_port: int
) -> None:
    """data-locale, data-color-scheme, data-radius and data-font, whatever the browser's own language
    (English here): the iframe's page, and the awaiting state htmx swaps in after "Generate QR"."""
    site = EmbeddingSite(widget_server.url, allowed_site_port,
                         attributes='data-locale="ar" data-color-scheme="dark" data-radius="round" data-font="serif"')
    try:
        page.goto(site.origin)
        frame = page.frame_locator("#passid iframe")
        html = frame.locator("html")
        expect(html).to_have_attribute("lang", "ar")
        expect(html).to_have_attribute("dir", "rtl")
        expect(html).to_have_attribute("data-color-scheme", "dark")
        expect(html).to_have_attribute("data-radius", "round")
        expect(html).to_have_attribute("data-font", "serif")
        frame.get_by_role("button", name=catalogue_text("ar", "Generate QR")).click()
        expect(frame.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")
        expect(frame.locator(".passid-view__title")).to_have_text(catalogue_text("ar", "Approve in the PASSID app"))
    finally:
        site.close()
