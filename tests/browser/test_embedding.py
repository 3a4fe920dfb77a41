"""The embed snippet on another site, with third-party cookies blocked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import pytest
import requests
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, Frame, Page, Request, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from app.plumbing.i18n import TRANSLATIONS
from tests.browser.conftest import EmbeddingSite, demo_key, read_event_json
from tests.browser.layout import assert_fits
from tests.browser.test_locales import GENERATE_BUTTON, PSEUDO
from tests.browser.test_widget_accessibility import assert_no_axe_violations
from tests.support.servers import AppServer, free_port

PRIMARY = "rgb(0, 194, 122)"  # --passid-primary, the default theme
DECLINE_TOKEN = "TEST-EXPD-0001"
REFUSAL_AFTER_MS = 8_000  # embed.js: a frame that has not reported ready by then is refused

# In the widget's frame: its height, what its content needs down and sideways, and the content's own height.
MEASURES = """() => { const html = document.documentElement; return { frame: html.clientHeight,
  scrollHeight: html.scrollHeight, scrollWidth: html.scrollWidth, width: html.clientWidth,
  content: document.body.getBoundingClientRect().height }; }"""
# Nothing to scroll (down or sideways), and no blank below the content.
FITS_ITS_CONTENT = f"""() => {{ const m = ({MEASURES})();
  return m.scrollHeight <= m.frame && m.scrollWidth <= m.width && m.frame - m.content < 1.5; }}"""


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


def widget_frame(page: Page) -> Frame:
    frame = page.locator("#passid iframe").element_handle().content_frame()
    assert frame is not None
    return frame


def frame_fits(page: Page, state: str) -> int:
    """Wait for the frame to show `state` at its content's height (embed.js sets it from the widget's report):
    no scroll bar inside, no blank below, and the frame the only thing in its box. Its height in CSS px."""
    frame = widget_frame(page)
    expect(frame.locator("#passid-widget")).to_have_attribute("data-state", state)
    try:
        frame.wait_for_function(FITS_ITS_CONTENT)
    except PlaywrightTimeoutError:
        raise AssertionError(f"the frame does not fit its {state} content: {frame.evaluate(MEASURES)}") from None
    height = frame.evaluate("document.documentElement.clientHeight")
    box, around = page.locator("#passid iframe").bounding_box(), page.locator("#passid").bounding_box()
    assert box is not None and around is not None
    assert abs(box["height"] - height) < 1 and abs(around["height"] - height) < 1, (state, height, box, around)
    return height


def leading_action(frame: Frame) -> dict[str, Any]:
    """Where the app link sits against the QR code in the awaiting state, and how it looks."""
    link, qr = frame.locator("[data-deep-link]"), frame.locator(".passid-qr-frame")
    link_box, qr_box = link.bounding_box(), qr.bounding_box()
    assert link_box is not None and qr_box is not None
    return {
        "link_first": link_box["y"] + link_box["height"] <= qr_box["y"],
        "qr_first": qr_box["y"] + qr_box["height"] <= link_box["y"],
        "link_height": link_box["height"],
        "link_background": link.evaluate("el => getComputedStyle(el).backgroundColor"),
    }


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
    widget.get_by_role("button", name="Verify with the PASSID app").click()
    phone_url = widget.locator("[data-phone-link]").get_attribute("href")
    sandbox_phone.goto(phone_url)
    expect(sandbox_phone.get_by_role("heading")).to_contain_text("Partner Bank")
    sandbox_phone.get_by_role("button", name="Share & Verify").click()
    [event] = _wait_for_event(page)
    assert event["type"] == "passid:success"
    assert event["detail"]["requestId"] == phone_url.split("r=")[1]
    assert event["detail"]["claims"]["fsi_score"] == 812


def test_the_embed_leads_with_what_the_device_needs_and_takes_each_state_s_height(
    device_page: Page, device: str, sandbox_phone: Page, allowed_site: EmbeddingSite
) -> None:
    """Idle → declined → idle → awaiting → success inside a frame on another origin: passid:ready once, the
    frame as tall as each state (shrinking for the decline and the success), and in the awaiting state the QR
    first on a desktop, the app link first on a phone. The page's clock, jumped past the refusal delay at the
    end, shows that a frame that reported ready is never reported refused."""
    page = device_page
    page.clock.install()  # time flows as usual until the end
    page.goto(allowed_site.origin)
    page.wait_for_function("window.passidReady === 1")
    frame = widget_frame(page)
    idle = frame_fits(page, "idle")

    frame.get_by_label("Enter a PASSID token").fill(DECLINE_TOKEN)
    frame.get_by_role("button", name="Verify token").click()
    declined = frame_fits(page, "declined")
    assert declined < idle
    frame.get_by_role("button", name="Try again").click()
    assert frame_fits(page, "idle") == idle

    frame.get_by_role("button", name="Verify with the PASSID app").click()
    awaiting = frame_fits(page, "awaiting")
    lead = leading_action(frame)
    if device == "phone":
        assert lead["link_first"] and lead["link_background"] == PRIMARY and lead["link_height"] >= 44, lead
    else:
        assert lead["qr_first"] and lead["link_background"] == "rgb(255, 255, 255)", lead  # secondary

    sandbox_phone.goto(frame.locator("[data-phone-link]").get_attribute("href") or "")
    sandbox_phone.get_by_role("button", name="Share & Verify").click()
    success = frame_fits(page, "success")
    assert success < awaiting
    assert [event["type"] for event in _wait_for_event(page, 2)] == ["passid:decline", "passid:success"]

    page.clock.run_for(REFUSAL_AFTER_MS + 1_000)
    assert page.evaluate("window.passidReady") == 1
    assert [event["type"] for event in read_event_json(page)] == ["passid:decline", "passid:success"]


@pytest.mark.parametrize("locale", [PSEUDO, "ar"])
def test_at_320px_the_awaiting_state_fits_its_frame_and_passes_axe_with_a_mouse_and_by_touch(
    browser: Browser, widget_server: AppServer, allowed_site_port: int, locale: str
) -> None:
    """The awaiting state is the one whose layout depends on the device: checked for each, in the locale whose
    strings are longest and in the right-to-left one, on a 320 px page; its start tells the server that layout."""
    site = EmbeddingSite(widget_server.url, allowed_site_port, attributes=f'data-locale="{locale}"')
    try:
        for touch in (False, True):
            context = browser.new_context(viewport={"width": 320, "height": 640}, has_touch=touch, is_mobile=touch)
            context.set_default_timeout(10_000)
            page = context.new_page()
            page.goto(site.origin)
            frame_fits(page, "idle")
            frame = widget_frame(page)
            with page.expect_request(re.compile(r"/verify/qr/session")) as start:
                frame.locator(f"#passid-state {GENERATE_BUTTON}").click()
            # The layout the stylesheet chose, told to the server for the console's funnel (app/rules/funnel.py).
            assert start.value.headers.get("passid-layout") == ("phone" if touch else "desktop")
            frame_fits(page, "awaiting")
            expect(frame.locator("html")).to_have_attribute("lang", locale)
            assert leading_action(frame)["link_first" if touch else "qr_first"]
            assert_fits(frame, f"{locale} awaiting, {'touch' if touch else 'mouse'}")  # type: ignore[arg-type]
            assert_no_axe_violations(frame)  # type: ignore[arg-type]
            context.close()
    finally:
        site.close()


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
    # The page hears that the frame was refused, so it can send the customer to the hosted page: the refusal
    # proved above, not a frame merely slow to answer.
    [event] = _wait_for_event(page)
    assert event["type"] == "passid:error" and event["detail"]["reason"] == "frame-refused"
    assert page.evaluate("window.passidReady") == 0
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
    (English here): the iframe's page, and the awaiting state htmx swaps in after "Verify with the PASSID
    app". And data-height: the integrator's height stays through both states, the widget scrolling inside it."""
    site = EmbeddingSite(widget_server.url, allowed_site_port,
                         attributes='data-locale="ar" data-color-scheme="dark" data-radius="round" data-font="serif" '
                                    'data-height="300px"')
    try:
        page.goto(site.origin)
        page.wait_for_function("window.passidReady === 1")
        frame = page.frame_locator("#passid iframe")
        html = frame.locator("html")
        expect(html).to_have_attribute("lang", "ar")
        expect(html).to_have_attribute("dir", "rtl")
        expect(html).to_have_attribute("data-color-scheme", "dark")
        expect(html).to_have_attribute("data-radius", "round")
        expect(html).to_have_attribute("data-font", "serif")
        frame.get_by_role("button", name=catalogue_text("ar", "Verify with the PASSID app")).click()
        expect(frame.locator("#passid-widget")).to_have_attribute("data-state", "awaiting")
        expect(frame.locator(".passid-view__title")).to_have_text(catalogue_text("ar", "Approve in the PASSID app"))
        iframe = page.locator("#passid iframe")
        assert iframe.evaluate("el => [el.style.height, el.getAttribute('scrolling')]") == ["300px", None]
        # Taller than 300 px and scrollable in its frame: the widget's height reports changed nothing.
        assert widget_frame(page).evaluate("document.documentElement.scrollHeight") > 300
    finally:
        site.close()
