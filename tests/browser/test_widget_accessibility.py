"""The widget for people who use a screen reader, a keyboard, reduced motion or a custom theme.

axe-core (bundled by axe-playwright-python) runs in real Chromium against every
widget state. The two transient states are held on screen by holding the
browser's request that would end them (Playwright routing), then released.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import states
from tests.support.servers import AppServer

STATES = ("idle", "requesting", "awaiting", "verifying", "success", "declined", "error")
SUCCESS_TOKEN = "KE8V-3TXY-Z72L"
DECLINE_TOKEN = "TEST-EXPD-0001"
DEFAULT_PRIMARY = "rgb(0, 194, 122)"  # #00c27a
LIVE_REGION = "[aria-live], [role=status], [role=alert], [role=log], [role=marquee], [role=timer]"

_axe = Axe()


def widget(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#passid-widget")


def open_widget(page: Page, server: AppServer, query: str = "") -> None:
    page.goto(f"{server.url}/verify{query}")
    expect(widget(page)).to_have_attribute("data-state", "idle")


def assert_no_axe_violations(page: Page, *, rules: list[str] | None = None) -> None:
    options: dict = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": rules}
    results = _axe.run(page, options=options)
    assert results.violations_count == 0, results.generate_report()


@contextmanager
def held(page: Page, pattern: str) -> Iterator[Callable[[], None]]:
    """Hold the browser's requests to `pattern` unanswered; yields a wait-until-held function.

    Leaving the block lets the held requests through to the server.
    """
    routes: list[Route] = []

    def hold(route: Route) -> None:
        routes.append(route)  # not answered: the request stays in flight

    page.route(pattern, hold)

    def wait_until_held() -> None:
        for _ in range(200):
            if routes:
                return
            page.wait_for_timeout(50)  # lets Playwright dispatch the route event
        raise AssertionError(f"no request to {pattern} was made")

    try:
        yield wait_until_held
    finally:
        for route in routes:
            route.continue_()
        page.unroute(pattern, hold)


def submit_token(page: Page, token: str) -> None:
    page.get_by_label("Enter a PASSID token").fill(token)
    page.get_by_role("button", name="Verify token").click()


def active_element(page: Page) -> dict:
    return page.evaluate(
        """() => { const el = document.activeElement;
                   return { tag: el.tagName.toLowerCase(), id: el.id, text: el.textContent.trim() }; }"""
    )


def tab_to(page: Page, predicate: Callable[[dict], bool], limit: int = 10) -> dict:
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = active_element(page)
        if predicate(focused):
            return focused
    raise AssertionError(f"never reached by Tab; last focus: {focused}")


def announcer(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#passid-announcer")


# --- 1. axe in every state ---------------------------------------------------------------------

@pytest.mark.parametrize("state", STATES)
def test_axe_finds_no_violations_in_each_state(
    page: Page, widget_server: AppServer, request: pytest.FixtureRequest, state: str
) -> None:
    if state == "error":  # a widget app whose PASSID is down
        server, proxy = request.getfixturevalue("upstream")
        open_widget(page, server)
        proxy.mode = "error500"
        page.get_by_role("button", name="Verify with the PASSID app").click()
        expect(widget(page)).to_have_attribute("data-state", "error")
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        assert_no_axe_violations(page)
        return

    open_widget(page, widget_server)
    if state == "idle":
        assert_no_axe_violations(page)
    elif state == "requesting":
        with held(page, "**/verify/qr/session") as wait_until_held:
            page.get_by_role("button", name="Verify with the PASSID app").click()
            wait_until_held()
            expect(widget(page)).to_have_attribute("data-state", "requesting")
            expect(page.locator(".passid-spinner")).to_be_attached()
            assert_no_axe_violations(page)
        expect(widget(page)).to_have_attribute("data-state", "awaiting")
    elif state == "awaiting":
        page.get_by_role("button", name="Verify with the PASSID app").click()
        expect(widget(page)).to_have_attribute("data-state", "awaiting")
        expect(page.locator("svg.passid-qr")).to_be_visible()
        assert_no_axe_violations(page)
    elif state == "verifying":
        with held(page, "**/verify/token/check") as wait_until_held:
            submit_token(page, SUCCESS_TOKEN)
            wait_until_held()
            expect(widget(page)).to_have_attribute("data-state", "verifying")
            expect(page.locator(".passid-spinner")).to_be_attached()
            assert_no_axe_violations(page)
        expect(widget(page)).to_have_attribute("data-state", "success")
    elif state == "success":
        submit_token(page, SUCCESS_TOKEN)
        expect(widget(page)).to_have_attribute("data-state", "success")
        expect(page.locator(".passid-score__value")).to_have_text("812")
        assert_no_axe_violations(page)
    elif state == "declined":
        submit_token(page, DECLINE_TOKEN)
        expect(widget(page)).to_have_attribute("data-state", "declined")
        expect(page.locator(".passid-message")).to_contain_text("expired")
        assert_no_axe_violations(page)


def test_axe_finds_no_violations_with_an_inline_validation_error(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    submit_token(page, "KE8V")
    expect(page.locator("#passid-token-error")).to_be_visible()
    expect(widget(page)).to_have_attribute("data-state", "idle")
    assert_no_axe_violations(page)


# --- 2. keyboard only ----------------------------------------------------------------------------

def test_manual_entry_completes_with_the_keyboard_alone(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    focused = tab_to(page, lambda el: el["id"] == "passid-token")
    assert focused["tag"] == "input"
    page.keyboard.type(SUCCESS_TOKEN)
    page.keyboard.press("Enter")
    expect(widget(page)).to_have_attribute("data-state", "success")
    expect(page.locator(".passid-view__title")).to_be_focused()
    assert active_element(page) == {"tag": "h2", "id": "", "text": "Verified"}


@pytest.mark.parametrize("key", ["Enter", "Space"])
def test_generate_qr_works_from_the_keyboard(page: Page, widget_server: AppServer, key: str) -> None:
    open_widget(page, widget_server)
    focused = tab_to(page, lambda el: el["text"] == "Verify with the PASSID app")
    assert focused["tag"] == "button"
    page.keyboard.press(key)
    expect(widget(page)).to_have_attribute("data-state", "awaiting")
    assert states(page)[:3] == ["idle", "requesting", "awaiting"]


# --- 3. announcements ------------------------------------------------------------------------------

def test_the_live_region_is_a_polite_status(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    expect(announcer(page)).to_have_attribute("role", "status")
    expect(announcer(page)).to_have_attribute("aria-live", "polite")
    expect(announcer(page)).to_have_text("")


def test_manual_entry_announces_verifying_then_verified(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    with held(page, "**/verify/token/check") as wait_until_held:
        submit_token(page, SUCCESS_TOKEN)
        wait_until_held()
        expect(announcer(page)).to_have_text("Verifying credential…")
    expect(widget(page)).to_have_attribute("data-state", "success")
    expect(announcer(page)).to_have_text(re.compile(r"^Verified\."))


def test_a_decline_is_announced(page: Page, widget_server: AppServer) -> None:
    open_widget(page, widget_server)
    submit_token(page, DECLINE_TOKEN)
    expect(widget(page)).to_have_attribute("data-state", "declined")
    expect(announcer(page)).to_have_text(page.locator(".passid-message").inner_text())


def test_the_qr_is_announced_with_its_code_and_the_countdown_stays_quiet(
    page: Page, widget_server: AppServer
) -> None:
    page.clock.install()  # time flows as usual until the end, where the test moves it on
    open_widget(page, widget_server)
    with held(page, "**/verify/qr/session") as wait_until_held:
        page.get_by_role("button", name="Verify with the PASSID app").click()
        wait_until_held()
        expect(announcer(page)).to_have_text("Creating verification session…")
    expect(widget(page)).to_have_attribute("data-state", "awaiting")
    code = page.locator(".passid-code").inner_text()
    expect(announcer(page)).to_contain_text(code)

    countdown = page.locator(".passid-countdown__time")
    assert countdown.evaluate(f"el => el.closest({LIVE_REGION!r}) === null")
    assert page.locator(f"#passid-widget :is({LIVE_REGION})").count() == 1  # the announcer only

    # Five seconds on the page's clock: the countdown ticks five times, and the live region says nothing
    # (no whole minute begins this close to 10:00; the sentence one brings is checked in test_locales).
    page.evaluate(
        """() => { window.__announced = 0;
                   new MutationObserver(() => window.__announced++).observe(
                     document.getElementById("passid-announcer"),
                     { childList: true, characterData: true, subtree: true }); }"""
    )
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.2)  # Python's pause_at takes seconds
    before = countdown.inner_text()
    page.clock.run_for(5_000)
    expect(countdown).to_have_text(seconds_to_clock(clock_to_seconds(before) - 5))
    assert page.evaluate("window.__announced") == 0


def clock_to_seconds(shown: str) -> int:
    minutes, seconds = shown.split(":")
    return int(minutes) * 60 + int(seconds)


def seconds_to_clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


# --- 4. reduced motion ------------------------------------------------------------------------------

def animation_name(page: Page, selector: str) -> str:
    return page.locator(selector).evaluate("el => getComputedStyle(el).animationName")


@pytest.mark.parametrize("reduced", [True, False], ids=["reduce", "no-preference"])
def test_the_pulse_and_spinner_respect_reduced_motion(page: Page, widget_server: AppServer, reduced: bool) -> None:
    page.emulate_media(reduced_motion="reduce" if reduced else "no-preference")
    open_widget(page, widget_server)
    with held(page, "**/verify/qr/session") as wait_until_held:
        page.get_by_role("button", name="Verify with the PASSID app").click()
        wait_until_held()
        expect(page.locator(".passid-spinner")).to_be_attached()
        spinner = animation_name(page, ".passid-spinner")
    expect(widget(page)).to_have_attribute("data-state", "awaiting")
    pulse = animation_name(page, ".passid-pulse")
    if reduced:
        assert (spinner, pulse) == ("none", "none")
    else:
        assert "none" not in (spinner, pulse)


# --- 5. theme ------------------------------------------------------------------------------------------

def primary_button_colours(page: Page) -> tuple[str, str]:
    return page.get_by_role("button", name="Verify with the PASSID app").evaluate(
        "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.color]; }"
    )


@pytest.mark.parametrize(
    ("theme", "background", "text"),
    [
        ("%23123abc", "rgb(18, 58, 188)", "rgb(255, 255, 255)"),
        ("red", DEFAULT_PRIMARY, "rgb(0, 0, 0)"),
        (quote("javascript:alert(1)", safe=""), DEFAULT_PRIMARY, "rgb(0, 0, 0)"),
        ("", DEFAULT_PRIMARY, "rgb(0, 0, 0)"),
    ],
    ids=["hex", "named-colour", "script-url", "default"],
)
def test_the_theme_colours_the_primary_button(
    page: Page, widget_server: AppServer, theme: str, background: str, text: str
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_widget(page, widget_server, f"?theme={theme}" if theme else "")
    assert primary_button_colours(page) == [background, text]
    theme_rule = page.locator("head style").inner_text()
    assert "javascript" not in theme_rule and "red" not in theme_rule
    assert dialogs == []


@pytest.mark.parametrize("theme", ["", "%23123abc"], ids=["default", "hex"])
def test_axe_finds_no_colour_contrast_violation_with_the_theme(
    page: Page, widget_server: AppServer, theme: str
) -> None:
    open_widget(page, widget_server, f"?theme={theme}" if theme else "")
    assert_no_axe_violations(page, rules=["color-contrast"])
    submit_token(page, "KE8V")  # the inline error
    expect(page.locator("#passid-token-error")).to_be_visible()
    assert_no_axe_violations(page, rules=["color-contrast"])
    submit_token(page, SUCCESS_TOKEN)  # the tier badge is drawn in the theme colour
    expect(widget(page)).to_have_attribute("data-state", "success")
    assert_no_axe_violations(page, rules=["color-contrast"])
