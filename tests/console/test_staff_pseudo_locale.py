"""Every word a staff page shows comes from the `staff` catalogue: rendered in the pseudo-locale (en-XA, on in
test servers), each visible text is bracketed pseudo text. An English string left unmarked shows up bare and
fails this test; names, ids, tokens, codes (in <code>), numbers and dates are all it may show besides."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.console.conftest import add_staff, signed_in

PAGES = ("/branch/", "/branch/qr", "/console/", "/console/review", "/console/webhooks", "/console/go-live",
         "/console/audit", "/console/staff", "/console/performance", "/console/funnel")
# Shown as they are in every language: the product's name and the zone every console time is in.
UNTRANSLATED = {"PASSID", "Verify", "UTC"}
_BRACKETED = re.compile(r"\[[^\[\]]*\]")


class VisibleText(HTMLParser):
    """Text nodes a person reads, minus <code> (ids, tokens, event codes), `translate="no"` (stored data, codes)
    and scripts."""

    SKIP = {"code", "script", "style", "svg"}

    def __init__(self) -> None:
        super().__init__()
        self.skipping = 0
        self.texts: list[str] = []
        self.open_skips: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP or ("translate", "no") in attrs:
            self.skipping += 1
            self.open_skips.append(tag)
        for name, value in attrs:  # what a screen reader or a placeholder shows is text too
            if name in ("placeholder", "aria-label") and value and "XXXX" not in value:
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self.open_skips and self.open_skips[-1] == tag:
            self.open_skips.pop()
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


def unmarked(html: str, allowed: set[str]) -> list[str]:
    """Texts with a word left outside pseudo brackets that is not a name, number or code."""
    parser = VisibleText()
    parser.feed(html)
    bare = []
    for text in parser.texts:
        rest = re.sub(r"\S*[\d._]\S*", " ", text)  # names with digits, ids, dates, numbers, codes like a.b_c
        while _BRACKETED.search(rest):  # innermost first: a placeholder's own pseudo text sits inside another
            rest = _BRACKETED.sub(" ", rest)
        words = [word for word in re.findall(r"[A-Za-z][A-Za-z'’]+", rest) if word not in allowed | UNTRANSLATED]
        if words:
            bare.append(text)
    return bare


@pytest.mark.parametrize("page", PAGES)
def test_every_staff_page_text_is_in_the_staff_catalogue(app: Flask, runner: FlaskCliRunner, page: str) -> None:
    name = add_staff(runner, role="admin")
    client = signed_in(app.test_client(), name)
    answer = client.get(page, query_string={"locale": "en-XA"})
    assert answer.status_code in (200, 502), (page, answer.status_code)  # 502: PASSID unreachable is a page too
    assert 'lang="en-XA"' in answer.text
    assert unmarked(answer.text, {name}) == [], page


def test_the_sign_in_page_and_its_error_are_marked(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/staff/sign-in", query_string={"locale": "en-XA"}).text
    assert unmarked(page, set()) == []


def test_an_unmarked_string_is_caught() -> None:
    """The check itself: a bare English word fails it, bracketed text, numbers and codes do not."""
    assert unmarked("<p>[Ŝîĝñ ţĥé] 12</p><p>2026-11-26 14:05 UTC</p><code>res_abc</code>", set()) == []
    assert unmarked("<p>Sign in</p>", set()) == ["Sign in"]
    assert unmarked("<p>[Ŵéļçöɱé] Sign out</p>", set()) == ["[Ŵéļçöɱé] Sign out"]
