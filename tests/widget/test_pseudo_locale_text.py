"""No English left on any screen a customer reaches, proved in the pseudo-locale.

Every string in `messages.pot` reads `[Ţĥîš ŀöñĝéŕ]` in `en-XA` (app/pseudo_locale.py), so a text
a customer can see that is not in brackets was never marked for translation. Each widget state and
each sandbox phone page is rendered in process with `?locale=en-XA` (the widget's signed options
carry it on), and every visible text node and every attribute a person reads or hears (aria-label,
title, alt, placeholder, data-announce, the countdown's screen-reader sentences) must be pseudo text,
a name or a code.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.passid import DenyReason
from app.plumbing.database import db
from app.plumbing.request_guards import CUSTOMER, BodiesInFlight
from app.rules import customer_wording as messages
from app.rules import sessions
from app.rules.verifications import FinalStatus
from app.sandbox.models import SandboxInstitution
from app.sandbox.profiles import PROFILES
from app.widget.options import options_from
from app.widget.routes import Retry, error_state, render_state
from app.widget.sessions import cancelled_view
from tests.support.html_fields import hidden

PSEUDO = {"locale": "en-XA"}
INSTITUTION = "Lender of Last Resort"  # a name with English words: allowed only where it is the name
READ_ALOUD = ("aria-label", "title", "alt", "placeholder", "data-announce")
# What may stay as it is: names, codes, tokens, clock digits and times as Babel writes them in en_001
# (the pseudo-locale's formats: "11:07 pm"), and the sandbox's id hint.
ALLOWED = re.compile(
    r"PASSID-[A-Z0-9-]+|[A-Z0-9]{4}-[A-Z0-9]{4}|inst_\w*…?|req_\w+|\d+:\d\d\s?[ap]m|\d+(:\d\d)?|"
    + "|".join(re.escape(name) for name in (INSTITUTION, *(p.display_name.split(" ")[0] for p in PROFILES.values())))
)


@pytest.fixture
def app_settings() -> dict[str, str]:
    # Every poll checks PASSID: a decline on the phone reaches the widget through that check (no webhook
    # reports it), and the pages are what is tested here, not how often a poll checks (7 s by default).
    # A post meeting full body slots is answered at once, not after the second a waiter may wait.
    return {"PASSID_INSTITUTION_NAME": INSTITUTION, "PASSID_POLL_CHECK_SECONDS": "0",
            "PASSID_BODY_SLOT_WAIT_SECONDS": "0"}


class ReadableText(HTMLParser):
    """What a person sees or hears on a page: text outside <script>/<style>, and the attributes above."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skipping += 1
        for name, value in attrs:
            if value and name in READ_ALOUD:
                self.texts.append(value)
            if value and name == "data-minutes-left":
                self.texts.extend(json.loads(value).values())

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.texts.append(data)


def english_left(html: str) -> list[str]:
    """Each readable text with its pseudo text, names and codes taken out, that still has a Latin letter."""
    reader = ReadableText()
    reader.feed(html)
    left = []
    for text in reader.texts:
        rest = text
        while re.search(r"\[[^\[\]]*\]", rest):  # innermost first: a translated word inside a sentence
            rest = re.sub(r"\[[^\[\]]*\]", " ", rest)
        rest = ALLOWED.sub(" ", rest)
        if re.search(r"[A-Za-z]", rest):
            left.append(text.strip())
    return left


def assert_all_pseudo(response: TestResponse | str) -> None:
    html = response if isinstance(response, str) else response.text
    assert 'lang="en-XA"' in html
    assert english_left(html) == []


def test_the_checker_catches_an_unmarked_string() -> None:
    assert english_left('<p>[Ṽéŕîƒý ŀöñĝéŕ]</p><button aria-label="Close">[Ẋ]</button>') == ["Close"]
    assert english_left(f"<p>[Šĥàŕé ŵîţĥ {INSTITUTION}? ŀöñĝéŕ] · 4:59 AB3X-7YQM</p><script>var a='x'</script>") == []


def test_idle_awaiting_declined_and_the_phone_pages_speak_only_pseudo(client: FlaskClient) -> None:
    idle = client.get("/verify", query_string=PSEUDO)
    assert_all_pseudo(idle)
    options = hidden(idle.text, "o")

    awaiting = client.post("/verify/qr", data={"o": options})  # no JavaScript: the whole awaiting page
    assert_all_pseudo(awaiting)
    assert "data-minutes-left" in awaiting.text
    request_id = re.search(r"phone\?r=(req_\w+)", awaiting.text)
    poll_url = re.search(r'hx-get="(/verify/qr/status\?[^"]+)"', awaiting.text)
    assert request_id and poll_url
    consent_url = f"/sandbox/phone/request/{request_id.group(1)}"

    assert_all_pseudo(client.get("/sandbox/phone", query_string=PSEUDO))
    assert_all_pseudo(client.post("/sandbox/phone/open", data={"code": "nope"}, query_string=PSEUDO))
    assert_all_pseudo(client.get(consent_url, query_string=PSEUDO))
    assert_all_pseudo(client.post(consent_url, data={"action": "share"}, query_string=PSEUDO))  # nothing chosen
    assert_all_pseudo(client.post(consent_url, data={"action": "decline"}, query_string=PSEUDO))
    assert_all_pseudo(client.get(consent_url, query_string=PSEUDO))  # answered already
    assert_all_pseudo(client.get("/sandbox/phone/request/req_unknown", query_string=PSEUDO))

    declined = final_page(client, poll_url.group(1).replace("&amp;", "&"))
    assert 'data-view="declined"' in declined
    assert_all_pseudo(declined)


def test_success_with_every_claim_line_speaks_only_pseudo(client: FlaskClient) -> None:
    options = hidden(client.get("/verify", query_string=PSEUDO).text, "o")
    awaiting = client.post("/verify/qr", data={"o": options}).text
    request_id = re.search(r"phone\?r=(req_\w+)", awaiting)
    poll_url = re.search(r'hx-get="(/verify/qr/status\?[^"]+)"', awaiting)
    assert request_id and poll_url
    consent_url = f"/sandbox/phone/request/{request_id.group(1)}"
    consent = client.get(consent_url, query_string=PSEUDO).text
    permissions = re.findall(r'name="permissions" value="(\w+)"', consent)
    done = client.post(consent_url, data={"action": "share", "profile": "KE8V-3TXY-Z72L", "permissions": permissions},
                       query_string=PSEUDO)
    assert_all_pseudo(done)
    success = final_page(client, poll_url.group(1).replace("&amp;", "&"))
    assert 'data-view="success"' in success and "passid-claim" in success
    assert_all_pseudo(success)


def test_the_share_token_pages_speak_only_pseudo(app: Flask, client: FlaskClient) -> None:
    share = client.get("/sandbox/phone/share", query_string=PSEUDO)
    assert_all_pseudo(share)
    refused = client.post("/sandbox/phone/share", data={"institution": "inst_nobody"}, query_string=PSEUDO)
    assert_all_pseudo(refused)
    client.post("/verify/qr", data={"o": hidden(client.get("/verify").text, "o")})  # the app's sandbox institution
    with app.app_context():
        institution = db.session.execute(db.select(SandboxInstitution.id)).scalars().first()
    minted = client.post("/sandbox/phone/share", query_string=PSEUDO, data={
        "profile": "KE8V-3TXY-Z72L", "institution": institution, "permissions": ["identity_verified"]})
    assert "data-token" in minted.text
    assert_all_pseudo(minted)
    token = re.search(r'data-token="([A-Z0-9-]+)"', minted.text)
    assert token
    assert_all_pseudo(client.post("/sandbox/phone/share/revoke", data={"token": token.group(1)}, query_string=PSEUDO))


def test_every_other_state_and_message_speaks_only_pseudo(app: Flask) -> None:
    """States a real run reaches only by timing or failure, drawn by the same routes' renderer."""
    for html in states_drawn_directly(app):
        assert_all_pseudo(html)


def states_drawn_directly(app: Flask) -> Iterator[str]:
    with app.test_request_context("/verify", query_string=PSEUDO):
        options = options_from(PSEUDO)
        yield render_state("requesting", options).get_data(as_text=True)
        yield render_state("verifying", options, token="PASSID-AB3X-7YQM-K9PQ", nonce="n").get_data(as_text=True)
        yield error_state(options, retry=Retry("post", "/verify/qr")).get_data(as_text=True)
        for error in (messages.token_format_message(), messages.rate_limited_message()):
            yield render_state("idle", options, nonce="n", error=error, token="x").get_data(as_text=True)
        yield render_state("idle", options, nonce="n", notice=messages.view_over_message()).get_data(as_text=True)
        # A session's way out, and what the customer's own cancel shows inside an embed.
        yield render_state("idle", options, nonce="n", cancellable=True).get_data(as_text=True)
        cancelled = cancelled_view(options, sessions.VerificationSession(id="vs_x"))
        yield render_state(cancelled.state, options, session_closed=True, **cancelled.context).get_data(as_text=True)
        for reason in [*DenyReason, "SOMETHING_NEW"]:
            message = messages.deny_message(reason, INSTITUTION)
            yield render_state("declined", options, message=message, expired=False, qr=False).get_data(as_text=True)
        for status, expired in ((FinalStatus.EXPIRED, True), (FinalStatus.DECLINED, False)):
            message = messages.request_end_message(status)
            yield render_state("declined", options, message=message, expired=expired, qr=True,
                               continue_url="https://bank.example/back").get_data(as_text=True)
        claims = {"fsi_score": 812, "tier": "A", "income_verified": True, "income_band": "GBP 40k-60k",
                  "identity_verified": False, "sanctions_clear": False, "payment_reliability": 0.97,
                  "savings_consistency": 88, "fraud_risk": "medium"}
        yield render_state("success", options, claims=claims, lines=messages.claim_lines(claims),
                           approved=True).get_data(as_text=True)
        yield render_state("success", options, claims={}, lines=messages.claim_lines({"income_verified": False}),
                           approved=True, continue_url="https://bank.example/back").get_data(as_text=True)
        # A verdict of review or decline: the neutral words instead of "Verified" and the claims.
        yield render_state("success", options, claims=claims, lines=messages.claim_lines(claims), approved=False,
                           continue_url="https://bank.example/back").get_data(as_text=True)


def final_page(client: FlaskClient, poll_url: str) -> str:
    """The poll without htmx, as a page reload without JavaScript asks it, until it is not the QR again."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = client.get(poll_url).text
        if 'data-view="awaiting"' not in page:
            return page
        time.sleep(0.1)
    raise AssertionError("the request never finished")



@contextmanager
def customer_slots_taken(app: Flask) -> Iterator[None]:
    """Every body slot of the customers' pool taken (app/request_guards.py), so a widget's post meets the 503."""
    bodies: Any = app.wsgi_app
    while not isinstance(bodies, BodiesInFlight):  # the WSGI layers around it
        bodies = bodies.app
    slots = bodies.pools[CUSTOMER].slots
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        yield
    finally:
        for _ in range(taken):
            slots.release()


def test_the_busy_answer_to_a_form_post_speaks_the_customers_language(app: Flask, client: FlaskClient) -> None:
    """Every body slot taken: the 503 a widget's post meets is translated too. An htmx post gets the widget's
    error view (htmx swaps it in as the error state) with "Try again" back to the page it was on; a plain post
    the whole page; the API the plain sentence its document names."""
    on_page = "http://localhost/verify/session?id=vs_x&locale=en-XA"
    with customer_slots_taken(app):
        swapped = client.post("/verify/qr", query_string=PSEUDO, data={"o": "x"},
                              headers={"HX-Request": "true", "HX-Current-URL": on_page})
        page = client.post("/verify/qr", query_string=PSEUDO, data={"o": "x"}, headers={"Referer": on_page})
        english = client.post("/verify/qr", data={"o": "x"}, headers={"Referer": "https://elsewhere.example/"})
    assert swapped.status_code == 503 and swapped.mimetype == "text/html"
    assert swapped.text.strip().startswith('<div class="passid-view" data-view="error"') and "<html" not in swapped.text
    assert english_left(swapped.text) == [] and f'href="{on_page.replace("&", "&amp;")}"' in swapped.text
    assert page.status_code == 503 and page.mimetype == "text/html" and page.headers["Retry-After"] == "5"
    assert_all_pseudo(page)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "The service is busy. Please try again in a moment." in english.text
    assert 'href="/verify?locale=en"' in english.text  # not back to a page of another origin


def test_every_widget_post_names_the_embeds_locale_so_a_busy_answer_speaks_it(app: Flask, client: FlaskClient) -> None:
    """An embed in French, a browser in English: the 503 is worded before the body (and the signed `o`
    that says French) is read, so each form's URL carries the embed's locale too."""
    english_browser = {"Accept-Language": "en"}
    idle = client.get("/verify", query_string={"locale": "fr"}, headers=english_browser).text
    requesting = client.post("/verify/qr", query_string={"locale": "fr"}, data={"o": hidden(idle, "o")},
                             headers={**english_browser, "HX-Request": "true"}).text
    verifying = client.post("/verify/token", data={"o": hidden(idle, "o"), "n": hidden(idle, "n"),
                                                   "token": "PASSID-AB3X-7YQM-K9PQ-3MNX"},
                            headers={**english_browser, "HX-Request": "true"}).text
    posts = [unescape(url) for page in (idle, requesting, verifying)
             for url in re.findall(r'(?:action|hx-post)="([^"]+)"', page)]
    assert len(posts) == 6 and all("locale=fr" in url for url in posts), posts
    plain = client.get("/verify", headers=english_browser).text  # no embed locale: the browser's, unpinned
    assert not [url for url in re.findall(r'(?:action|hx-post)="([^"]+)"', plain) if "locale=" in url]

    with customer_slots_taken(app):
        busy = client.post(posts[0], data={"o": hidden(idle, "o")}, headers=english_browser)
    assert busy.status_code == 503 and '<html lang="fr"' in busy.text
    assert "Le service est très sollicité. Veuillez réessayer dans un instant." in busy.text


def test_an_unknown_session_link_or_poll_answers_in_the_customers_language(client: FlaskClient) -> None:
    for url in ("/verify/session?id=vs_nobody&locale=en-XA", "/verify/qr/status?h=forged&locale=en-XA"):
        answer = client.get(url)
        assert answer.status_code == 404 and answer.mimetype == "text/html"
        assert_all_pseudo(answer)
    assert "Unknown verification session." in client.get("/verify/session?id=vs_nobody").text
