"""Expiry, and PASSID being down, slow or answering nonsense: error state, then recovery.

Every wait is for a state to appear, with a deadline that only ends a broken run (`PATIENCE`);
none bounds how fast the widget gets there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.faulty_upstream import FaultyUpstream
from tests.support.servers import AppServer, base_env, migrate
from tests.support.waiting import PATIENCE

WAIT = PATIENCE * 1000  # ms, for Playwright

# Every value the countdown shows and every state the widget enters, in order, as the page sees them.
WATCH_COUNTDOWN = """() => {
  const seen = window.passidSeen = [];
  const widget = document.getElementById("passid-widget");
  const time = widget.querySelector(".passid-countdown__time");
  seen.push(time.textContent);
  new MutationObserver(() => seen.push(time.textContent))
    .observe(time, {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => seen.push("state:" + widget.getAttribute("data-state")))
    .observe(widget, {attributes: true, attributeFilter: ["data-state"]});
  // The event fires in the same tick that writes 0:00, before the observer above reports the write.
  document.body.addEventListener("passid:expired", () => seen.push("passid:expired at " + time.textContent));
}"""


@pytest.fixture(scope="module")
def short_ttl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A widget whose QR requests live three seconds (one server for the module: each test opens its own session)."""
    tmp_path = tmp_path_factory.mktemp("short-ttl")
    env = base_env(
        f"sqlite:///{tmp_path / 'passid.db'}", PASSID_SANDBOX_MIN_TTL_SECONDS="1", PASSID_REQUEST_TTL_SECONDS="3"
    )
    migrate(env)
    server = AppServer(env, tmp_path / "app.log").start()
    yield server
    server.stop()


def test_an_expired_code_offers_generate_new_code_which_starts_a_fresh_session(
    page: Page, short_ttl_server: AppServer
) -> None:
    page.goto(f"{short_ttl_server.url}/verify")
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting", timeout=WAIT)
    first_code = page.locator(".passid-code").inner_text()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "declined", timeout=WAIT)
    expect(page.locator(".passid-message")).to_contain_text("expired")
    page.get_by_role("button", name="Generate new code").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting", timeout=WAIT)
    assert page.locator(".passid-code").inner_text() != first_code


def test_the_countdown_reaches_zero_with_the_expiry(page: Page, short_ttl_server: AppServer) -> None:
    """Down to 0:00, second by second; at zero the widget asks at once and shows the expired state."""
    page.goto(f"{short_ttl_server.url}/verify")
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting", timeout=WAIT)
    page.evaluate(WATCH_COUNTDOWN)
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "declined", timeout=WAIT)
    expect(page.locator(".passid-message")).to_contain_text("expired")
    seen: list[str] = page.evaluate("window.passidSeen")
    shown = [value for value in seen if not value.startswith(("state:", "passid:"))]
    seconds = [int(value.replace(":", "")) for value in dict.fromkeys(shown)]
    assert seconds == sorted(seconds, reverse=True) and shown[-1] == "0:00", seen
    # At 0:00 the expiry event makes the widget ask at once; the expired state follows.
    assert seen.index("passid:expired at 0:00") < seen.index("state:declined"), seen


@pytest.mark.parametrize("mode", ["reset", "hang", "error500", "garbage", "wrong_shape"])
def test_passid_failing_shows_the_error_state_and_try_again_recovers(
    page: Page, upstream: tuple[AppServer, FaultyUpstream], mode: str
) -> None:
    server, proxy = upstream
    page.goto(f"{server.url}/verify")
    proxy.mode = mode
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error", timeout=WAIT)
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    proxy.mode = "forward"
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting", timeout=WAIT)


def test_a_manual_verify_that_fails_upstream_can_be_retried(
    page: Page, upstream: tuple[AppServer, FaultyUpstream]
) -> None:
    server, proxy = upstream
    page.goto(f"{server.url}/verify")
    proxy.mode = "error500"
    page.get_by_label("Enter a PASSID token").fill("KE8V-3TXY-Z72L")
    page.get_by_role("button", name="Verify token").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error", timeout=WAIT)
    proxy.mode = "forward"
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "idle", timeout=WAIT)
    page.get_by_label("Enter a PASSID token").fill("KE8V-3TXY-Z72L")
    page.get_by_role("button", name="Verify token").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "success", timeout=WAIT)


def test_a_poll_that_fails_upstream_resumes_the_same_code(
    page: Page, upstream: tuple[AppServer, FaultyUpstream]
) -> None:
    server, proxy = upstream
    page.goto(f"{server.url}/verify")
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting", timeout=WAIT)
    code = page.locator(".passid-code").inner_text()
    proxy.mode = "error500"
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error", timeout=WAIT)
    proxy.mode = "forward"
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "awaiting", timeout=WAIT)
    assert page.locator(".passid-code").inner_text() == code


def test_our_own_server_being_unreachable_still_shows_the_error_state(
    page: Page, upstream: tuple[AppServer, FaultyUpstream]
) -> None:
    server, _ = upstream
    page.goto(f"{server.url}/verify")
    server.stop()
    page.get_by_role("button", name="Verify with the PASSID app").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "error", timeout=WAIT)
    expect(page.get_by_role("link", name="Try again")).to_be_visible()
