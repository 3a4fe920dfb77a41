"""How a page chooses its language, first match wins (app/plumbing/i18n.py):
a server-created session's locale, then the embed's `?locale=` (carried in the widget's signed
options through every later request), then the browser's Accept-Language, then
PASSID_DEFAULT_LOCALE. Staff pages speak only a language their whole catalogue is in.

The pseudo-locale (en-XA: every string in [brackets]) shows which catalogue a partial used
without depending on any translation's wording.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.test import TestResponse

from app.plumbing.database import db
from app.plumbing.passid_connection import passid_connection
from tests.support.html_fields import hidden

pytestmark = pytest.mark.databases("sqlite")


def html_tag(response: TestResponse) -> tuple[str, str]:
    tag = re.search(r"<html[^>]*>", response.get_data(as_text=True))
    assert tag, response.get_data(as_text=True)[:300]
    lang = re.search(r'lang="([^"]+)"', tag.group(0))
    direction = re.search(r'dir="([^"]+)"', tag.group(0))
    assert lang and direction, tag.group(0)
    return lang.group(1), direction.group(1)


def lang_of(response: TestResponse) -> str:
    return html_tag(response)[0]


def test_accept_language_chooses_among_the_ten(client: FlaskClient) -> None:
    assert lang_of(client.get("/verify", headers={"Accept-Language": "sw-KE,sw;q=0.9,en;q=0.5"})) == "sw"
    # What phones send: a regional tag first, English as a fallback. The region's language wins.
    assert lang_of(client.get("/verify", headers={"Accept-Language": "de-DE,en;q=0.5"})) == "de"
    assert lang_of(client.get("/verify", headers={"Accept-Language": "sw-KE,en-US;q=0.9,en;q=0.8"})) == "sw"
    assert lang_of(client.get("/verify", headers={"Accept-Language": "ar-EG,en;q=0.1"})) == "ar"
    assert lang_of(client.get("/verify", headers={"Accept-Language": "en-GB,fr;q=0.9"})) == "en"
    assert lang_of(client.get("/verify", headers={"Accept-Language": "ja, pl;q=0.7, en;q=0.3"})) == "pl"
    assert lang_of(client.get("/verify", headers={"Accept-Language": "ja"})) == "en"


def test_the_url_beats_the_browser_and_an_unknown_locale_is_ignored(client: FlaskClient) -> None:
    assert lang_of(client.get("/verify?locale=de", headers={"Accept-Language": "fr"})) == "de"
    assert lang_of(client.get("/verify?locale=pt-BR", headers={"Accept-Language": "fr"})) == "pt"
    assert lang_of(client.get("/verify?locale=xx", headers={"Accept-Language": "fr"})) == "fr"
    assert lang_of(client.get("/verify?locale=%00", headers={"Accept-Language": "fr"})) == "fr"


def test_arabic_is_right_to_left_and_the_rest_left_to_right(client: FlaskClient) -> None:
    assert html_tag(client.get("/verify?locale=ar")) == ("ar", "rtl")
    assert html_tag(client.get("/verify?locale=fr")) == ("fr", "ltr")
    assert html_tag(client.get("/verify")) == ("en", "ltr")


def test_the_configured_default_comes_last(build_app: Callable[..., Flask]) -> None:
    client = build_app(PASSID_DEFAULT_LOCALE="nl").test_client()
    assert lang_of(client.get("/verify")) == "nl"
    assert lang_of(client.get("/verify", headers={"Accept-Language": "it"})) == "it"


def test_the_embed_s_locale_travels_with_the_widget_s_later_requests(client: FlaskClient) -> None:
    """Polls and forms carry the signed options, not a cookie (third-party iframes have none): the
    pseudo-locale chosen on the page still speaks in the partial, whatever the browser says."""
    page = client.get("/verify?locale=en-XA", headers={"Accept-Language": "en"})
    assert lang_of(page) == "en-XA"
    options = hidden(page.get_data(as_text=True), "o")
    partial = client.post("/verify/qr", data={"o": options}, headers={"HX-Request": "true", "Accept-Language": "en"})
    text = partial.get_data(as_text=True)
    assert "[" in text and "Creating verification session" not in text, text
    plain = client.post("/verify/qr", data={"o": hidden(client.get("/verify").get_data(as_text=True), "o")},
                        headers={"HX-Request": "true", "Accept-Language": "en"})
    assert "Creating verification session" in plain.get_data(as_text=True)


def test_a_session_s_locale_beats_the_url_and_the_browser(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        key = passid_connection().api_key
    made = client.post("/api/sessions", json={"reference": "loan-7", "locale": "sw"},
                       headers={"X-Institution-Key": key})
    assert made.status_code == 201, made.get_json()
    session_id = made.get_json()["id"]
    page = client.get(f"/verify/session?id={session_id}&locale=de", headers={"Accept-Language": "fr"})
    assert lang_of(page) == "sw"
    regional = client.post("/api/sessions", json={"reference": "loan-9", "locale": "pt-BR"},
                           headers={"X-Institution-Key": key})
    assert regional.status_code == 201
    assert lang_of(client.get(f"/verify/session?id={regional.get_json()['id']}")) == "pt"
    plain = client.post("/api/sessions", json={"reference": "loan-8"}, headers={"X-Institution-Key": key})
    other = client.get(f"/verify/session?id={plain.get_json()['id']}&locale=de", headers={"Accept-Language": "fr"})
    assert lang_of(other) == "de"


def test_staff_pages_speak_only_a_language_their_catalogue_is_complete_in(client: FlaskClient) -> None:
    assert lang_of(client.get("/staff/sign-in", headers={"Accept-Language": "ar"})) == "en"
    assert lang_of(client.get("/staff/sign-in", headers={"Accept-Language": "ar, es;q=0.8"})) == "es"
    assert lang_of(client.get("/staff/sign-in?locale=sw", headers={"Accept-Language": "de"})) == "de"
    # Pages answered before the staff blueprint's own code runs: a stale sign-in form (CSRF), an impossible id.
    stale = client.post("/staff/sign-in", data={"username": "x", "password": "y", "csrf_token": "stale"},
                        headers={"Accept-Language": "ar"})
    assert stale.status_code == 400 and lang_of(stale) == "en"
    impossible = client.get("/console/verifications/a%00b", headers={"Accept-Language": "ar, es;q=0.5"})
    assert impossible.status_code in (400, 404) and lang_of(impossible) == "es"
    # The customer's widget on the same server still speaks Arabic.
    assert lang_of(client.get("/verify", headers={"Accept-Language": "ar"})) == "ar"


def test_the_pseudo_locale_exists_only_where_it_is_switched_on(build_app: Callable[..., Flask]) -> None:
    """Off (the default outside tests), en-XA is just English: a bank's page never shows bracketed text."""
    client = build_app(PASSID_PSEUDO_LOCALE="false").test_client()
    page = client.get("/verify?locale=en-XA", headers={"Accept-Language": "it"})
    assert lang_of(page) == "en"
    assert "Verify with PASSID" in page.get_data(as_text=True)


FINISHED_SET_REFRESH = "SELECT verification.request_id \nFROM verification \nWHERE verification.created_at >="


def test_a_session_widget_s_pending_poll_keeps_its_language_without_a_database_query(
        app: Flask, client: FlaskClient) -> None:
    """Waiting widgets poll every 2.5 s: the locale comes from the signed handle, never from a lookup."""
    with app.app_context():
        key = passid_connection().api_key
        engine = db.engine
    made = client.post("/api/sessions", json={"reference": "loan-10", "locale": "sw"},
                       headers={"X-Institution-Key": key})
    page = client.get(f"/verify/session?id={made.get_json()['id']}", headers={"Accept-Language": "en"})
    awaiting = client.post("/verify/qr", data={"o": hidden(page.get_data(as_text=True), "o")},
                           headers={"Accept-Language": "en"})
    assert lang_of(awaiting) == "sw"
    poll = re.search(r'hx-get="(/verify/qr/status\?[^"]+)"', awaiting.get_data(as_text=True))
    assert poll
    url = poll.group(1).replace("&amp;", "&")
    client.get(url, headers={"HX-Request": "true"})  # the first poll may ask PASSID and look back
    statements: list[str] = []
    polling_thread = threading.get_ident()  # the test client answers in this thread

    def count(*args: object) -> None:
        # Only the polls' own statements: the app's background passes (webhook handling, deliveries) run in
        # their threads on the same engine, and one may tick during the polls. Nor the worker's refresh of its
        # set of lately finished requests (app/rules/finished_requests.py): at most one query per 50 ms for
        # every widget waiting on the worker, which a poll runs when the set is older than that (on a busy
        # machine, between two of these polls); it is not about this widget, let alone its language.
        statement = str(args[2])
        if threading.get_ident() == polling_thread and not statement.startswith(FINISHED_SET_REFRESH):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        answers = [client.get(url, headers={"HX-Request": "true", "Accept-Language": "en"}).status_code
                   for _ in range(3)]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answers == [204, 204, 204] and statements == [], statements
