"""The bank's own look in real Chromium: right-to-left, dark mode, contrast, logo, favicon.

One server for the module, configured as a bank would (its logo); the primary colour comes per test from
the embed's `theme`, yellow (#ffd400) being the hardest to keep readable on white.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal
from urllib.parse import quote

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.support.servers import AppServer, base_env, migrate

# "Verify with the PASSID app" / "Generate new code": the form posting to /verify/qr (with ?locale= when the
# embed chose one).
GENERATE_BUTTON = 'form:is([action$="/verify/qr"], [action*="/verify/qr?"]) button'

SUCCESS_TOKEN = "KE8V-3TXY-Z72L"
DECLINE_TOKEN = "TEST-EXPD-0001"
LIGHT = "rgb(255, 255, 255)"
DARK = "rgb(18, 20, 24)"  # #121418, DARK_BACKGROUND in app/widget/options.py
LOGO = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 10"><rect width="40" height="10" fill="#036"/></svg>'

_axe = Axe()


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    directory = tmp_path_factory.mktemp("theme")
    logo = directory / "logo.svg"
    logo.write_bytes(LOGO)
    env = base_env(f"sqlite:///{directory / 'passid.db'}", PASSID_LOGO_PATH=str(logo),
                   PASSID_INSTITUTION_NAME="Acme Bank")
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


def open_widget(page: Page, server: AppServer, query: str = "") -> None:
    page.goto(f"{server.url}/verify{query}")
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "idle")


def background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def assert_no_axe_violations(page: Page) -> None:
    results = _axe.run(page, options={"resultTypes": ["violations"]})
    assert results.violations_count == 0, results.generate_report()


def reach(page: Page, state: str) -> None:
    """From idle to `state` with locale-independent selectors (the labels may be in Arabic)."""
    if state == "awaiting":
        page.locator(GENERATE_BUTTON).click()
        expect(page.locator("svg.passid-qr")).to_be_visible()
    elif state in ("declined", "success"):
        page.locator("#passid-token").fill(DECLINE_TOKEN if state == "declined" else SUCCESS_TOKEN)
        page.locator(".passid-manual button[type=submit]").click()
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", state)


# --- right to left ------------------------------------------------------------------------------------

def text_edges(page: Page, selector: str) -> dict[str, float]:
    """Where the element's text starts and ends, and where its box does."""
    return page.evaluate(
        """(selector) => { const el = document.querySelector(selector); const range = document.createRange();
             range.selectNodeContents(el); const text = range.getBoundingClientRect(), box = el.getBoundingClientRect();
             return {textLeft: text.left, textRight: text.right, boxLeft: box.left, boxRight: box.right}; }""",
        selector,
    )


def test_arabic_mirrors_the_layout_but_the_code_reads_left_to_right(page: Page, bank: AppServer) -> None:
    open_widget(page, bank)
    ltr = text_edges(page, ".passid__title")
    assert abs(ltr["textLeft"] - ltr["boxLeft"]) < 1 and ltr["boxRight"] - ltr["textRight"] > 20

    open_widget(page, bank, "?locale=ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    for selector in (".passid__title", ".passid__institution", ".passid-label"):
        rtl = text_edges(page, selector)
        assert abs(rtl["textRight"] - rtl["boxRight"]) < 1 and rtl["textLeft"] - rtl["boxLeft"] > 20, selector
    logo, title = page.locator(".passid__logo").bounding_box(), page.locator(".passid__title").bounding_box()
    assert logo and title and abs((logo["x"] + logo["width"]) - (title["x"] + title["width"])) < 1  # on the right
    assert page.locator("#passid-token").evaluate("el => getComputedStyle(el).direction") == "ltr"
    reach(page, "awaiting")
    assert page.locator(".passid-code").evaluate("el => getComputedStyle(el).direction") == "ltr"
    assert page.locator(".passid-qr-frame").evaluate("el => getComputedStyle(el).direction") == "ltr"
    # The grid mirrors: the QR, first in the markup, sits on the right.
    qr, text = page.locator(".passid-qr-frame").bounding_box(), page.locator(".passid-awaiting__text").bounding_box()
    assert qr and text and qr["x"] > text["x"]
    # The claim marks stand at the start of each line: on the right.
    open_widget(page, bank, "?locale=ar")
    reach(page, "success")
    claim = page.locator(".passid-claim").first
    padding = claim.evaluate("el => [getComputedStyle(el).paddingLeft, getComputedStyle(el).paddingRight]")
    assert padding == ["0px", "25.6px"]
    assert claim.evaluate("el => getComputedStyle(el, '::before').right") == "0px"


# --- dark mode ----------------------------------------------------------------------------------------

def test_dark_by_media_and_forced_by_option_either_way(page: Page, bank: AppServer) -> None:
    page.emulate_media(color_scheme="light")
    open_widget(page, bank)
    assert background(page) == LIGHT
    open_widget(page, bank, "?colorScheme=dark")
    assert background(page) == DARK
    page.emulate_media(color_scheme="dark")
    open_widget(page, bank)
    assert background(page) == DARK
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark"
    open_widget(page, bank, "?colorScheme=light")
    assert background(page) == LIGHT
    # The QR keeps its light quiet zone for phone cameras.
    reach(page, "awaiting")
    page.emulate_media(color_scheme="dark")
    assert page.locator(".passid-qr-frame").evaluate("el => getComputedStyle(el).backgroundColor") == LIGHT


def test_the_sandbox_phone_follows_the_system_scheme(page: Page, bank: AppServer) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto(f"{bank.url}/sandbox/phone")
    assert background(page) == "rgb(11, 13, 16)"
    page.emulate_media(color_scheme="light")
    assert background(page) == "rgb(238, 241, 245)"


@pytest.mark.parametrize("primary", ["", "#ffd400"], ids=["default", "yellow"])
@pytest.mark.parametrize("locale", ["en", "ar"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_is_clean_in_each_scheme_locale_and_colour(
    page: Page, bank: AppServer, scheme: Literal["light", "dark"], locale: str, primary: str
) -> None:
    page.emulate_media(color_scheme=scheme)
    query = f"?locale={locale}" + (f"&theme={quote(primary)}" if primary else "")
    for state in ("idle", "awaiting", "declined", "success"):
        open_widget(page, bank, query)
        assert background(page) == (DARK if scheme == "dark" else LIGHT)
        reach(page, state)
        assert_no_axe_violations(page)


# --- radius, font, logo, favicon ----------------------------------------------------------------------

def test_radius_and_font_come_from_the_lists(page: Page, bank: AppServer) -> None:
    open_widget(page, bank, "?radius=square&font=serif")
    button = page.locator(GENERATE_BUTTON)
    assert button.evaluate("el => getComputedStyle(el).borderTopLeftRadius") == "0px"
    assert "Georgia" in page.locator("#passid-widget").evaluate("el => getComputedStyle(el).fontFamily")
    open_widget(page, bank, "?radius=round&font=inherit")
    assert button.evaluate("el => getComputedStyle(el).borderTopLeftRadius") == "24px"
    inherited = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert page.locator("#passid-widget").evaluate("el => getComputedStyle(el).fontFamily") == inherited


def test_the_logo_shows_with_the_institution_s_name(page: Page, bank: AppServer) -> None:
    open_widget(page, bank)
    logo = page.get_by_role("img", name="Acme Bank logo")
    expect(logo).to_be_visible()
    assert logo.evaluate("el => el.complete && el.naturalWidth > 0")


def test_no_failed_request_or_console_error_and_the_icon_is_ours(page: Page, bank: AppServer) -> None:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"failed {request.url}"))
    page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    open_widget(page, bank)
    reach(page, "awaiting")
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert icon and page.request.get(bank.url + icon).ok
    assert page.request.get(f"{bank.url}/favicon.ico").headers["content-type"].startswith("image/svg+xml")
    assert problems == []
