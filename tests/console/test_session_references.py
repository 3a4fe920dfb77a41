"""A session's reference follows its verifications: into the console's history (shown, searchable) and the CLI.

The bank's reference is how its staff think of an applicant ("loan-42"), so they find the
verification by it, typed any way `normalise_query` forgives. The branch counter takes one too (optional),
under the same rule, so a counter's verification is found, exported and read by the API the same way.
"""

from __future__ import annotations

import re

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.plumbing.database import db
from app.plumbing.passid_connection import passid_connection
from app.rules.audit import CLI_ACTOR, Action, AuditEntry
from tests.console.conftest import add_staff, signed_in
from tests.support.html_fields import hidden


@pytest.fixture
def session_made(app: Flask, client: FlaskClient) -> dict[str, str]:
    """A session for reference "Loan-42/B", and one denied attempt in it (so a row exists)."""
    with app.app_context():
        key = passid_connection().api_key
    made = client.post("/api/sessions", json={"reference": "Loan-42/B"}, headers={"X-Institution-Key": key}).get_json()
    page = client.get("/verify/session", query_string={"id": made["id"]}).text
    client.post("/verify/token/check", data={"o": hidden(page, "o"), "n": hidden(page, "n"), "token": "TEST-SANC-0005"})
    return made


@pytest.mark.parametrize("typed", ["Loan-42/B", "loan 42", "LOAN_42b", "42/b"])
def test_the_history_finds_a_session_verification_by_its_reference(
    session_made: dict[str, str], staff_client: FlaskClient, typed: str
) -> None:
    page = staff_client.get("/console/", query_string={"q": typed}).text
    rows = re.findall(r'<tr data-result-id="[^"]+">(.*?)</tr>', page, flags=re.S)
    assert len(rows) == 1
    assert "<span data-reference>Loan-42/B</span>" in rows[0] and session_made["id"] in rows[0]


def test_a_reference_search_matches_nothing_else(session_made: dict[str, str], staff_client: FlaskClient) -> None:
    page = staff_client.get("/console/", query_string={"q": "loan-43"}).text
    assert '<tr data-result-id="' not in page


def passid_cli(app: Flask, runner: FlaskCliRunner, *args: str) -> Result:
    """`flask passid …`: the real `flask` command pushes an app context for every command, as this does."""
    with app.app_context():
        return runner.invoke(args=["passid", *args])


def test_the_cli_shows_a_sessions_reference_status_and_result(
    session_made: dict[str, str], app: Flask, runner: FlaskCliRunner
) -> None:
    shown = passid_cli(app, runner, "session", session_made["id"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"denied  {session_made['id']}")
    assert "reference: Loan-42/B" in shown.output and "deny reason: HARD_DENY_SANCTIONS_MATCH" in shown.output


def test_the_cli_records_that_it_showed_a_deny_reason(
    session_made: dict[str, str], app: Flask, runner: FlaskCliRunner
) -> None:
    """A sanctions deny has no claims, yet its reason is the person's data: showing it is an audited view."""
    shown = passid_cli(app, runner, "session", session_made["id"])
    with app.app_context():
        entries = db.session.execute(
            db.select(AuditEntry).where(AuditEntry.action == Action.CLAIMS_VIEWED)
        ).scalars().all()
        seen = [(entry.actor, entry.detail, entry.subject) for entry in entries]
    result_id = re.search(r"result:\s+(res_\S+)", shown.output)
    assert result_id is not None, shown.output
    assert seen == [(CLI_ACTOR, "flask passid session", result_id.group(1))]


def test_the_cli_names_an_unknown_session_in_one_line(app: Flask, runner: FlaskCliRunner) -> None:
    shown = passid_cli(app, runner, "session", "vs_nothing")
    assert shown.exit_code != 0 and "no session has the id 'vs_nothing'" in shown.output


def test_a_branch_verification_carries_the_reference_the_counter_typed(
    app: Flask, runner: FlaskCliRunner, staff_client: FlaskClient
) -> None:
    counter = signed_in(app.test_client(), add_staff(runner, role="counter"))

    def verify(token: str, reference: str) -> str:
        form = counter.get("/branch/").text
        return counter.post("/branch/verify", data={"csrf_token": hidden(form, "csrf_token"), "n": hidden(form, "n"),
                                                     "token": token, "reference": reference}).text

    refused = counter.post("/branch/verify", data={
        "csrf_token": hidden(counter.get("/branch/").text, "csrf_token"), "token": "KE8V-3TXY-Z72L",
        "n": "n" * 22, "reference": "x" * 65})
    assert refused.status_code == 422 and "at most 64 characters" in refused.text
    assert 'id="branch-reference"' in refused.text and 'value="' + "x" * 65 + '"' in refused.text  # kept, to fix
    shown = verify("KE8V-3TXY-Z72L", "  Branch-7/Loan-9  ")
    assert 'data-verdict="approve"' in shown and "Customer reference Branch-7/Loan-9" in shown
    blank = verify("TEST-SANC-0005", "   ")  # left blank: no reference, as before
    assert 'data-verdict="decline"' in blank and "Customer reference" not in blank

    page = staff_client.get("/console/", query_string={"q": "branch 7 loan 9"}).text
    rows = re.findall(r'<tr data-result-id="([^"]+)">(.*?)</tr>', page, flags=re.S)
    assert len(rows) == 1 and "<span data-reference>Branch-7/Loan-9</span>" in rows[0][1]
    assert "session <code>" not in rows[0][1]  # no session to name
    with app.app_context():
        key = passid_connection().api_key
    result = staff_client.get(f"/api/results/{rows[0][0]}", headers={"X-Institution-Key": key}).get_json()
    assert result["reference"] == "Branch-7/Loan-9" and result["sessionId"] is None and result["source"] == "branch"
