"""History: every verification, newest first, searchable by a whole token or code, 25 to a page.

In process. These run on the `quiet` institution (no webhooks: its PASSID is another app's sandbox, which
knows no webhook URL for it), so each verify is exactly one row and the counts below are exact.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.console.queries import SOURCE_NAMES, normalise_query
from app.passid import PassidClient
from app.plumbing.access_log import ACCESS_LOGGER
from app.rules.claims_summary import claims_summary
from app.rules.verifications import Source
from tests.console.conftest import add_staff, random_token, signed_in
from tests.support.html_fields import hidden
from tests.support.widget_actions import WidgetActions


@dataclass
class QuietConsole:
    """An institution's app whose PASSID sends it no webhooks, with a signed-in staff member and a customer."""

    app: Flask
    staff: FlaskClient
    customer: WidgetActions
    passid_url: str


@pytest.fixture
def quiet(build_app: Callable[..., Flask]) -> QuietConsole:
    passid_url = str(build_app().config["PASSID_BASE_URL"])  # another app's embedded sandbox plays PASSID
    onboarding = PassidClient(passid_url).onboard("Quiet Bank")
    app = build_app(PASSID_BASE_URL=passid_url, PASSID_API_KEY=onboarding.sandbox_key)
    staff = signed_in(app.test_client(), add_staff(app.test_cli_runner()))
    return QuietConsole(app, staff, WidgetActions(app.test_client()), passid_url)


def verify_in_widget(console: QuietConsole, token: str) -> str:
    """Type a token into the widget's manual form; returns the final view."""
    view = re.search(r'data-view="(\w+)"', console.customer.submit_token(token).text)
    assert view
    return view.group(1)


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-result-id="[^"]+">(.*?)</tr>', page, flags=re.S)


def result_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-result-id="([^"]+)">', page)


def detail(console: QuietConsole, result_id: str) -> str:
    """The verification's own page: the one that shows its token, code and reasons (each view recorded)."""
    answer = console.staff.get(f"/console/verifications/{result_id}")
    assert answer.status_code == 200
    return answer.text


def found_by(console: QuietConsole, typed: str) -> str:
    """The one verification a search finds: its result id."""
    [result_id] = result_ids(history(console, q=typed))
    return result_id


def history(console: QuietConsole, **params: str) -> str:
    answer = console.staff.get("/console/", query_string=params)
    assert answer.status_code == 200
    return answer.text


def test_search_terms_are_reduced_to_letters_and_digits() -> None:
    assert normalise_query("passid-ke8v-3txy-z72l") == "KE8V3TXYZ72L"
    assert normalise_query(" PASSID KE8V 3TXY ") == "KE8V3TXY"
    assert normalise_query("ab3x-7yqm") == "AB3X7YQM"
    assert normalise_query("100%_'; drop") == "100DROP"


def test_claims_summary_shows_score_identity_and_fraud_risk() -> None:
    claims = {"fsi_score": 671, "tier": "C", "identity_verified": False, "fraud_risk": "medium", "income_band": "x"}
    assert claims_summary(claims) == "671 · tier C · identity NOT verified · fraud risk medium"
    assert claims_summary(None) == ""


def test_history_lists_widget_verifications_and_their_page_has_the_real_deny_reason(quiet: QuietConsole) -> None:
    assert verify_in_widget(quiet, "GH2P-ABCD-56KL") == "success"
    assert verify_in_widget(quiet, "TEST-SANC-0005") == "declined"
    listed = history(quiet)
    newest, second = rows(listed)[:2]
    # What is clear in the database only (status, source, tier…): the token, the deny reason and every claim
    # but the tier are on the verification's own page, where each view is audited.
    assert "denied" in newest and "Manual entry" in newest
    assert "TEST-SANC" not in newest and "HARD_DENY" not in newest
    assert "<td>C</td>" in second and "GH2P" not in second
    assert "identity" not in second and "fraud risk" not in second
    assert "Report outcome" in second and "Report outcome" not in newest
    page = detail(quiet, result_ids(listed)[0])
    assert "TEST-SANC-0005" in page and "HARD_DENY_SANCTIONS_MATCH" in page


def test_every_source_has_a_name_for_the_history() -> None:
    assert set(SOURCE_NAMES) == set(Source)


def test_a_branch_verification_reads_branch_counter_not_the_raw_source(quiet: QuietConsole) -> None:
    token = random_token("BRCH")
    counter = quiet.staff.get("/branch/").text
    form = {"csrf_token": hidden(counter, "csrf_token"), "n": hidden(counter, "n"), "token": token}
    assert quiet.staff.post("/branch/verify", data=form).status_code == 200
    listed = history(quiet, q=token)
    [row] = rows(listed)
    assert "Branch counter" in row and "denied" in row
    assert not re.search(r">\s*branch\s*<", row), row
    assert "TOKEN_NOT_FOUND" in detail(quiet, result_ids(listed)[0])


def test_search_ignores_case_dashes_and_the_passid_prefix(quiet: QuietConsole) -> None:
    wanted, other = random_token("SRCH"), random_token("SRCH")
    for token in (wanted, other):
        assert verify_in_widget(quiet, token) == "declined"
    result_id = found_by(quiet, "passid-" + wanted.lower().replace("-", ""))
    page = detail(quiet, result_id)
    assert wanted in page and "TOKEN_NOT_FOUND" in page and other not in page
    assert found_by(quiet, other) != result_id
    assert rows(history(quiet, q="ZZZZ-ZZZZ-ZZZZ")) == []


def test_search_finds_a_qr_verification_by_its_code(quiet: QuietConsole) -> None:
    session = quiet.customer.generate_qr()
    code = session.code
    phone = PassidClient(quiet.passid_url)
    phone.fulfill_request(session.request_id, phone.sandbox_login("NG4M-XQRS-T88W"))
    assert 'data-view="success"' in quiet.customer.poll_until_final(session).text
    listed = history(quiet, q=code.lower().replace("-", ""))
    [found] = rows(listed)
    assert "QR code" in found and "<td>B</td>" in found and code not in found
    assert code in detail(quiet, result_ids(listed)[0])


def test_history_pages_25_at_a_time_newest_first(quiet: QuietConsole) -> None:
    tokens = [random_token("PAGE") for _ in range(30)]
    for token in tokens:
        verify_in_widget(quiet, token)
    made = [found_by(quiet, token) for token in tokens]
    first = history(quiet)
    assert len(rows(first)) == 25 and "Page 1 of " in first
    # Newest first: this test's 30 are the newest rows of this console.
    assert result_ids(first) == made[::-1][:25]
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = quiet.staff.get(older).text
    assert "Page 2 of " in second
    assert result_ids(second)[:5] == made[4::-1]
    assert rows(history(quiet, page="99999")) == []
    assert len(rows(history(quiet, page="nonsense"))) == 25


def test_a_search_matches_a_whole_token_or_code_never_a_part_of_one(quiet: QuietConsole) -> None:
    """Tokens and codes are stored encrypted and found by keyed hash (app/plumbing/encryption.py): whole, or not
    at all."""
    token = random_token("PART")
    assert verify_in_widget(quiet, token) == "declined"
    assert len(rows(history(quiet, q=token))) == 1
    for part in (token[:9], token[5:], token.replace("-", "")[:-1]):
        assert rows(history(quiet, q=part)) == [], part


def test_no_claim_ever_travels_in_a_link(quiet: QuietConsole) -> None:
    assert verify_in_widget(quiet, "KE8V-3TXY-Z72L") == "success"
    page = history(quiet)
    for link in re.findall(r'(?:href|action)="([^"]*)"', page):
        # a random result id may spell "fsI" or "812" by chance: look at the link without its ids
        words = re.sub(r"\b(?:res|vs)_[A-Za-z0-9_-]+", "<id>", link)
        assert not re.search(r"812|fsi|claims|tier|fraud|identity", words, flags=re.I), link


def test_a_searched_token_stays_out_of_the_access_log(quiet: QuietConsole, caplog: pytest.LogCaptureFixture) -> None:
    """The search travels in the query string (so a filtered page can be paged and bookmarked); the app's
    access log writes the path only, so a token searched for is in no log line."""
    token = random_token("LOGS")
    assert verify_in_widget(quiet, token) == "declined"
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        assert len(rows(history(quiet, q=token))) == 1
    log = "\n".join(record.getMessage() for record in caplog.records if record.name == ACCESS_LOGGER)
    assert '"GET /console/" 200' in log
    for typed in (token, token.replace("-", ""), token.split("-", 1)[1]):
        assert typed not in log, typed
