"""Reporting what happened to a loan: one outcome per token, explained in plain words.

In-process: the app's PASSID calls still reach a sandbox over HTTP (its own, or through a proxy
the test can break for an institution whose app gets no webhooks).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func
from sqlalchemy.orm import Session

from app.config import install_settings, load_settings
from app.console.forms import OutcomeForm
from app.passid import DuplicateOutcome, PassidClient
from app.plumbing.database import db
from app.rules.audit import Action, AuditEntry
from app.rules.outcomes import OUTCOME_MEANINGS, OutcomeReport
from tests.console.conftest import add_staff, share_token_for, signed_in
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.html_fields import hidden
from tests.support.servers import TEST_DATA_KEY
from tests.support.widget_actions import WidgetActions


def approved_result(staff: FlaskClient, widget: WidgetActions, token: str) -> str:
    """Verify `token` through the widget and return its result id from the history."""
    assert 'data-view="success"' in widget.submit_token(token).text
    page = staff.get("/console/", query_string={"q": token}).text
    return page.split('data-result-id="', 1)[1].split('"', 1)[0]


def form_data(page: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": hidden(page, "csrf_token"), **fields}


@pytest.fixture
def fresh_token(app: Flask, app_demo: tuple[str, str]) -> Callable[[], str]:
    return lambda: share_token_for(app.config["PASSID_BASE_URL"], app_demo[1])


def test_the_form_explains_all_seven_outcomes(
    staff_client: FlaskClient, widget: WidgetActions, fresh_token: Callable[[], str]
) -> None:
    result_id = approved_result(staff_client, widget, fresh_token())
    page = staff_client.get(f"/console/verifications/{result_id}/outcome").text
    for value, meaning in OUTCOME_MEANINGS.items():
        assert f'value="{value}"' in page and meaning in page
    assert 'name="currency" value="USD"' in page


def test_the_currency_is_the_bank_s_own_until_staff_type_another() -> None:
    """The form alone, in a bare app holding only the settings (building the whole app costs seconds)."""
    kenyan = Flask(__name__)
    install_settings(kenyan, load_settings({"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:",
                                            "PASSID_DATA_KEY": TEST_DATA_KEY, "PASSID_DEFAULT_CURRENCY": "kes"}))
    with kenyan.test_request_context("/console/"):
        form = OutcomeForm(meta={"csrf": False})
        assert form.currency.data == "KES"
        form.process(data={"currency": ""})
        form.validate_currency(form.currency)
        assert form.currency.data == "KES"  # left blank: the bank's currency, not USD


def test_an_outcome_is_reported_end_to_end_then_shown_as_already_reported(
    staff_client: FlaskClient, widget: WidgetActions, fresh_token: Callable[[], str], app_passid: PassidClient
) -> None:
    staff, passid = staff_client, app_passid
    token = fresh_token()
    result_id = approved_result(staff, widget, token)
    url = f"/console/verifications/{result_id}/outcome"
    form = staff.get(url).text
    sent = staff.post(url, data=form_data(form, outcome="delinquent", product_type="personal_loan",
                                          amount="2500.50", currency="gbp"))
    assert sent.status_code == 303
    shown = staff.get(url).text
    assert "Outcome reported: Delinquent." in shown and "Outcome on record" in shown
    assert "personal_loan" in shown and "tier A" in shown
    # Claims beyond the tier, and the amount and notes: on the verification's page, where views are audited.
    assert "score 812" not in shown and "2500.50" not in shown
    assert "Delinquent · personal_loan · £2,500.50" in staff.get(f"/console/verifications/{result_id}").text

    row = staff.get("/console/", query_string={"q": token}).text
    assert "Delinquent" in row and "2500.50" not in row and "Report outcome" not in row

    # The same form sent twice (a double click, a second tab): already reported, with the first report.
    again = staff.post(url, data=form_data(form, outcome="repaid", product_type="mortgage", amount="1"))
    assert again.status_code == 200
    assert "Already reported" in again.text and "Delinquent" in again.text and "personal_loan" in again.text
    assert "staff-error" not in again.text

    # PASSID itself holds exactly the first report.
    with pytest.raises(DuplicateOutcome):
        passid.report_outcome(token, "repaid", "mortgage", 1)


def test_bad_input_is_re_shown_with_readable_messages_and_nothing_reported(
    staff_client: FlaskClient, widget: WidgetActions, fresh_token: Callable[[], str]
) -> None:
    staff = staff_client
    result_id = approved_result(staff, widget, fresh_token())
    url = f"/console/verifications/{result_id}/outcome"
    form = staff.get(url).text
    bad = staff.post(url, data=form_data(form, outcome="other", product_type="", amount="2,500", currency="dollars",
                                         notes=""))
    assert bad.status_code == 422
    for message in ("Please correct the highlighted fields.", "Say which product this was",
                    "Enter the amount in digits only", "three-letter ISO-4217 currency code",
                    "needs a few words"):
        assert message in bad.text
    assert 'value="other" checked' in bad.text  # what was typed is kept

    too_long = staff.post(url, data=form_data(form, outcome="bogus", product_type="loan", amount="5",
                                              notes="x" * 1001))
    assert too_long.status_code == 422
    assert "Choose one of the seven outcomes" in too_long.text and "at most 1000 characters" in too_long.text

    still_open = staff.get(url).text
    assert 'name="outcome"' in still_open and "Outcome on record" not in still_open


def test_only_an_approved_verification_takes_an_outcome(staff_client: FlaskClient, widget: WidgetActions) -> None:
    staff = staff_client
    assert 'data-view="declined"' in widget.submit_token("TEST-EXPD-0001").text
    page = staff.get("/console/", query_string={"q": "TEST-EXPD-0001"}).text
    result_id = page.split('data-result-id="', 1)[1].split('"', 1)[0]
    answer = staff.get(f"/console/verifications/{result_id}/outcome")
    assert answer.status_code == 409 and "approved verification" in answer.text
    assert staff.get("/console/verifications/res_nope/outcome").status_code == 404


@dataclass
class Elsewhere:
    """Another institution's app on the same sandbox, signed in, reaching PASSID through a breakable proxy."""

    staff: FlaskClient
    widget: WidgetActions
    passid: PassidClient
    institution_id: str


@pytest.fixture
def proxy(app: Flask) -> Iterator[FaultyUpstream]:
    upstream = FaultyUpstream(app.config["PASSID_BASE_URL"])
    yield upstream
    upstream.close()


@pytest.fixture
def elsewhere(app_sandbox: PassidClient, proxy: FaultyUpstream, build_app: Callable[..., Flask]) -> Elsewhere:
    """An institution that registered no webhook URL (so a report made elsewhere never reaches its app)."""
    onboarding = app_sandbox.onboard("Elsewhere Bank")
    other = build_app(PASSID_BASE_URL=proxy.url, PASSID_API_KEY=onboarding.sandbox_key)
    client = other.test_client()
    staff = signed_in(other.test_client(), add_staff(other.test_cli_runner()))
    passid = PassidClient(app_sandbox.base_url, onboarding.sandbox_key, timeout=(3.05, 15.0))
    return Elsewhere(staff, WidgetActions(client), passid, onboarding.institution_id)


def test_an_outcome_reported_elsewhere_is_shown_as_already_reported(elsewhere: Elsewhere) -> None:
    result_id = approved_result(elsewhere.staff, elsewhere.widget, "KE8V-3TXY-Z72L")
    url = f"/console/verifications/{result_id}/outcome"
    form = elsewhere.staff.get(url).text
    elsewhere.passid.report_outcome("KE8V-3TXY-Z72L", "repaid", "card", 300)  # another system, same key
    answer = elsewhere.staff.post(url, data=form_data(form, outcome="defaulted", product_type="card", amount="300"))
    assert answer.status_code == 200
    assert "Already reported" in answer.text and "reported elsewhere" in answer.text
    assert "staff-error" not in answer.text


@pytest.mark.parametrize("failure", ["error500", "reset", "garbage"])
def test_when_passid_fails_the_report_is_not_half_written(
    elsewhere: Elsewhere, proxy: FaultyUpstream, failure: str
) -> None:
    proxy.mode = "forward"
    phone = PassidClient(elsewhere.passid.base_url)
    token = phone.create_share_token(phone.sandbox_login("GH2P-ABCD-56KL"), elsewhere.institution_id).token
    result_id = approved_result(elsewhere.staff, elsewhere.widget, token)
    url = f"/console/verifications/{result_id}/outcome"
    form = elsewhere.staff.get(url).text
    proxy.mode = failure
    try:
        answer = elsewhere.staff.post(url, data=form_data(form, outcome="repaid", product_type="card", amount="10"))
    finally:
        proxy.mode = "forward"
    assert answer.status_code == 502
    assert "PASSID could not be reached" in answer.text and "Nothing was saved here" in answer.text
    assert 'value="repaid" checked' in answer.text  # what was typed is kept for the retry
    page = elsewhere.staff.get(url).text
    assert 'name="outcome"' in page and "Outcome on record" not in page
    row = elsewhere.staff.get("/console/", query_string={"q": token}).text
    assert "Report outcome" in row


def test_when_passid_fails_the_other_pages_say_so(elsewhere: Elsewhere, proxy: FaultyUpstream) -> None:
    proxy.mode = "error500"
    try:
        performance = elsewhere.staff.get("/console/performance")
        checklist = elsewhere.staff.get("/console/go-live")
    finally:
        proxy.mode = "forward"
    assert performance.status_code == 502 and "PASSID could not be reached" in performance.text
    assert checklist.status_code == 200
    assert re.search(r'data-verdict="cannot_check">.*?Webhook URL registered with PASSID', checklist.text, flags=re.S)


def inserted(row: object) -> str:
    table = type(row).__table__.name  # type: ignore[attr-defined]
    return f"{table}:{row.action}" if isinstance(row, AuditEntry) else table


@contextmanager
def committed_inserts(app: Flask) -> Iterator[list[set[str]]]:
    """The tables each transaction committed by this thread (the test's requests and commands) inserted into;
    an audit entry as `audit_entry:<action>`, so an entry about something else (a page viewed, a webhook this
    thread happened to handle) is told apart from the report's own.

    Webhook handling in the background commits from other threads and is left out: only the act under test counts.
    """
    me = threading.get_ident()
    committed: list[set[str]] = []
    pending: set[str] = set()

    def flushed(session: Session, _context: object) -> None:
        if threading.get_ident() == me:
            pending.update(inserted(added) for added in session.new)

    def done(_session: Session) -> None:
        if threading.get_ident() == me and pending:
            committed.append(set(pending))
            pending.clear()

    def undone(_session: Session) -> None:
        if threading.get_ident() == me:
            pending.clear()

    hooks = (("after_flush", flushed), ("after_commit", done), ("after_rollback", undone))
    for name, hook in hooks:
        event.listen(Session, name, hook)
    try:
        yield committed
    finally:
        for name, hook in hooks:
            event.remove(Session, name, hook)


def test_an_outcome_report_and_its_audit_entry_are_one_commit(
    app: Flask, staff_client: FlaskClient, widget: WidgetActions, fresh_token: Callable[[], str]
) -> None:
    """A report is never stored without the entry saying who made it, nor the entry without the report."""
    console_token, cli_token = fresh_token(), fresh_token()
    result_id = approved_result(staff_client, widget, console_token)
    approved_result(staff_client, widget, cli_token)
    url = f"/console/verifications/{result_id}/outcome"
    with committed_inserts(app) as committed:
        sent = staff_client.post(url, data=form_data(staff_client.get(url).text, outcome="repaid",
                                                     product_type="personal_loan", amount="100"))
        assert sent.status_code == 303
        with app.app_context():
            reported = app.test_cli_runner().invoke(
                args=["passid", "outcome", cli_token, "repaid", "--product", "loan", "--amount", "5"])
            assert reported.exit_code == 0, reported.output
    entry = f"audit_entry:{Action.OUTCOME_REPORTED}"
    # Each report this thread stored committed with its entry. PASSID's webhook about a report may store our
    # copy first, from a background thread (`save_report`): then the entry commits alone, the report made all
    # the same. Either way, one entry per report, and both reports kept.
    assert all(entry in tables for tables in committed if "outcome_report" in tables), committed
    assert len([tables for tables in committed if entry in tables]) == 2, committed
    with app.app_context():
        assert db.session.execute(db.select(func.count()).select_from(OutcomeReport)).scalar() == 2
