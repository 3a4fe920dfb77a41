"""The error pages a customer's browser can reach speak the customer's language; machines keep JSON.

In process, through the whole app: a 404, a 405, a 413 and a 500 on customer URLs come back as
templates/errors/error.html in `en`, `fr` and `ar` (right-to-left), chosen by `?locale=` or by
Accept-Language, with their status and headers (Allow) and no trace; `/api/`, `/sandbox/api/` and
`/webhooks/` answer the same errors in JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.error_pages import page_words

pytestmark = pytest.mark.databases("sqlite")

ENGLISH_WORDS = {
    404: ("Page not found", "We couldn't find this page. Check the address, or start again."),
    405: ("Something went wrong", "This page can't be opened this way. Please start again."),
    413: ("Something went wrong", "What you sent is too large. Please start again."),
    500: ("Something went wrong", "Something went wrong on our side. Please try again in a moment."),
}
TOO_LARGE = b"x" * (1024 * 1024 + 1)  # one byte over MAX_CONTENT_LENGTH


def _words(page: TestResponse) -> tuple[str, str, str]:
    """The page's heading, sentence and link text, as a person reads them."""
    heading = re.search(r'<h1 id="passid-error-title"[^>]*>([^<]*)</h1>', page.text)
    sentence = re.search(r'<p class="passid-message">([^<]*)</p>', page.text)
    link = re.search(r'<a class="passid-button[^"]*" href="[^"]*">([^<]*)</a>', page.text)
    assert heading and sentence and link, page.text
    return unescape(heading.group(1)), unescape(sentence.group(1)), unescape(link.group(1))


def _broken_view(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The widget's page view crashes, with words that must never reach the browser; Flask answers the
    500 as production does (the in-process app is in TESTING, which would re-raise it instead)."""

    def crash() -> str:
        raise RuntimeError("internal detail: the database said no")

    monkeypatch.setitem(app.view_functions, "widget.page", crash)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)


def _each_error(client: FlaskClient, locale: str | None, accept: str = "en") -> dict[int, TestResponse]:
    query = {"locale": locale} if locale else {}
    headers = {"Accept-Language": accept}
    return {
        404: client.get("/verify/nothing", query_string=query, headers=headers),
        405: client.get("/verify/qr", query_string=query, headers=headers),
        413: client.post("/verify/token", query_string=query, headers=headers, data=TOO_LARGE,
                         content_type="application/x-www-form-urlencoded"),
        500: client.get("/verify", query_string=query, headers=headers),
    }


@pytest.mark.parametrize(("locale", "direction"), [("en", "ltr"), ("fr", "ltr"), ("ar", "rtl")])
def test_each_error_is_a_page_in_the_customers_language(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, locale: str, direction: str
) -> None:
    _broken_view(app, monkeypatch)
    for status, page in _each_error(client, locale).items():
        assert page.status_code == status
        assert page.content_type == "text/html; charset=utf-8"
        assert f'<html lang="{locale}" dir="{direction}"' in page.text
        heading, sentence, link = _words(page)
        english_heading, english_sentence = ENGLISH_WORDS[status]
        if locale == "en":
            assert (heading, sentence, link) == (english_heading, english_sentence, "Start again")
        else:  # translated: not one of the English words left
            assert heading != english_heading and sentence != english_sentence and link != "Start again", page.text
        # The widget's stylesheet under its fingerprinted name; no inline style, so the CSP needs no nonce.
        assert re.search(r'<link rel="stylesheet" href="/static/widget/widget\.[0-9a-f]{12}\.css">', page.text)
        assert "<style" not in page.text and "style=" not in page.text
        assert "Traceback" not in page.text and "internal detail" not in page.text and "RuntimeError" not in page.text
        # "Start again" leads to the widget in the same language.
        assert f'href="/verify?locale={locale}"' in page.text
        assert page.headers["Cache-Control"] == "no-store"


def test_accept_language_chooses_the_page_s_language_too(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _broken_view(app, monkeypatch)
    for status, page in _each_error(client, None, accept="ar, en;q=0.5").items():
        assert page.status_code == status
        assert '<html lang="ar" dir="rtl"' in page.text
        assert _words(page)[1] != ENGLISH_WORDS[status][1]


def test_a_405_keeps_its_allow_header(client: FlaskClient) -> None:
    page = client.get("/verify/qr?locale=fr")
    assert page.status_code == 405
    assert set(page.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}
    assert "GET" not in page.headers["Allow"].split(", ")


def test_a_live_app_with_no_sandbox_answers_its_500_with_the_same_page(
    build_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the sandbox (whose own handlers see unexpected errors first when mounted) Flask's 500 path
    reaches the page, and nothing links to or names a sandbox."""
    live = build_app(PASSID_BASE_URL="https://api.passid.io", PASSID_API_KEY="sk_" + "live_" + "Er4" * 11)
    _broken_view(live, monkeypatch)
    page = live.test_client().get("/verify?locale=ar")
    assert page.status_code == 500 and '<html lang="ar" dir="rtl"' in page.text
    assert _words(page)[0] != "Something went wrong" and "internal detail" not in page.text
    missing = live.test_client().get("/sandbox/phone?locale=fr")
    assert missing.status_code == 404 and '<html lang="fr"' in missing.text
    assert missing.text == live.test_client().get("/no-such-page?locale=fr").text  # no hint of a sandbox


def test_the_sandbox_phone_and_staff_pages_get_the_page_with_their_own_way_back(client: FlaskClient) -> None:
    phone = client.get("/sandbox/phone/nothing/here?locale=fr")
    assert phone.status_code == 404 and '<html lang="fr"' in phone.text
    assert 'href="/sandbox/phone"' in phone.text
    console = client.get("/console/nothing?locale=de")
    assert console.status_code == 404 and '<html lang="de"' in console.text
    assert 'href="/staff/sign-in"' in console.text


def test_every_other_status_has_words_of_its_own(app: Flask) -> None:
    """Every 4xx and 5xx gets a sentence (a 429's and a 503's are the widget's existing ones)."""
    with app.test_request_context("/verify"):
        words = {page_words(status) for status in (400, 401, 403, 404, 405, 410, 413, 415, 429, 500, 501, 503)}
    assert len(words) == 7  # 404, 405, 413, 429, 500, any other 4xx, any other 5xx


def test_the_json_apis_keep_json_errors(client: FlaskClient) -> None:
    for method, path, status, code in (
        ("get", "/api/nothing?locale=fr", 404, "NOT_FOUND"),
        ("put", "/api/sessions", 405, "METHOD_NOT_ALLOWED"),
        ("get", "/webhooks/passid", 405, "METHOD_NOT_ALLOWED"),
        ("get", "/webhooks/nothing", 404, "NOT_FOUND"),
    ):
        answer = getattr(client, method)(path, headers={"Accept-Language": "fr"})
        assert answer.status_code == status, path
        assert answer.is_json and answer.json["error"]["code"] == code, (path, answer.text)
        assert answer.headers["Cache-Control"] == "no-store"
        if status == 405:
            assert "POST" in answer.headers["Allow"]
    sandbox = client.get("/sandbox/api/nothing", headers={"Accept-Language": "fr"})
    assert sandbox.status_code == 404 and sandbox.is_json and sandbox.json["error"]["code"] == "NOT_FOUND"
    assert sandbox.headers["X-PASSID-API-Version"] == "1"
    too_large = client.post("/webhooks/passid", data=TOO_LARGE, content_type="application/json")
    assert too_large.status_code == 413 and too_large.json["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_an_unknown_session_is_the_error_page_with_a_way_back_only_to_an_allowed_page(
    build_app: Callable[..., Flask],
) -> None:
    client = build_app(PASSID_ALLOWED_EMBED_ORIGINS="https://bank.example").test_client()
    came_from = "https://bank.example/loans/apply?step=3"
    answer = client.get("/verify/session?id=vs_nobody", headers={"Referer": came_from, "Accept-Language": "fr"})
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "data-error-page" in answer.text and 'lang="fr"' in answer.text
    assert f'href="{came_from.replace("&", "&amp;")}"' in answer.text
    elsewhere = client.get("/verify/session?id=vs_nobody", headers={"Referer": "https://evil.example/"})
    assert "evil.example" not in elsewhere.text and "passid-button" not in elsewhere.text


def test_every_error_status_is_a_translated_page_on_customer_and_staff_urls_and_json_for_machines(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever status a view stops with, a person gets a page (text/html, in their language: the customer's on
    the widget, the staff member's on the console) and a machine JSON. The 503 of full body slots and the staff
    403 have their own tests (test_pseudo_locale_text.py, tests/console/test_roles.py)."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    for status in (400, 403, 404, 405, 410, 413, 429, 500, 503):
        def stop(status: int = status) -> str:
            abort(status)

        for endpoint in ("widget.page", "console.history", "webhooks.receive"):
            monkeypatch.setitem(app.view_functions, endpoint, stop)
        for path, locale in (("/verify", "fr"), ("/console/", "de")):
            page = client.get(path, query_string={"locale": locale}, headers={"Accept-Language": "en"})
            assert page.status_code == status and page.content_type == "text/html; charset=utf-8", path
            assert f'<html lang="{locale}"' in page.text
            if status == 429 and path == "/verify":  # the widget's own answer: its form again, with the sentence
                assert 'data-view="idle"' in page.text and _translated(app, locale, 429)[1] in unescape(page.text)
                continue
            assert "data-error-page" in page.text
            assert _words(page)[:2] == _translated(app, locale, status), (status, path)
        machine = client.post("/webhooks/passid", data=b"{}", content_type="application/json")
        assert machine.status_code == status and machine.is_json and "error" in machine.json


def _translated(app: Flask, locale: str, status: int) -> tuple[str, str]:
    with app.test_request_context("/verify", query_string={"locale": locale}):
        return page_words(status)
