"""Same device: the customer's phone shows the widget and holds the PASSID app.

They cannot scan a QR on their own screen, so the awaiting state leads with
"Open the PASSID app" (the request's deep link), and the widget checks at once
when they come back to the tab instead of waiting for the next 2.5 s poll.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from app.passid import RequestStatus
from app.widget import routes, signed_handles
from app.widget.options import options_from
from tests.browser.conftest import POLL_COUNTER, STATE_RECORDER, client_for, polls_started
from tests.support.servers import AppServer

POLL_INTERVAL_SECONDS = 2.5  # templates/widget/_awaiting.html: every 2500ms
POLL_CHECK_SECONDS = 2  # tests/browser/conftest.py: widget_server's PASSID_POLL_CHECK_SECONDS

# Coming back from the app, as the browser reports it: visible again, the window focused, and
# (when the page was restored from the back/forward cache) pageshow.
RETURN_TO_TAB = """
Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
document.dispatchEvent(new Event("visibilitychange"));
window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }));
window.dispatchEvent(new FocusEvent("focus"));
"""
LEAVE_TAB = """
Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
document.dispatchEvent(new Event("visibilitychange"));
window.dispatchEvent(new FocusEvent("blur"));
"""


@pytest.fixture
def device_page(device_page: Page) -> Page:
    """The device's page (tests/browser/conftest.py), recording the widget's states and counting its polls."""
    device_page.add_init_script(STATE_RECORDER)
    device_page.add_init_script(POLL_COUNTER)
    return device_page


def generate_qr(page: Page, server: AppServer) -> str:
    """Open the widget and press "Verify with the PASSID app"; the PASSID request id the awaiting state is for."""
    page.goto(f"{server.url}/verify")
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")
    phone_link = page.locator("[data-phone-link]").get_attribute("href") or ""
    return parse_qs(urlsplit(phone_link).query)["r"][0]


def sandbox_deep_link(server: AppServer, request_id: str) -> str:
    """The deepLink the sandbox gives `request_id`: its create-request answer's form, for that request.

    get_request does not return the deep link; a request created with the same key shows the
    sandbox's form (scheme, path, parameter order, institution), and only the id differs.
    """
    sibling = client_for(server).create_request()
    assert f"r={sibling.request_id}" in sibling.deep_link
    return sibling.deep_link.replace(f"r={sibling.request_id}", f"r={request_id}")


def freeze_poll_timer(page: Page) -> None:
    """Stop the page's clock just after now (Python's pause_at takes seconds): no timer fires from here."""
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.2)


def approve_on_phone(phone: Page, server: AppServer, deep_link: str) -> None:
    """The PASSID app opened by the deep link: the sandbox phone page takes the pasted link."""
    phone.goto(f"{server.sandbox_url}/phone")
    phone.get_by_label("Code or link").fill(deep_link)
    phone.get_by_role("button", name="Open request").click()
    phone.get_by_role("button", name="Share & Verify").click()
    expect(phone.locator("[data-outcome=completed]")).to_be_visible()


def test_the_awaiting_state_offers_the_requests_own_deep_link(
    device_page: Page, widget_server: AppServer, device: str
) -> None:
    page = device_page
    request_id = generate_qr(page, widget_server)
    link = page.locator("[data-deep-link]")
    expect(link).to_be_visible()
    expect(link).to_have_text("Open the PASSID app")
    assert link.get_attribute("href") == sandbox_deep_link(widget_server, request_id)
    # The sandbox phone page stays a separate link: nothing on a test machine opens passid://.
    phone_link = page.locator("[data-phone-link]")
    expect(phone_link).to_be_visible()
    assert (phone_link.get_attribute("href") or "").startswith(widget_server.sandbox_url)
    expect(page.locator(".passid-sandbox")).to_contain_text("Sandbox")
    expect(page.locator("svg.passid-qr")).to_be_visible()
    expect(page.locator(".passid-code")).to_be_visible()


def test_on_a_phone_the_deep_link_is_the_first_action_above_the_qr_and_the_fold(
    device_page: Page, widget_server: AppServer, device: str
) -> None:
    page = device_page
    generate_qr(page, widget_server)
    link = page.locator("[data-deep-link]")
    box = link.bounding_box()
    qr = page.locator(".passid-qr-frame").bounding_box()
    assert box is not None and qr is not None
    first_action = page.locator("#passid-state").locator("a, button").first
    assert first_action.get_attribute("data-deep-link") is not None
    background = link.evaluate("el => getComputedStyle(el).backgroundColor")
    if device == "phone":
        assert box["height"] >= 44
        assert box["y"] + box["height"] <= 844  # within the first viewport, no scrolling
        assert box["y"] + box["height"] <= qr["y"]
        assert background == "rgb(0, 194, 122)"  # the primary button's colour (--passid-primary)
    else:  # first in the markup still (and so for a screen reader), but shown below the QR a desktop scans
        assert qr["y"] + qr["height"] <= box["y"]
        assert background == "rgb(255, 255, 255)"  # secondary


def test_approval_made_in_the_app_shows_the_moment_the_customer_returns(
    device_page: Page, sandbox_phone: Page, widget_server: AppServer, device: str
) -> None:
    """The poll timer is frozen (Playwright's clock), so only the return can bring the answer."""
    page = device_page
    page.clock.install()
    request_id = generate_qr(page, widget_server)
    awaiting_at = time.monotonic()
    freeze_poll_timer(page)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/verify/qr/status" in request.url else None)

    page.evaluate(LEAVE_TAB)
    approve_on_phone(sandbox_phone, widget_server, page.locator("[data-deep-link]").get_attribute("href") or "")
    assert client_for(widget_server).get_request(request_id).status == RequestStatus.COMPLETED
    # Past the widget's 2.5 s poll, which must not fire (its timer is frozen), and past our app's
    # POLL_CHECK_SECONDS, so the one check on return finds the approval with or without a webhook.
    time.sleep(max(0.0, awaiting_at + max(POLL_INTERVAL_SECONDS, POLL_CHECK_SECONDS) + 0.5 - time.monotonic()))
    assert polls == [], "the frozen poll timer fired"

    page.evaluate(RETURN_TO_TAB)
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "success", timeout=5_000)
    expect(page.locator(".passid-score__value")).to_have_text("812")  # the phone page's default profile
    assert len(polls) == 1, f"visibilitychange, pageshow and focus together should check once: {polls}"


def test_the_return_check_waits_for_the_customer_to_see_the_tab(
    device_page: Page, widget_server: AppServer, device: str
) -> None:
    """Hiding the tab, or a pageshow that is a first load, asks nothing; coming back asks once.

    A check starts in the same task as the event that asks for it (POLL_COUNTER), so the count read
    right after the events is final: the return at the end shows the counter sees a check at once.
    """
    page = device_page
    page.clock.install()
    generate_qr(page, widget_server)
    freeze_poll_timer(page)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/verify/qr/status" in request.url else None)
    before = polls_started(page)
    page.evaluate(LEAVE_TAB)
    page.evaluate('window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: false }))')
    assert polls_started(page) == before
    with page.expect_request("**/verify/qr/status*"):
        page.evaluate(RETURN_TO_TAB)
    assert polls_started(page) == before + 1
    assert len(polls) == 1, polls  # the return's check, and none before it


@pytest.mark.parametrize(("deep_link", "offered"), [
    ("passid://verify-request?r=req_abc&i=inst_1", True),
    ("javascript:alert(document.domain)", False),
    ("https://passid.example.net/verify-request?r=req_abc", False),
])
def test_only_passids_own_scheme_becomes_the_open_app_link(app: Flask, deep_link: str, offered: bool) -> None:
    """The link is clicked on our origin: a deep link PASSID never sends must not become one."""
    expires_at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    with app.test_request_context("/verify/qr/session", method="POST"):
        handle = signed_handles.sign("request", {"r": "req_abc", "c": "ABCD-EFGH", "d": deep_link, "x": expires_at})
        html = routes.awaiting(options_from({}), handle).get_data(as_text=True)
    assert ('data-deep-link' in html) is offered
    if offered:
        assert 'href="passid://verify-request?r=req_abc&amp;i=inst_1"' in html
