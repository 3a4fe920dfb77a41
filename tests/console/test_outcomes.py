"""Reporting what happened to a loan: one outcome per token, explained in plain words."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from app.outcomes import OUTCOME_MEANINGS
from app.passid import DuplicateOutcome, PassidClient
from tests.console.conftest import OtherConsole, fresh_share_token, hidden, other_institution, verify_in_widget
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.servers import AppServer


def approved_result(staff: requests.Session, server: AppServer, token: str) -> str:
    """Verify `token` through the widget and return its result id from the history."""
    assert verify_in_widget(server, token) == "success"
    page = staff.get(f"{server.url}/console/", params={"q": token}, timeout=10).text
    return page.split('data-result-id="', 1)[1].split('"', 1)[0]


def form_data(page: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": hidden(page, "csrf_token"), **fields}


def test_the_form_explains_all_seven_outcomes(
    console_server: AppServer, staff: requests.Session, demo: tuple[str, str]
) -> None:
    result_id = approved_result(staff, console_server, fresh_share_token(console_server, demo[1]))
    page = staff.get(f"{console_server.url}/console/verifications/{result_id}/outcome", timeout=10).text
    for value, meaning in OUTCOME_MEANINGS.items():
        assert f'value="{value}"' in page and meaning in page
    assert 'name="currency" value="USD"' in page


def test_an_outcome_is_reported_end_to_end_then_shown_as_already_reported(
    console_server: AppServer, staff: requests.Session, demo: tuple[str, str], passid: PassidClient
) -> None:
    token = fresh_share_token(console_server, demo[1])
    result_id = approved_result(staff, console_server, token)
    url = f"{console_server.url}/console/verifications/{result_id}/outcome"
    form = staff.get(url, timeout=10).text
    sent = staff.post(url, data=form_data(form, outcome="delinquent", product_type="personal_loan",
                                          amount="2500.50", currency="gbp"), allow_redirects=False, timeout=15)
    assert sent.status_code == 303
    shown = staff.get(url, timeout=10).text
    assert "Outcome reported: Delinquent." in shown and "Outcome on record" in shown
    assert "personal_loan" in shown and "2500.50 GBP" in shown and "score 812" in shown

    row = staff.get(f"{console_server.url}/console/", params={"q": token}, timeout=10).text
    assert "Delinquent · personal_loan · 2500.50 GBP" in row and "Report outcome" not in row

    # The same form sent twice (a double click, a second tab): already reported, with the first report.
    again = staff.post(url, data=form_data(form, outcome="repaid", product_type="mortgage", amount="1"), timeout=15)
    assert again.status_code == 200
    assert "Already reported" in again.text and "Delinquent" in again.text and "personal_loan" in again.text
    assert "staff-error" not in again.text

    # PASSID itself holds exactly the first report.
    with pytest.raises(DuplicateOutcome):
        passid.report_outcome(token, "repaid", "mortgage", 1)


def test_bad_input_is_re_shown_with_readable_messages_and_nothing_reported(
    console_server: AppServer, staff: requests.Session, demo: tuple[str, str]
) -> None:
    result_id = approved_result(staff, console_server, fresh_share_token(console_server, demo[1]))
    url = f"{console_server.url}/console/verifications/{result_id}/outcome"
    form = staff.get(url, timeout=10).text
    bad = staff.post(url, data=form_data(form, outcome="other", product_type="", amount="2,500", currency="dollars",
                                         notes=""), timeout=10)
    assert bad.status_code == 422
    for message in ("Please correct the highlighted fields.", "Say which product this was",
                    "Enter the amount in digits only", "three-letter ISO-4217 currency code",
                    "needs a few words"):
        assert message in bad.text
    assert 'value="other" checked' in bad.text  # what was typed is kept

    too_long = staff.post(url, data=form_data(form, outcome="bogus", product_type="loan", amount="5",
                                              notes="x" * 1001), timeout=10)
    assert too_long.status_code == 422
    assert "Choose one of the seven outcomes" in too_long.text and "at most 1000 characters" in too_long.text

    still_open = staff.get(url, timeout=10).text
    assert 'name="outcome"' in still_open and "Outcome on record" not in still_open


def test_only_an_approved_verification_takes_an_outcome(console_server: AppServer, staff: requests.Session) -> None:
    assert verify_in_widget(console_server, "TEST-EXPD-0001") == "declined"
    page = staff.get(f"{console_server.url}/console/", params={"q": "TEST-EXPD-0001"}, timeout=10).text
    result_id = page.split('data-result-id="', 1)[1].split('"', 1)[0]
    answer = staff.get(f"{console_server.url}/console/verifications/{result_id}/outcome", timeout=10)
    assert answer.status_code == 409 and "approved verification" in answer.text
    assert staff.get(f"{console_server.url}/console/verifications/res_nope/outcome", timeout=10).status_code == 404


@pytest.fixture(scope="module")
def proxy(console_server: AppServer) -> Iterator[FaultyUpstream]:
    upstream = FaultyUpstream(console_server.sandbox_url)
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def elsewhere(console_server: AppServer, proxy: FaultyUpstream,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtherConsole]:
    """An institution whose app gets no webhooks (so a report made elsewhere never reaches it),
    and reaches PASSID through a proxy the test can break."""
    with other_institution(console_server, tmp_path_factory.mktemp("elsewhere"), "Elsewhere Bank",
                           passid_url=proxy.url) as console:
        yield console


def test_an_outcome_reported_elsewhere_is_shown_as_already_reported(elsewhere: OtherConsole) -> None:
    result_id = approved_result(elsewhere.staff, elsewhere.server, "KE8V-3TXY-Z72L")
    url = f"{elsewhere.server.url}/console/verifications/{result_id}/outcome"
    form = elsewhere.staff.get(url, timeout=10).text
    elsewhere.passid.report_outcome("KE8V-3TXY-Z72L", "repaid", "card", 300)  # another system, same key
    answer = elsewhere.staff.post(url, data=form_data(form, outcome="defaulted", product_type="card", amount="300"),
                                  timeout=15)
    assert answer.status_code == 200
    assert "Already reported" in answer.text and "reported elsewhere" in answer.text
    assert "staff-error" not in answer.text


@pytest.mark.parametrize("failure", ["error500", "reset", "garbage"])
def test_when_passid_fails_the_report_is_not_half_written(
    elsewhere: OtherConsole, proxy: FaultyUpstream, failure: str
) -> None:
    proxy.mode = "forward"
    phone = PassidClient(elsewhere.passid.base_url)
    token = phone.create_share_token(phone.sandbox_login("GH2P-ABCD-56KL"), elsewhere.institution_id).token
    result_id = approved_result(elsewhere.staff, elsewhere.server, token)
    url = f"{elsewhere.server.url}/console/verifications/{result_id}/outcome"
    form = elsewhere.staff.get(url, timeout=10).text
    proxy.mode = failure
    try:
        answer = elsewhere.staff.post(url, data=form_data(form, outcome="repaid", product_type="card", amount="10"),
                                      timeout=30)
    finally:
        proxy.mode = "forward"
    assert answer.status_code == 502
    assert "PASSID could not be reached" in answer.text and "Nothing was saved here" in answer.text
    assert 'value="repaid" checked' in answer.text  # what was typed is kept for the retry
    page = elsewhere.staff.get(url, timeout=10).text
    assert 'name="outcome"' in page and "Outcome on record" not in page
    row = elsewhere.staff.get(f"{elsewhere.server.url}/console/", params={"q": token}, timeout=10).text
    assert "Report outcome" in row


def test_when_passid_fails_the_other_pages_say_so(elsewhere: OtherConsole, proxy: FaultyUpstream) -> None:
    proxy.mode = "error500"
    try:
        performance = elsewhere.staff.get(f"{elsewhere.server.url}/console/performance", timeout=30)
        checklist = elsewhere.staff.get(f"{elsewhere.server.url}/console/go-live", timeout=30)
    finally:
        proxy.mode = "forward"
    assert performance.status_code == 502 and "PASSID could not be reached" in performance.text
    assert checklist.status_code == 200
    assert re.search(r'data-verdict="cannot_check">.*?Webhook URL registered with PASSID', checklist.text, flags=re.S)
