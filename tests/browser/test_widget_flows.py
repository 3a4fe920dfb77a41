"""The widget's states in real Chromium, followed through data-state."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.passid import PassidClient
from tests.browser.conftest import demo_key, polls_started, states
from tests.support.servers import AppServer
from tests.support.waiting import wait_until

FIXED = {  # the fixed tokens whose verdict is approve (GH2P-ABCD-56KL's is review: below)
    "KE8V-3TXY-Z72L": ("812", "Tier A"),
    "NG4M-XQRS-T88W": ("743", "Tier B"),
}
DENIED = {
    "TEST-EXPD-0001": "expired",
    "TEST-RVKD-0002": "revoked",
    "TEST-USED-0003": "already been used",
    "TEST-MISM-0004": "different organisation",
    "TEST-SANC-0005": "can't complete this verification here",
}


def widget(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#passid-widget")


def open_widget(page: Page, server: AppServer, query: str = "") -> None:
    page.goto(f"{server.url}/verify{query}")
    expect(widget(page)).to_have_attribute("data-state", "idle")


def test_the_idle_widget_offers_a_qr_and_manual_entry(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    expect(page.get_by_role("button", name="Verify with the PASSID app")).to_be_visible()
    expect(page.get_by_label("Enter a PASSID token")).to_be_visible()


def test_the_qr_flow_completes_when_the_customer_approves_on_the_phone(
    page: Page, sandbox_phone: Page, widget_server: AppServer
) -> None:
    page.clock.install()  # time flows as usual until the end, where the test moves it on
    open_widget(page, widget_server)
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(widget(page)).to_have_attribute("data-state", "awaiting")
    assert states(page)[:3] == ["idle", "requesting", "awaiting"]
    code = page.locator(".passid-code").inner_text()
    assert re.match(r"^[A-Z2-9]{4}-[A-Z2-9]{4}$", code)
    expect(page.locator("svg.passid-qr")).to_be_visible()
    expect(page.locator(".passid-countdown__time")).to_have_text(re.compile(r"^(10:00|9:5\d)$"))
    expect(page.locator(".passid-pulse")).to_be_visible()

    sandbox_phone.goto(page.locator("[data-phone-link]").get_attribute("href"))
    expect(sandbox_phone.get_by_role("heading")).to_contain_text("Demo Bank asks to verify you")
    sandbox_phone.get_by_label("Chidi (Nigeria → United States), tier B").check()
    sandbox_phone.get_by_role("button", name="Share & Verify").click()
    expect(sandbox_phone.locator("[data-outcome=completed]")).to_be_visible()

    expect(widget(page)).to_have_attribute("data-state", "success", timeout=10_000)
    expect(page.locator(".passid-score__value")).to_have_text("743")
    expect(page.locator(".passid-score__tier")).to_have_text("Tier B")
    expect(page.locator(".passid-claims")).to_contain_text("Identity verified")
    expect(page.locator(".passid-claims")).to_contain_text("Income verified ($50,000 to $75,000)")
    expect(page.locator(".passid-claims")).not_to_contain_text("Fraud risk")  # the bank's risk view, not theirs
    expect(page.locator(".passid-claims")).not_to_contain_text("sanctions")

    # Polling stops once the widget has its answer (a poll brought it): four poll intervals later, in
    # the page's time, no further poll has started.
    polls = polls_started(page)
    assert polls >= 1
    page.clock.run_for(10_000)
    assert polls_started(page) == polls
    expect(widget(page)).to_have_attribute("data-state", "success")


def test_the_customer_can_open_the_request_by_typing_the_code_on_the_phone(
    page: Page, sandbox_phone: Page, widget_server: AppServer
) -> None:
    open_widget(page, widget_server)
    page.get_by_role("button", name="Verify with the PASSID app").click()
    code = page.locator(".passid-code").inner_text()
    sandbox_phone.goto(f"{widget_server.sandbox_url}/phone")
    sandbox_phone.get_by_label("Code or link").fill(code.lower().replace("-", ""))
    sandbox_phone.get_by_role("button", name="Open request").click()
    sandbox_phone.get_by_role("button", name="Share & Verify").click()
    expect(widget(page)).to_have_attribute("data-state", "success", timeout=10_000)
    expect(page.locator(".passid-score__value")).to_have_text("812")


def test_the_qr_flow_shows_declined_when_the_customer_declines_on_the_phone(
    page: Page, sandbox_phone: Page, widget_server: AppServer
) -> None:
    open_widget(page, widget_server)
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(widget(page)).to_have_attribute("data-state", "awaiting")
    sandbox_phone.goto(page.locator("[data-phone-link]").get_attribute("href"))
    sandbox_phone.get_by_role("button", name="Decline").click()
    expect(widget(page)).to_have_attribute("data-state", "declined", timeout=10_000)
    expect(page.locator(".passid-message")).to_contain_text("declined in the PASSID app")
    page.get_by_role("button", name="Try again").click()
    expect(widget(page)).to_have_attribute("data-state", "idle")


@pytest.mark.parametrize("token", list(FIXED))
def test_each_fixed_sandbox_token_verifies_by_manual_entry(
    page: Page, widget_server: AppServer, token: str
) -> None:
    score, tier = FIXED[token]
    open_widget(page, widget_server)
    page.get_by_label("Enter a PASSID token").fill(f"passid-{token.lower()}")
    page.get_by_role("button", name="Verify token").click()
    expect(widget(page)).to_have_attribute("data-state", "success")
    assert "verifying" in states(page)
    expect(page.locator(".passid-score__value")).to_have_text(score)
    expect(page.locator(".passid-score__tier")).to_have_text(tier)


def test_the_tier_c_profile_is_told_the_bank_will_follow_up_not_verified(page: Page, widget_server: AppServer) -> None:
    """Its verdict is review: the customer reads neither "Verified" nor the bank's reasons or the claims."""
    open_widget(page, widget_server)
    page.get_by_label("Enter a PASSID token").fill("GH2P ABCD 56KL")
    page.get_by_role("button", name="Verify token").click()
    expect(widget(page)).to_have_attribute("data-state", "success")
    expect(page.get_by_role("heading", name="Details shared")).to_be_visible()
    expect(widget(page)).to_contain_text("Demo Bank has what it needs and will tell you the next step.")
    expect(widget(page)).not_to_contain_text("Verified")
    expect(page.locator(".passid-claim")).to_have_count(0)


@pytest.mark.parametrize("token", list(DENIED))
def test_each_deny_token_shows_its_own_message(page: Page, widget_server: AppServer, token: str) -> None:
    open_widget(page, widget_server)
    page.get_by_label("Enter a PASSID token").fill(token)
    page.get_by_role("button", name="Verify token").click()
    expect(widget(page)).to_have_attribute("data-state", "declined")
    expect(page.locator(".passid-message")).to_contain_text(DENIED[token])


def test_a_sanctions_match_reads_as_a_neutral_decline(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    page.get_by_label("Enter a PASSID token").fill("TEST-SANC-0005")
    page.get_by_role("button", name="Verify token").click()
    expect(widget(page)).to_have_attribute("data-state", "declined")
    text = page.locator("#passid-widget").inner_text().lower()
    for tipping_off in ("sanction", "watch", "ofac", "list"):
        assert tipping_off not in text


def test_a_mistyped_token_is_caught_before_it_is_sent(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    page.get_by_label("Enter a PASSID token").fill("KE8V-3TX")
    page.get_by_role("button", name="Verify token").click()
    expect(page.locator("#passid-token-error")).to_contain_text("doesn't look like a PASSID token")
    expect(page.get_by_label("Enter a PASSID token")).to_have_attribute("aria-invalid", "true")
    expect(widget(page)).to_have_attribute("data-state", "idle")


def test_a_one_time_token_submitted_twice_from_one_form_verifies_once(
    page: Page, widget_server: AppServer
) -> None:
    """The double tap: the same form and token reuse one Idempotency-Key, so the
    second submission replays instead of finding the token already used."""
    sandbox = PassidClient(widget_server.sandbox_url)
    created = PassidClient(widget_server.sandbox_url, demo_key(widget_server)).create_request()
    institution_id = created.deep_link.split("i=")[1]
    token = sandbox.create_share_token(sandbox.sandbox_login("KE8V-3TXY-Z72L"), institution_id).token

    open_widget(page, widget_server)
    form = page.locator("form.passid-manual")
    fields = {name: form.locator(f"input[name={name}]").get_attribute("value") for name in ("o", "n")}
    for _ in range(2):
        answer = page.request.post(
            f"{widget_server.url}/verify/token/check", form={**fields, "token": token}
        )
        assert answer.status == 200
        assert 'data-view="success"' in answer.text()


def test_the_poller_sends_back_the_check_window_its_poll_asked_passid_in_and_nothing_else_does(
    page: Page, widget_server: AppServer
) -> None:
    """A poll that asked PASSID is answered with `PASSID-Checked`; widget.js sends it with the poller's next
    polls, so another server behind the same address does not ask again in that window (app/widget/polling.py;
    the servers' half is tests/widget/test_check_windows.py); no other request carries it, not even "check
    now" on the same URL. Here the first poll's answer is the server's own with the header added, as a server
    whose check window it fell in would send it."""
    mark = "1767225607500-0a1b2c3d"
    marked: list[bool] = []

    def first_poll_asked(route):  # type: ignore[no-untyped-def]
        if marked:
            route.continue_()
            return
        response = route.fetch()
        marked.append(True)
        route.fulfill(response=response, headers={**response.headers, "PASSID-Checked": mark})

    answered: list[int] = []
    page.on("requestfinished", lambda r: answered.append(r.response().status)  # type: ignore[union-attr]
            if "/verify/qr/status" in r.url else None)
    sent: list[tuple[str | None, str | None]] = []  # (which element asked, the mark it sent) per status request
    page.on("request", lambda r: sent.append((r.headers.get("hx-trigger"), r.headers.get("passid-checked")))
            if "/verify/qr/status" in r.url else None)
    others: list[str | None] = []
    page.on("request", lambda r: others.append(r.headers.get("passid-checked"))
            if "/verify/qr/status" not in r.url else None)
    page.route("**/verify/qr/status*", first_poll_asked)
    page.clock.install()
    open_widget(page, widget_server)
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(widget(page)).to_have_attribute("data-state", "awaiting")
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.2)  # no timer fires but those the test runs
    for n in range(1, 4):
        page.clock.run_for(2_500)
        wait_until(lambda n=n: page.evaluate("window.__passidPolled") >= n, f"poll {n} answered", every=0.02)
    with page.expect_request_finished(lambda r: "/verify/qr/status" in r.url):
        page.get_by_role("link", name="I've approved — check now").click()  # the same URL, not the poller
    assert answered == [204] * 4
    assert sent == [("passid-poller", None), ("passid-poller", mark), ("passid-poller", mark), (None, None)]
    assert others and all(checked is None for checked in others)
