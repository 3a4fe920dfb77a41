"""The ten customer locales in real Chromium.

1. Each locale, chosen by the browser's Accept-Language and by `?locale=`, gives the right `<html lang>`
   and leaves no English on the idle, awaiting and declined screens (checked along the walk of 4).
2. Arabic is right-to-left and its layout mirrors; the QR code, the code and the clock stay left-to-right.
3. A deny message and the countdown (what is shown, and what a screen reader hears as each minute
   begins) in fr, sw and ar are the catalogue's words, computed in-process with Flask-Babel from the
   same msgids, never hard-coded here.
4. At 320 px nothing scrolls sideways or is cut off: in the pseudo-locale (every string 40% longer) in
   every state a customer can reach, and in each real locale along one walk through the states (the
   same walk that looks for English left, so each locale is walked once).

Until the translators fill a locale's .po file, that locale shows English: the "no English" and "the
catalogue's words" tests fail for it, and say which English is left. Transient states are held on
screen by holding the browser's request that would end them (Playwright routing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
import requests
from flask import Flask
from flask_babel import gettext as _
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from app import create_app
from app.config import LOCALES
from app.passid import DenyReason
from app.rules import customer_wording as messages
from tests.browser.conftest import demo_key
from tests.browser.layout import assert_fits, layout_problems
from tests.browser.test_widget_accessibility import assert_no_axe_violations, held
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.servers import AppServer, base_env, migrate

# "Verify with the PASSID app" / "Generate new code": the form posting to /verify/qr (with ?locale= when the
# embed chose one).
GENERATE_BUTTON = 'form:is([action$="/verify/qr"], [action*="/verify/qr?"]) button'

SUCCESS_TOKEN = "KE8V-3TXY-Z72L"
DECLINE_TOKEN = "TEST-EXPD-0001"  # declined: the token has expired
PSEUDO = "en-XA"
PHONE: ViewportSize = {"width": 320, "height": 640}
T = TypeVar("T")

# Text that is the same in every language, removed before English and a translation are compared:
# token examples and bare tokens, the 8-character code, the brand, "QR", numbers and clock times.
NOT_LANGUAGE = re.compile(
    r"PASSID(?:-[A-Z0-9]{4}){3,4}"
    r"|\b[A-Z0-9]{4}(?:-[A-Z0-9]{4}){1,3}\b"
    r"|\bPASSID\b|\bQR\b"
    r"|\d+(?:[:.,]\d+)*"
)
SENTENCE_END = re.compile(r"(?<=[.?!…])\s+")  # not ":": "Sandbox:" may open a sentence in any language
EDGE_PUNCTUATION = " .,:;!?…—–-()[]«»“”„\"'’"
# Sentences a translation may leave exactly as in English because the language really says it so.
# Only whole short labels are compared verbatim (a word inside a translated sentence, such as German
# "Token" in "Token prüfen", is never flagged), so this stays empty unless a translator shows a label
# that is genuinely the same word; add it here with the reason, per locale.
SAME_IN_TRANSLATION: dict[str, frozenset[str]] = {}

# The visible text of the widget, and what it says to a screen reader, one string per text node or
# attribute; the institution's name, the code and the clock are left out (they are not language).
WIDGET_TEXTS = """() => {
  const root = document.getElementById("passid-widget");
  const skip = ".passid__institution, .passid-code, .passid-countdown__time, svg, template";
  const institution = (root.querySelector(".passid__institution") || {}).textContent || "";
  const texts = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent.closest(skip) && parent.checkVisibility()) texts.push(node.textContent);
  }
  for (const el of root.querySelectorAll("[aria-label], [placeholder], [title], [alt], [data-announce]")) {
    if (el.closest(skip)) continue;
    for (const name of ["aria-label", "placeholder", "title", "alt", "data-announce"]) {
      if (el.getAttribute(name)) texts.push(el.getAttribute(name));
    }
  }
  return texts.map((text) => institution.trim() ? text.split(institution.trim()).join(" ") : text);
}"""


# --- servers, pages and the catalogue -------------------------------------------------------------

@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A widget whose QR requests live two seconds: the "Code expired" state without a long wait."""
    directory = tmp_path_factory.mktemp("short-lived")
    env = base_env(f"sqlite:///{directory / 'passid.db'}", PASSID_SANDBOX_MIN_TTL_SECONDS="1",
                   PASSID_POLL_CHECK_SECONDS="1", PASSID_REQUEST_TTL_SECONDS="2")
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The app in this process, only to translate: what a page in a locale must say, from the catalogue."""
    directory = tmp_path_factory.mktemp("catalogue")
    return create_app(base_env(f"sqlite:///{directory / 'app.db'}", PASSID_BACKGROUND_JOBS="false"))


def in_locale(app: Flask, locale: str, words: Callable[[], T]) -> T:
    """`words()` as a request for `locale` would say them (the same locale choice the pages use)."""
    with app.test_request_context(f"/verify?locale={locale}"):
        return words()


@contextmanager
def customer_page(browser: Browser, accept_language: str = "en", viewport: ViewportSize | None = None
                  ) -> Iterator[Page]:
    """A page in a browser whose customer reads `accept_language` (its Accept-Language and navigator.language)."""
    context = browser.new_context(
        viewport=viewport or {"width": 420, "height": 900},
        locale=accept_language,
        extra_http_headers={"Accept-Language": f"{accept_language},en;q=0.1" if accept_language != "en" else "en"},
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def widget(page: Page) -> Locator:
    return page.locator("#passid-widget")


def open_widget(page: Page, server: AppServer, query: str = "") -> None:
    page.goto(f"{server.url}/verify{query}")
    expect(widget(page)).to_have_attribute("data-state", "idle")


# Locale-independent ways through the widget (the labels are in whichever language the page speaks).
def generate_qr(page: Page) -> None:
    page.locator(f"#passid-state {GENERATE_BUTTON}").click()


def submit_token(page: Page, token: str) -> None:
    page.locator("#passid-token").fill(token)
    page.locator(".passid-manual button[type=submit]").click()


def reach_awaiting(page: Page) -> None:
    generate_qr(page)
    expect(widget(page)).to_have_attribute("data-state", "awaiting")
    expect(page.locator("svg.passid-qr")).to_be_visible()


def reach_declined(page: Page) -> None:
    submit_token(page, DECLINE_TOKEN)
    expect(widget(page)).to_have_attribute("data-state", "declined")


def phone_request_url(page: Page, server: AppServer, query: str = "") -> str:
    """The sandbox phone's consent page for the widget's request (the link's own URL redirects, dropping a query)."""
    link = page.locator("[data-phone-link]").get_attribute("href") or ""
    request_id = re.search(r"[?&]r=(req_[A-Za-z0-9]+)", link)
    assert request_id, link
    return f"{server.sandbox_url}/phone/request/{request_id.group(1)}{query}"


# --- 1. chosen by the browser or the URL, and no English left ------------------------------------

def sentences(texts: list[str]) -> dict[str, str]:
    """The language in `texts`: each text and each of its sentences without what is not language (the
    key, compared), with the text it came from (the value, for the failure message)."""
    found: dict[str, str] = {}
    for text in texts:
        words = " ".join(NOT_LANGUAGE.sub(" ", text).split())
        for part in [words, *SENTENCE_END.split(words)]:
            part = part.strip(EDGE_PUNCTUATION).casefold()
            if sum(ch.isalpha() for ch in part) >= 2:
                found.setdefault(part, " ".join(text.split()))
    return found


def english_left(english: list[str], translated: list[str], same: frozenset[str] = frozenset()) -> list[str]:
    """The English texts with a sentence or label found verbatim in the translated screen.

    A short label (one or two words) counts only as a whole text, since a short word may be the
    same in a sentence of another language; a longer English sentence counts anywhere in a text.
    """
    theirs = sentences(translated)
    left: set[str] = set()
    for sentence, source in sentences(english).items():
        if sentence in same:
            continue
        inside = re.compile(rf"(?<!\w){re.escape(sentence)}(?!\w)")
        if sentence in theirs or (len(sentence.split()) >= 3 and any(inside.search(text) for text in theirs)):
            left.add(source)
    return sorted(left)


def screen_texts(page: Page, server: AppServer, query: str) -> dict[str, list[str]]:
    """The widget's texts on the idle, awaiting and declined screens, reached from a fresh page."""
    texts = {"idle": page.evaluate(WIDGET_TEXTS)}
    reach_awaiting(page)
    texts["awaiting"] = page.evaluate(WIDGET_TEXTS)
    open_widget(page, server, query)
    reach_declined(page)
    texts["declined"] = page.evaluate(WIDGET_TEXTS)
    return texts


@pytest.fixture(scope="module")
def english(browser: Browser, widget_server: AppServer) -> dict[str, list[str]]:
    with customer_page(browser) as page:
        open_widget(page, widget_server)
        return screen_texts(page, widget_server, "")


def test_the_english_check_passes_a_full_translation_and_catches_one_english_label(
    browser: Browser, widget_server: AppServer, english: dict[str, list[str]]
) -> None:
    """Proof the check above can pass and can fail: the pseudo-locale translates everything (no English
    left on any screen), and one English label put back into it is reported."""
    with customer_page(browser) as page:
        open_widget(page, widget_server, f"?locale={PSEUDO}")
        screens = screen_texts(page, widget_server, f"?locale={PSEUDO}")
        assert {state: english_left(english[state], texts) for state, texts in screens.items()} == {
            "idle": [], "awaiting": [], "declined": []}
        message = page.locator(".passid-message")
        english_line = next(text for text in english["declined"] if "expired" in text)
        message.evaluate("(el, text) => { el.textContent = text; }", english_line)
        assert english_left(english["declined"], page.evaluate(WIDGET_TEXTS)) == [" ".join(english_line.split())]


# --- 2. right to left -----------------------------------------------------------------------------

def text_edges(page: Page, selector: str) -> dict[str, float]:
    """Where the element's text starts and ends, and where its box does."""
    return page.evaluate(
        """(selector) => { const el = document.querySelector(selector); const range = document.createRange();
             range.selectNodeContents(el); const text = range.getBoundingClientRect(), box = el.getBoundingClientRect();
             return {textLeft: text.left, textRight: text.right, boxLeft: box.left, boxRight: box.right}; }""",
        selector,
    )


# The left edge of each character of the element's text, in reading order.
CHARACTER_POSITIONS = """(el) => { const node = el.firstChild; const lefts = [];
  for (let i = 0; i < node.textContent.length; i++) {
    const range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + 1);
    lefts.push(range.getBoundingClientRect().left);
  }
  return lefts; }"""
RTL_TEXTS = {"idle": (".passid__title", ".passid-label"), "awaiting": (".passid-view__title",)}


def test_arabic_mirrors_the_layout_but_the_qr_the_code_and_the_clock_read_left_to_right(
    browser: Browser, widget_server: AppServer
) -> None:
    for locale in ("en", "ar"):  # English first: the same measure finds its text on the left
        with customer_page(browser, locale) as page:
            open_widget(page, widget_server)
            expect(page.locator("html")).to_have_attribute("dir", "rtl" if locale == "ar" else "ltr")
            for state, selectors in RTL_TEXTS.items():
                if state == "awaiting":
                    reach_awaiting(page)
                for selector in selectors:
                    edges = text_edges(page, selector)
                    start, end = ("textRight", "boxRight"), ("textLeft", "boxLeft")
                    if locale == "en":
                        start, end = end, start
                    # Starts at the box's start edge, and ends well short of the other one.
                    assert abs(edges[start[0]] - edges[start[1]]) < 1, (locale, selector, edges)
                    assert abs(edges[end[0]] - edges[end[1]]) > 20, (locale, selector, edges)
            code = page.locator(".passid-code")
            for selector in (".passid-qr-frame", ".passid-code", ".passid-countdown__time"):
                assert page.locator(selector).evaluate("el => getComputedStyle(el).direction") == "ltr", selector
            assert code.inner_text() == code.get_attribute("data-code")
            lefts = code.evaluate(CHARACTER_POSITIONS)
            assert lefts == sorted(lefts) and len(set(lefts)) == len(lefts), lefts  # read in order, left to right


# --- 3. a deny message and the countdown, from the catalogue --------------------------------------

# The pseudo-locale too: proof the test passes where every string has its translation.
@pytest.mark.parametrize("locale", ["fr", "sw", "ar", PSEUDO])
def test_a_deny_message_and_the_countdown_are_the_catalogues_words(
    browser: Browser, widget_server: AppServer, catalogue: Flask, locale: str
) -> None:
    def words() -> dict[str, Any]:
        return {
            "title": _("Not verified"),
            "deny": messages.deny_message(DenyReason.TOKEN_EXPIRED, "Demo Bank"),
            "expires": _("Expires in %(time)s", time="{clock}"),
            "minutes": messages.minutes_left_sentences(600),
        }

    expected, source = in_locale(catalogue, locale, words), in_locale(catalogue, "en", words)
    with customer_page(browser, locale, PHONE) as page:
        page.clock.install()  # time flows as usual until the test moves it on to the next whole minute
        open_widget(page, widget_server, f"?locale={locale}")  # the pseudo-locale has no Accept-Language
        reach_declined(page)
        expect(page.locator(".passid-view__title")).to_have_text(expected["title"])
        expect(page.locator(".passid-message")).to_have_text(expected["deny"])
        assert_fits(page, f"{locale} declined")

        open_widget(page, widget_server, f"?locale={locale}")
        reach_awaiting(page)
        clock = page.locator(".passid-countdown__time")
        seconds = int(clock.get_attribute("data-seconds-remaining") or "")
        sentences_by_minute = json.loads(clock.get_attribute("data-minutes-left") or "")
        # Every sentence the countdown can say, in this locale's plural forms ("1 minute", "2 minutes"…).
        assert sentences_by_minute == in_locale(catalogue, locale, lambda: messages.minutes_left_sentences(seconds))
        shown, time_text = page.locator(".passid-countdown").evaluate(
            "p => [p.textContent.replace(/\\s+/g, ' ').trim(), p.querySelector('time').textContent]")
        assert shown == expected["expires"].format(clock=time_text)
        assert_fits(page, f"{locale} awaiting")

        # On to three seconds before the next whole minute, then let the countdown tick past it: the
        # screen reader hears that minute's sentence.
        left = int(time_text.split(":")[0]) * 60 + int(time_text.split(":")[1])
        minute = (left - 1) // 60
        page.clock.fast_forward((left - minute * 60 - 3) * 1000)
        page.clock.run_for(6_000)
        expect(page.locator("#passid-announcer")).to_have_text(sentences_by_minute[str(minute)])

    untranslated = [name for name in ("title", "deny", "expires") if expected[name] == source[name]]
    untranslated += [f"minutes[{m}]" for m in expected["minutes"] if expected["minutes"][m] == source["minutes"][m]]
    assert not untranslated, f"{locale} says these in English (no translation in its catalogue yet): {untranslated}"


# --- 4. nothing scrolls sideways or is cut off at 320 px ------------------------------------------

# Elements that do not fit, built in the page (tag.class, its style, its text; a child's the same way),
# and what the check must say about each. Styles are set through the CSSOM: the widget's CSP ignores
# style attributes in markup.
INJECTED: list[tuple[dict[str, Any], set[tuple[str, str]]]] = [
    ({"tag": "p", "cls": "wide", "style": {}, "text": "W" * 60},
     {("html", "the page scrolls sideways"), ("p.wide", "sticks out past the right edge")}),
    ({"tag": "div", "cls": "clipped", "style": {"overflow": "hidden", "width": "100px"}, "text": "",
      "child": {"tag": "span", "cls": "line", "style": {"whiteSpace": "nowrap"}, "text": "clipped " * 8}},
     {("div.clipped", "is cut off")}),
    ({"tag": "button", "cls": "spilled", "style": {"width": "80px", "whiteSpace": "nowrap"}, "text": "spilled " * 6},
     {("button.spilled", "has text spilling out of its box")}),
]
INJECT = """(spec) => { const make = (s) => { const el = document.createElement(s.tag); el.className = s.cls;
  Object.assign(el.style, s.style); el.textContent = s.text; if (s.child) el.append(make(s.child)); return el; };
  document.querySelector(".passid-view").append(make(spec)); }"""


def test_the_layout_check_fits_the_page_and_catches_a_wide_word_a_cut_and_a_spill(
    browser: Browser, widget_server: AppServer
) -> None:
    """Proof every branch of the check can fail: each injected element is reported, by its selector."""
    with customer_page(browser, viewport=PHONE) as page:
        open_widget(page, widget_server, f"?locale={PSEUDO}")
        assert layout_problems(page) == []
        for injected, expected in INJECTED:
            page.evaluate(INJECT, injected)
            found = {(problem["selector"].split(" > ")[-1], problem["problem"]) for problem in layout_problems(page)}
            assert expected <= found, found
            page.evaluate("""() => document.querySelector(".passid-view").lastElementChild.remove()""")
        assert layout_problems(page) == []


# How to reach each state a customer can see, in the pseudo-locale, from a 320 px page.
def pseudo_state(page: Page, state: str, request: pytest.FixtureRequest) -> None:
    widget_server: AppServer = request.getfixturevalue("widget_server")
    query = f"?locale={PSEUDO}"
    if state in ("error", "expired"):
        return  # on servers of their own: see the test
    open_widget(page, widget_server, query)
    expect(page.locator("html")).to_have_attribute("lang", PSEUDO)
    if state == "idle with an error":
        submit_token(page, "KE8V")
        expect(page.locator("#passid-token-error")).to_be_visible()
    elif state == "awaiting":
        reach_awaiting(page)
    elif state == "success":
        submit_token(page, SUCCESS_TOKEN)
        expect(widget(page)).to_have_attribute("data-state", "success")
        expect(page.locator(".passid-claim").first).to_be_visible()
    elif state == "declined":
        reach_declined(page)
    elif state == "offline":  # our own server unreachable: widget.js's error view
        page.route("**/verify/qr/session*", lambda route: route.abort())
        generate_qr(page)
        expect(widget(page)).to_have_attribute("data-state", "error")


PSEUDO_STATES = ["idle", "idle with an error", "requesting", "awaiting", "verifying", "success", "declined",
                 "expired", "error", "offline"]


@pytest.mark.parametrize("state", PSEUDO_STATES)
def test_the_pseudo_locale_fits_320px_in_every_widget_state(
    browser: Browser, request: pytest.FixtureRequest, state: str
) -> None:
    query = f"?locale={PSEUDO}"
    with customer_page(browser, viewport=PHONE) as page:
        if state in ("requesting", "verifying"):
            widget_server: AppServer = request.getfixturevalue("widget_server")
            open_widget(page, widget_server, query)
            pattern = "**/verify/qr/session*" if state == "requesting" else "**/verify/token/check*"
            with held(page, pattern) as wait_until_held:
                generate_qr(page) if state == "requesting" else submit_token(page, SUCCESS_TOKEN)
                wait_until_held()
                expect(widget(page)).to_have_attribute("data-state", state)
                assert_fits(page, f"{PSEUDO} {state}")
            return
        if state == "expired":
            open_widget(page, request.getfixturevalue("short_lived"), query)
            generate_qr(page)
            expect(widget(page)).to_have_attribute("data-state", "declined", timeout=20_000)
            expect(page.locator(f"#passid-state {GENERATE_BUTTON}")).to_be_visible()  # Generate new code
        elif state == "error":  # PASSID answering 500
            server, proxy = request.getfixturevalue("upstream")
            open_widget(page, server, query)
            proxy.mode = "error500"
            generate_qr(page)
            expect(widget(page)).to_have_attribute("data-state", "error")
        else:
            pseudo_state(page, state, request)
        assert page.locator("html").get_attribute("lang") == PSEUDO
        assert_fits(page, f"{PSEUDO} {state}")


@pytest.mark.parametrize("locale", [PSEUDO, "ar"])
def test_a_hosted_session_s_pages_fit_320px_and_pass_axe(
    browser: Browser, widget_server: AppServer, allowed_site_port: int, locale: str
) -> None:
    """A session's pages with their ways back to the bank, in the pseudo-locale and right to left: the first
    screen, a failed attempt and the QR (each with "Cancel and return"), success with "Continue", the link
    reopened once closed, the customer's own cancel inside an embed, and an unknown session's error page."""
    key = demo_key(widget_server)

    def new_session(**body: Any) -> dict[str, Any]:
        made = requests.post(f"{widget_server.url}/api/sessions", json={"reference": "loan-320", **body},
                             headers={"X-Institution-Key": key}, timeout=10)
        assert made.status_code == 201, made.text
        return dict(made.json())

    bank = f"http://localhost:{allowed_site_port}"
    url = f"{new_session(returnUrl=f'{bank}/back')['url']}&locale={locale}"
    with customer_page(browser, viewport=PHONE) as page:

        def fits_and_passes_axe(state: str, *, axe: bool = True) -> None:
            assert page.locator("html").get_attribute("lang") == locale, state
            assert_fits(page, f"{locale} {state}")
            if axe:  # the states this page added or changed (axe takes about a second each)
                assert_no_axe_violations(page)

        cancel = page.locator('form[action*="/verify/session/cancel"] button')
        page.goto(url)
        expect(widget(page)).to_have_attribute("data-state", "idle")
        expect(cancel).to_be_visible()
        fits_and_passes_axe("session idle")
        reach_declined(page)
        expect(cancel).to_be_visible()
        fits_and_passes_axe("session declined")
        page.locator('form[action="/verify/reset"] button').click()
        reach_awaiting(page)
        expect(cancel).to_be_visible()
        fits_and_passes_axe("session awaiting")
        page.goto(url)
        submit_token(page, SUCCESS_TOKEN)
        expect(page.locator("[data-continue]")).to_be_visible()
        fits_and_passes_axe("session success", axe=False)
        page.goto(url)
        expect(widget(page)).to_have_attribute("data-state", "success")
        expect(page.locator("#passid-token")).to_have_count(0)  # closed: no new form
        fits_and_passes_axe("closed session", axe=False)

        embedded = new_session()  # inside an embed (its origin allowed): the cancel stays on the page
        page.goto(f"{embedded['url']}&locale={locale}&origin={bank}")
        cancel.click()
        expect(widget(page)).to_have_attribute("data-state", "declined")
        expect(cancel).to_have_count(0)
        fits_and_passes_axe("cancelled in an embed")
        page.goto(f"{widget_server.url}/verify/session?id=vs_unknown&locale={locale}")
        expect(page.locator("[data-error-page]")).to_be_visible()
        fits_and_passes_axe("unknown session")


@pytest.mark.parametrize("answer", ["share", "decline"])
def test_the_pseudo_locale_fits_320px_on_the_sandbox_phone(
    browser: Browser, widget_server: AppServer, answer: str
) -> None:
    """The phone's home, consent and done pages; after a decline, the widget's own declined message."""
    query = f"?locale={PSEUDO}"
    with customer_page(browser, viewport=PHONE) as page:
        phone = page.context.new_page()
        phone.goto(f"{widget_server.sandbox_url}/phone{query}")
        expect(phone.locator("html")).to_have_attribute("lang", PSEUDO)
        assert_fits(phone, f"{PSEUDO} phone home")
        open_widget(page, widget_server, query)
        reach_awaiting(page)
        phone.goto(phone_request_url(page, widget_server, query))
        assert_fits(phone, f"{PSEUDO} phone consent")
        phone.locator(f"button[value={answer}]").click()
        expect(phone.locator("[data-outcome]")).to_be_visible()
        assert_fits(phone, f"{PSEUDO} phone done ({answer})")
        expect(widget(page)).to_have_attribute("data-state", "success" if answer == "share" else "declined",
                                               timeout=15_000)
        assert_fits(page, f"{PSEUDO} {answer} on the phone")


@pytest.mark.parametrize("locale", LOCALES)
def test_each_locale_is_chosen_leaves_no_english_and_fits_320px_in_every_state(
    browser: Browser, widget_server: AppServer, short_lived: AppServer,
    upstream: tuple[AppServer, FaultyUpstream], english: dict[str, list[str]], locale: str
) -> None:
    """One walk per locale at 320 px, checking at every stop that nothing scrolls sideways or is cut off,
    and on the idle, awaiting and declined screens that no English is left, for the locale chosen both ways.

    Chosen by the browser: its Accept-Language, so the phone pages follow. Three of its pages at once, so
    no step waits on another's clock: a code left to expire, a QR declined on the phone (the widget hears
    of it at its next check), and the manual-entry states. Chosen by the URL: a browser asking for English,
    which `?locale=` must beat.
    """
    screens: dict[str, dict[str, list[str]]] = {"accept-language": {}, "query": {}}
    with customer_page(browser, locale, PHONE) as page, customer_page(browser, "en", PHONE) as by_url:

        def fits(target: Page, state: str) -> None:
            assert target.locator("html").get_attribute("lang") == locale, state
            assert_fits(target, f"{locale} {state}")

        def chosen(target: Page) -> None:
            expect(target.locator("html")).to_have_attribute("lang", locale)
            expect(target.locator("html")).to_have_attribute("dir", "rtl" if locale == "ar" else "ltr")

        expiring, declined_on_phone, phone = (page.context.new_page() for _ in range(3))
        open_widget(expiring, short_lived)
        generate_qr(expiring)

        # Each page in front while it is used: a page behind others gets no animation frames, which
        # Playwright's click waits on.
        declined_on_phone.bring_to_front()
        open_widget(declined_on_phone, widget_server)
        with held(declined_on_phone, "**/verify/qr/session*") as wait_until_held:
            generate_qr(declined_on_phone)
            wait_until_held()
            expect(widget(declined_on_phone)).to_have_attribute("data-state", "requesting")
            fits(declined_on_phone, "requesting")
        expect(declined_on_phone.locator("svg.passid-qr")).to_be_visible()
        fits(declined_on_phone, "awaiting")
        screens["accept-language"]["awaiting"] = declined_on_phone.evaluate(WIDGET_TEXTS)
        phone.bring_to_front()
        phone.goto(phone_request_url(declined_on_phone, widget_server))
        fits(phone, "phone consent")
        phone.locator("button[value=decline]").click()
        expect(phone.locator("[data-outcome]")).to_be_visible()
        fits(phone, "phone done")
        phone.goto(f"{widget_server.sandbox_url}/phone")
        fits(phone, "phone home")

        page.bring_to_front()
        open_widget(page, widget_server)
        chosen(page)
        fits(page, "idle")
        screens["accept-language"]["idle"] = page.evaluate(WIDGET_TEXTS)
        submit_token(page, "KE8V")
        expect(page.locator("#passid-token-error")).to_be_visible()
        fits(page, "idle with an error")
        with held(page, "**/verify/token/check*") as wait_until_held:
            submit_token(page, SUCCESS_TOKEN)
            wait_until_held()
            expect(widget(page)).to_have_attribute("data-state", "verifying")
            fits(page, "verifying")
        expect(widget(page)).to_have_attribute("data-state", "success")
        fits(page, "success")
        open_widget(page, widget_server)
        reach_declined(page)
        fits(page, "declined")
        screens["accept-language"]["declined"] = page.evaluate(WIDGET_TEXTS)

        server, proxy = upstream
        open_widget(page, server)
        proxy.mode = "error500"
        generate_qr(page)
        expect(widget(page)).to_have_attribute("data-state", "error")
        fits(page, "error")
        open_widget(page, widget_server)
        page.route("**/verify/qr/session*", lambda route: route.abort())
        generate_qr(page)
        expect(widget(page)).to_have_attribute("data-state", "error")
        fits(page, "offline")

        query = f"?locale={locale}"
        open_widget(by_url, widget_server, query)
        chosen(by_url)
        screens["query"] = screen_texts(by_url, widget_server, query)
        chosen(by_url)  # still, after the partials
        fits(by_url, "declined (chosen by the URL)")

        expect(widget(declined_on_phone)).to_have_attribute("data-state", "declined", timeout=20_000)
        fits(declined_on_phone, "declined on the phone")
        expect(widget(expiring)).to_have_attribute("data-state", "declined", timeout=20_000)
        expect(expiring.locator(f"#passid-state {GENERATE_BUTTON}")).to_be_visible()
        fits(expiring, "expired")

    if locale == "en":
        return
    same = SAME_IN_TRANSLATION.get(locale, frozenset())
    for chosen_by, texts_by_state in screens.items():
        left = {state: english_left(english[state], texts, same) for state, texts in texts_by_state.items()}
        assert not any(left.values()), f"English left in {locale} (chosen by {chosen_by}): " + json.dumps(
            {state: found for state, found in left.items() if found}, ensure_ascii=False, indent=1)


def test_the_catalogue_fixture_speaks_the_pseudo_locale(catalogue: Flask) -> None:
    """The in-process translations above are real ones: the pseudo-locale's differ from the English."""
    assert in_locale(catalogue, PSEUDO, lambda: _("Not verified")).startswith("[")
    assert in_locale(catalogue, "en", lambda: _("Not verified")) == "Not verified"
