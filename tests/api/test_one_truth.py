"""One truth about each customer, on a running app over HTTP (sessions on SQLite and on PostgreSQL).

The same sandbox token gets the same verdict whichever way it arrives (the customer's widget, the
branch counter, `flask passid verify`) and whoever reads it (the backend API, the console, the review
queue); a session keeps every attempt, a sanctions match ends it, the bank can cancel it and find every
session of one of its references.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.console.conftest import create_staff, run_flask, sign_in
from tests.support.demo_institution import demo_institution
from tests.support.html_fields import hidden
from tests.support.servers import AppServer


@dataclass(frozen=True)
class Bank:
    """The bank's backend (its key), and a signed-in analyst's browser on the same app."""

    server: AppServer
    key: str
    staff: requests.Session

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.server.url}{path}", headers={"X-Institution-Key": self.key},
                                timeout=10, **kwargs)

    def new_session(self, reference: str | None = None, **body: Any) -> dict[str, Any]:
        made = self.api("POST", "/api/sessions", json={"reference": reference or new_reference(), **body})
        assert made.status_code == 201, made.text
        return made.json()

    def session(self, session_id: str) -> dict[str, Any]:
        got = self.api("GET", f"/api/sessions/{session_id}")
        assert got.status_code == 200, got.text
        return got.json()


@pytest.fixture(scope="module")
def bank(app_server: AppServer) -> Bank:
    staff = sign_in(app_server, create_staff(app_server, role="admin"))
    return Bank(app_server, demo_institution(app_server).key, staff)


def new_reference() -> str:
    return f"loan-{secrets.token_hex(4)}"


def type_token_on_hosted_page(bank: Bank, session: dict[str, Any], token: str) -> str:
    """The customer opens the hosted page and types a token: the page they read afterwards."""
    return type_token_on(bank, requests.get(session["url"], timeout=10).text, token)


def type_token_on(bank: Bank, page: str, token: str) -> str:
    """A token typed into the form of `page` (perhaps a tab left open since)."""
    done = requests.post(f"{bank.server.url}/verify/token/check",
                         data={"o": hidden(page, "o"), "n": hidden(page, "n"), "token": token}, timeout=10)
    assert done.status_code == 200, done.text[:300]
    return done.text


def at_the_counter(bank: Bank, token: str) -> str:
    """The verdict the branch counter shows staff for `token`."""
    counter = bank.staff.get(f"{bank.server.url}/branch/", timeout=10).text
    form = {"csrf_token": hidden(counter, "csrf_token"), "n": hidden(counter, "n"), "token": token}
    shown = bank.staff.post(f"{bank.server.url}/branch/verify", data=form, timeout=10)
    found = re.search(r'data-verdict="(\w+)"', shown.text)
    assert found, shown.text[:500]
    return found.group(1)


def from_the_cli(bank: Bank, token: str) -> str:
    done = run_flask(bank.server, "passid", "verify", token)
    assert done.returncode == 0, done.stderr
    found = re.search(r"^  verdict: (\w+)", done.stdout, flags=re.M)
    assert found, done.stdout
    return found.group(1)


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize(("token", "verdict", "reason"), [
    ("KE8V-3TXY-Z72L", "approve", "no_warning_signs"),
    ("GH2P-ABCD-56KL", "review", "identity_not_verified"),
    ("TEST-SANC-0005", "decline", "sanctions_match"),
])
def test_the_same_token_gets_the_same_verdict_in_widget_branch_cli_and_api(
    bank: Bank, token: str, verdict: str, reason: str
) -> None:
    session = bank.new_session(permissions=["identity_verified", "fraud_risk", "full_score"])
    type_token_on_hosted_page(bank, session, token)
    read = bank.session(session["id"])
    assert read["verdict"] == verdict and reason in read["verdictReasons"]
    assert read["result"]["verdict"] == verdict and read["result"]["verdictReasons"] == read["verdictReasons"]
    by_id = bank.api("GET", f"/api/results/{read['resultId']}").json()
    assert by_id["verdict"] == verdict and by_id["verdictReasons"] == read["verdictReasons"]
    assert at_the_counter(bank, token) == verdict
    if verdict == "review":  # the CLI's approve and decline lines: tests/console/test_cli.py (a process each)
        assert from_the_cli(bank, token) == verdict
    detail = bank.staff.get(f"{bank.server.url}/console/verifications/{read['resultId']}", timeout=10).text
    assert f'data-verdict="{verdict}"' in detail


def test_an_unverified_identity_goes_to_review_and_the_customer_never_reads_verified(bank: Bank) -> None:
    session = bank.new_session(permissions=["identity_verified"])
    page = type_token_on_hosted_page(bank, session, "GH2P-ABCD-56KL")
    assert 'data-view="success"' in page
    assert ">Verified<" not in page and "Identity not verified" not in page and "passid-claim" not in page
    assert "has what it needs and will tell you the next step" in page
    result_id = bank.session(session["id"])["resultId"]
    queue = bank.staff.get(f"{bank.server.url}/console/review", timeout=10).text
    assert result_id in queue
    history = bank.staff.get(f"{bank.server.url}/console/", params={"verdict": "review", "q": session["reference"]},
                             timeout=10).text
    assert result_id in history


def test_an_approved_customer_reads_verified(bank: Bank) -> None:
    page = type_token_on_hosted_page(bank, bank.new_session(permissions=["identity_verified"]), "KE8V-3TXY-Z72L")
    assert ">Verified<" in page and "passid-claim" in page


def test_a_sanctions_match_ends_the_session_and_a_retry_is_refused(bank: Bank) -> None:
    session = bank.new_session()
    page = requests.get(session["url"], timeout=10).text
    first = type_token_on(bank, page, "TEST-SANC-0005")
    assert 'data-view="declined"' in first and 'action="/verify/reset"' not in first  # no "Try again"
    reopened = requests.get(session["url"], timeout=10).text
    assert 'data-view="declined"' in reopened and 'name="token"' not in reopened
    retry = type_token_on(bank, page, "KE8V-3TXY-Z72L")  # the tab's old form, sent again
    assert 'data-view="declined"' in retry and ">Verified<" not in retry
    read = bank.session(session["id"])
    assert read["status"] == "denied" and read["verdict"] == "decline"
    assert read["result"]["denyReason"] == "HARD_DENY_SANCTIONS_MATCH"
    assert [attempt["denyReason"] for attempt in read["attempts"]] == ["HARD_DENY_SANCTIONS_MATCH"]
    matches = bank.staff.get(f"{bank.server.url}/console/", params={"sanctions": "1", "q": session["reference"]},
                             timeout=10).text
    assert read["resultId"] in matches


def test_every_attempt_is_listed_oldest_first_and_the_first_success_decides(bank: Bank) -> None:
    session = bank.new_session()
    type_token_on_hosted_page(bank, session, "TEST-EXPD-0001")
    type_token_on_hosted_page(bank, session, "NG4M-XQRS-T88W")
    read = bank.session(session["id"])
    assert read["status"] == "completed" and read["verdict"] == "approve"
    assert [(a["status"], a["denyReason"], a["channel"]) for a in read["attempts"]] == [
        ("denied", "TOKEN_EXPIRED", "manual"), ("completed", None, "manual")]
    assert read["attempts"][1]["resultId"] == read["resultId"]
    assert read["attempts"][0]["createdAt"] <= read["attempts"][1]["createdAt"]


def test_a_cancelled_session_takes_no_attempt_and_cannot_complete(bank: Bank) -> None:
    session = bank.new_session()
    open_page = requests.get(session["url"], timeout=10).text
    cancelled = bank.api("POST", f"/api/sessions/{session['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelledAt"]
    page = requests.get(session["url"], timeout=10).text
    assert 'data-view="declined"' in page and 'name="token"' not in page
    late = type_token_on(bank, open_page, "KE8V-3TXY-Z72L")  # a tab opened before the cancel
    assert 'data-view="declined"' in late and ">Verified<" not in late
    read = bank.session(session["id"])
    assert read["status"] == "cancelled" and read["attempts"] == [] and read["result"] is None
    again = bank.api("POST", f"/api/sessions/{session['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "SESSION_CLOSED"


def test_a_completed_session_cannot_be_cancelled(bank: Bank) -> None:
    session = bank.new_session()
    type_token_on_hosted_page(bank, session, "KE8V-3TXY-Z72L")
    refused = bank.api("POST", f"/api/sessions/{session['id']}/cancel")
    assert refused.status_code == 409
    assert bank.session(session["id"])["status"] == "completed"


def test_cancelling_an_unknown_session_is_a_404(bank: Bank) -> None:
    answer = bank.api("POST", "/api/sessions/vs_nothing-here/cancel")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"


def test_the_sessions_of_one_reference_are_found_newest_first(bank: Bank) -> None:
    reference = new_reference()
    older, newer = bank.new_session(reference), bank.new_session(reference)
    bank.new_session()  # another applicant's
    found = bank.api("GET", "/api/sessions", params={"reference": reference})
    assert found.status_code == 200
    assert [s["id"] for s in found.json()["sessions"]] == [newer["id"], older["id"]]
    assert all(s["reference"] == reference for s in found.json()["sessions"])
    nothing = bank.api("GET", "/api/sessions", params={"reference": new_reference()}).json()
    assert nothing["sessions"] == []


@pytest.mark.parametrize("params", [{}, {"reference": ""}, {"reference": "x" * 65}, {"reference": "a\x00b"}])
def test_a_lookup_without_a_usable_reference_is_a_400_naming_it(bank: Bank, params: dict[str, str]) -> None:
    answer = bank.api("GET", "/api/sessions", params=params)
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "reference"


def test_the_lookup_and_cancel_need_the_key(bank: Bank) -> None:
    for method, path in (("GET", "/api/sessions?reference=x"), ("POST", "/api/sessions/vs_x/cancel")):
        answer = requests.request(method, f"{bank.server.url}{path}", timeout=10)
        assert answer.status_code == 401
