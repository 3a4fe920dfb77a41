"""History: every verification, newest first, searchable by token or code, 25 to a page.

These run on the `quiet` institution (no webhooks), so each verify is exactly
one row and the counts below are exact.
"""

from __future__ import annotations

import re
import secrets

from app.console.records import SOURCE_NAMES, claims_summary, normalise_query
from app.passid import PassidClient
from app.verifications import Source
from tests.console.conftest import OtherConsole, random_token, verify_in_widget
from tests.support.html_fields import hidden
from tests.support.widget_http import open_qr_session, poll_until_final


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-result-id="[^"]+">(.*?)</tr>', page, flags=re.S)


def history(console: OtherConsole, **params: str) -> str:
    answer = console.staff.get(f"{console.server.url}/console/", params=params, timeout=10)
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


def test_history_lists_widget_verifications_with_the_real_deny_reason(quiet: OtherConsole) -> None:
    assert verify_in_widget(quiet.server, "GH2P-ABCD-56KL") == "success"
    assert verify_in_widget(quiet.server, "TEST-SANC-0005") == "declined"
    newest, second = rows(history(quiet))[:2]
    assert "TEST-SANC-0005" in newest and "HARD_DENY_SANCTIONS_MATCH" in newest and "Manual entry" in newest
    assert "GH2P-ABCD-56KL" in second and "671 · tier C · identity NOT verified · fraud risk medium" in second
    assert "Report outcome" in second and "Report outcome" not in newest


def test_every_source_has_a_name_for_the_history() -> None:
    assert set(SOURCE_NAMES) == set(Source)


def test_a_branch_verification_reads_branch_counter_not_the_raw_source(quiet: OtherConsole) -> None:
    token = random_token("BRCH")
    counter = quiet.staff.get(f"{quiet.server.url}/branch/", timeout=10).text
    form = {"csrf_token": hidden(counter, "csrf_token"), "n": hidden(counter, "n"), "token": token}
    assert quiet.staff.post(f"{quiet.server.url}/branch/verify", data=form, timeout=10).status_code == 200
    [row] = rows(history(quiet, q=token))
    assert "Branch counter" in row and "TOKEN_NOT_FOUND" in row
    assert not re.search(r">\s*branch\s*<", row), row


def test_search_ignores_case_dashes_and_the_passid_prefix(quiet: OtherConsole) -> None:
    wanted, other = random_token("SRCH"), random_token("SRCH")
    for token in (wanted, other):
        assert verify_in_widget(quiet.server, token) == "declined"
    found = rows(history(quiet, q="passid-" + wanted.lower().replace("-", "")))
    assert len(found) == 1 and wanted in found[0] and "TOKEN_NOT_FOUND" in found[0]
    assert not any(other in row for row in found)
    assert rows(history(quiet, q="ZZZZ-ZZZZ-ZZZZ")) == []


def test_search_finds_a_qr_verification_by_its_code(quiet: OtherConsole) -> None:
    server = quiet.server
    session = open_qr_session(server.url)
    code = session.code
    phone = PassidClient(quiet.passid.base_url)
    phone.fulfill_request(session.request_id, phone.sandbox_login("NG4M-XQRS-T88W"))
    assert 'data-view="success"' in poll_until_final(session).text
    found = rows(history(quiet, q=code.lower().replace("-", "")))
    assert len(found) == 1
    assert code in found[0] and "QR code" in found[0] and "743 · tier B" in found[0]


def test_history_pages_25_at_a_time_newest_first(quiet: OtherConsole) -> None:
    prefix = "P" + "".join(secrets.choice("ABCDEFGHJKMNPQRSTUVWXYZ") for _ in range(3))
    tokens = [random_token(prefix) for _ in range(30)]
    for token in tokens:
        verify_in_widget(quiet.server, token)
    first = history(quiet, q=prefix)
    assert len(rows(first)) == 25 and "Page 1 of 2" in first and "30 verifications match" in first
    assert tokens[-1] in rows(first)[0]  # newest first
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert f"q={prefix}" in older  # the search is kept
    second = quiet.staff.get(quiet.server.url + older, timeout=10).text
    assert len(rows(second)) == 5 and "Page 2 of 2" in second
    assert tokens[0] in rows(second)[-1]
    beyond = history(quiet, q=prefix, page="99")
    assert rows(beyond) == []
    assert len(rows(history(quiet, q=prefix, page="nonsense"))) == 25


def test_no_claim_ever_travels_in_a_link(quiet: OtherConsole) -> None:
    assert verify_in_widget(quiet.server, "KE8V-3TXY-Z72L") == "success"
    page = history(quiet)
    for link in re.findall(r'(?:href|action)="([^"]*)"', page):
        assert not re.search(r"812|fsi|claims|tier|fraud|identity", link, flags=re.I), link
