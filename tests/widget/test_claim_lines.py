"""Claim lines in the customer's language: exact income bands, and no crash on nonsense.

PASSID's claims are not validated on the way in, and the same lines are drawn by the widget, the
branch counter and the console. A value outside the spec (passid-api.md: payment_reliability 0–1,
savings_consistency 0–100, numbers) must leave its line out, never raise (a 500) nor print "NaN %".
An income band is the band PASSID verified, so its amounts are written in full in the locale's
grouping ("£1,500,000"), never rounded to a compact "£2M" that turns 1500k–2000k into "£2M to £2M".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from babel.numbers import format_decimal
from flask import Flask

from app.rules import customer_wording as messages
from app.widget.options import options_from
from app.widget.routes import render_state
from tests.support.in_process import migrated_sqlite_url, serving_in_process

LOCALES = ("en", "fr", "ar")
NONSENSE: tuple[Any, ...] = (None, "n/a", "high", "", True, [], {}, 10**30, 1e300, float("nan"), float("inf"),
                             float("-inf"), "nan", "1e300", -0.5)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One in-process app for the module: claim lines read no database, only the request's locale."""
    directory = tmp_path_factory.mktemp("claim-lines")
    with serving_in_process(migrated_sqlite_url(directory), directory) as built:
        yield built


def lines_in(app: Flask, locale: str, claims: dict[str, Any]) -> list[tuple[str, bool | None]]:
    with app.test_request_context("/verify", query_string={"locale": locale}):
        return messages.claim_lines(claims)


@pytest.mark.parametrize("value", NONSENSE, ids=repr)
@pytest.mark.parametrize("claim", ["payment_reliability", "savings_consistency"])
def test_a_nonsense_score_leaves_its_line_out_in_every_locale(app: Flask, claim: str, value: Any) -> None:
    for locale in LOCALES:
        lines = lines_in(app, locale, {claim: value, "identity_verified": True})
        assert len(lines) == 1 and lines[0][1] is True, (locale, lines)  # only the identity line is left


@pytest.mark.parametrize(("claim", "value"), [("payment_reliability", 1.01), ("savings_consistency", 100.5),
                                              ("savings_consistency", -1)])
def test_a_score_outside_its_range_leaves_its_line_out(app: Flask, claim: str, value: float) -> None:
    assert lines_in(app, "en", {claim: value}) == []


def test_scores_in_range_read_in_the_locale(app: Flask) -> None:
    claims = {"payment_reliability": 0.92, "savings_consistency": 87.5}
    assert [text for text, _ in lines_in(app, "en", claims)] == [
        "Pays on time 92% of the time", "Savings consistency 87.5 out of 100"]
    french = " ".join(text for text, _ in lines_in(app, "fr", claims))
    assert "92\N{NO-BREAK SPACE}%" in french and "87,5" in french
    edges = {"payment_reliability": 0, "savings_consistency": 100}
    assert [text for text, _ in lines_in(app, "en", edges)] == [
        "Pays on time 0% of the time", "Savings consistency 100 out of 100"]
    # The spec says numbers; a number sent as a string still reads, as it did before.
    assert len(lines_in(app, "ar", {"payment_reliability": "0.92", "savings_consistency": "87"})) == 2


def test_the_success_state_draws_with_nonsense_claims(app: Flask) -> None:
    claims = {"income_verified": True, "income_band": "GBP 40k-60k", "payment_reliability": float("nan"),
              "savings_consistency": "n/a", "fraud_risk": "low"}
    with app.test_request_context("/verify", query_string={"locale": "ar"}):
        page = render_state("success", options_from({"locale": "ar"}), claims=claims,
                            lines=messages.claim_lines(claims), approved=True).get_data(as_text=True)
    assert 'data-view="success"' in page and "NaN" not in page
    assert page.count('class="passid-claim ') == 2  # the income and the fraud-risk lines


@pytest.mark.parametrize("locale", ["en", "fr", "de", "ar", "sw", "pl"])
@pytest.mark.parametrize(("band", "low", "high"), [("GBP 1500k-2000k", 1_500_000, 2_000_000),
                                                   ("GBP 1250k-1500k", 1_250_000, 1_500_000),
                                                   ("GBP 150k-250k", 150_000, 250_000)])
def test_an_income_band_shows_its_exact_amounts(app: Flask, locale: str, band: str, low: int, high: int) -> None:
    [(text, ok)] = lines_in(app, locale, {"income_verified": True, "income_band": band})
    assert ok is True
    for amount in (low, high):
        assert format_decimal(amount, locale=locale) in text, (locale, text)  # "1,500,000", "1.500.000", …


def test_an_income_band_reads_as_money_in_the_locale(app: Flask) -> None:
    claims = {"income_verified": True, "income_band": "GBP 1500k-2000k"}
    assert lines_in(app, "en", claims)[0][0] == "Income verified (£1,500,000 to £2,000,000)"
    german = lines_in(app, "de", {"income_verified": True, "income_band": "GBP 150k-250k"})[0][0]
    assert "150.000\N{NO-BREAK SPACE}£" in german and "250.000\N{NO-BREAK SPACE}£" in german
    assert ",00" not in german  # whole amounts: no pence


@pytest.mark.parametrize("band", ["USD 100k+", "gbp 40k-60k", "band-KOALA-1234"])
def test_an_income_band_in_another_shape_is_shown_as_sent(app: Flask, band: str) -> None:
    for locale in LOCALES:
        [(text, _)] = lines_in(app, locale, {"income_verified": True, "income_band": band})
        assert band in text
