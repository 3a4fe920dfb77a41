"""The audit log: who saw whose claims, who decided what, who changed which account.

What each act records, that no claim, token or password ever lands in it, the admins' page
(filters, pages, CSV export, itself audited), and that it is append-only in the database itself,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from app.passid import normalise_token
from app.plumbing.csv_export import cell, csv_response
from app.plumbing.database import db, utcnow
from app.rules import audit
from app.rules.verifications import FinalStatus, Source, Verification, record
from tests.console.conftest import PASSWORD, add_staff, share_token_for, signed_in
from tests.support.html_fields import hidden
from tests.support.in_process import serving_in_process
from tests.support.widget_actions import WidgetActions

Entry = tuple[str, str | None, str | None]  # (actor, subject, detail)


def entries(app: Flask, action: audit.Action | None = None) -> list[audit.AuditEntry]:
    """Every entry (of `action`), oldest first, detached from the session."""
    with app.app_context():
        select = db.select(audit.AuditEntry).order_by(audit.AuditEntry.id)
        if action is not None:
            select = select.where(audit.AuditEntry.action == action)
        found = list(db.session.execute(select).scalars())
        db.session.expunge_all()
        return found


def export_audit(admin: FlaskClient, **filters: str) -> TestResponse:
    """The audit page's export form, as the admin's browser posts it: the filters and the page's CSRF token."""
    token = hidden(admin.get("/console/audit").text, "csrf_token")
    return admin.post("/console/audit.csv", data={"csrf_token": token, **filters})


def sign_in_attempt(app: Flask, username: str, password: str) -> int:
    browser = app.test_client()
    form = browser.get("/staff/sign-in").text
    return browser.post("/staff/sign-in", data={"csrf_token": hidden(form, "csrf_token"), "username": username,
                                                "password": password}).status_code


@pytest.fixture
def fresh_token(app: Flask, app_demo: tuple[str, str]) -> Callable[[], str]:
    return lambda: share_token_for(app.config["PASSID_BASE_URL"], app_demo[1])


@pytest.fixture
def analyst(app: Flask, runner: FlaskCliRunner) -> tuple[FlaskClient, str]:
    name = add_staff(runner, role="analyst")
    return signed_in(app.test_client(), name), name


@pytest.fixture
def admin(app: Flask, runner: FlaskCliRunner) -> FlaskClient:
    return signed_in(app.test_client(), add_staff(runner, role="admin"))


def result_id_of(app: Flask, token: str) -> str:
    """Our record of `token` (stored as PASSID reads it back: without the `PASSID-` prefix)."""
    with app.app_context():
        wanted = normalise_token(token)
        rows = [row for row in db.session.execute(db.select(Verification)).scalars() if row.token == wanted]
        assert len(rows) == 1
        return rows[0].id


# --- what is recorded ---------------------------------------------------------------------------------


def test_sign_in_sign_out_and_failures_are_recorded_without_the_password(app: Flask, runner: FlaskCliRunner) -> None:
    name = add_staff(runner, role="analyst")
    assert sign_in_attempt(app, name, "not the password at all") == 401
    assert sign_in_attempt(app, "  Nobody-Here ", "also not a password") == 401
    browser = signed_in(app.test_client(), name)
    page = browser.get("/console/").text
    browser.post("/staff/sign-out", data={"csrf_token": hidden(page, "csrf_token")})

    failed = [(e.actor, e.actor_role, e.subject, e.detail) for e in entries(app, audit.Action.SIGN_IN_FAILED)]
    assert failed == [
        (audit.UNKNOWN_ACTOR, None, name, f'wrong password; name tried: "{name}"'),
        (audit.UNKNOWN_ACTOR, None, None, 'no such account; name tried: "nobody-here"'),
    ]
    [signed] = entries(app, audit.Action.SIGN_IN)
    assert (signed.actor, signed.actor_role, signed.subject, signed.address) == (name, "analyst", name, "127.0.0.1")
    [out] = entries(app, audit.Action.SIGN_OUT)
    assert (out.actor, out.subject) == (name, name)
    everything = " ".join(str(vars(entry)) for entry in entries(app))
    assert "not the password at all" not in everything and "also not a password" not in everything
    assert PASSWORD not in everything


def test_a_disabled_account_s_attempt_is_recorded_as_such(app: Flask, runner: FlaskCliRunner) -> None:
    name = add_staff(runner, role="counter")
    with app.app_context():
        runner.invoke(args=["staff", "disable", name])
    assert sign_in_attempt(app, name, PASSWORD) == 401
    [failed] = entries(app, audit.Action.SIGN_IN_FAILED)
    assert (failed.actor, failed.subject, failed.detail) == (
        audit.UNKNOWN_ACTOR, name, f'account disabled; name tried: "{name}"')


@pytest.mark.parametrize("tried", ["system", "cli", "(unknown user)", "  System ", "=cmd|' /C calc'!A0"])
def test_a_failed_sign_in_never_puts_the_name_tried_in_the_actor_column(
    app: Flask, runner: FlaskCliRunner, tried: str
) -> None:
    """Whatever is typed, the actor of a failed sign-in is the fixed marker: the column holds only real
    accounts, the CLI and the system; the name tried is data in the detail."""
    real = add_staff(runner, role="admin")
    assert sign_in_attempt(app, tried, "guess guess guess") == 401
    [failed] = entries(app, audit.Action.SIGN_IN_FAILED)
    assert (failed.actor, failed.actor_role, failed.subject) == (audit.UNKNOWN_ACTOR, None, None)
    assert failed.detail == f'no such account; name tried: "{tried.strip().lower()}"'
    actors = {entry.actor for entry in entries(app)}
    assert actors <= {real, audit.CLI_ACTOR, audit.UNKNOWN_ACTOR}, actors


@pytest.mark.parametrize("name", ["system", "cli", "(unknown user)", " CLI "])
def test_no_staff_account_can_take_a_name_the_audit_log_keeps_for_itself(runner: FlaskCliRunner, name: str) -> None:
    with runner.app.app_context():
        done = runner.invoke(args=["staff", "create", name, "--role", "admin", "--password", PASSWORD])
    assert done.exit_code != 0 and "kept for the audit log" in done.output, done.output


def test_every_branch_result_is_a_recorded_view(
    app: Flask, runner: FlaskCliRunner, fresh_token: Callable[[], str]
) -> None:
    """A denied token shows no claims, but it shows the token and why it was denied (a sanctions match is
    about the person): every result the counter shows is a view of a person's data."""
    name = add_staff(runner, role="counter")
    tablet = signed_in(app.test_client(), name)

    def verify(token: str) -> str:
        counter = tablet.get("/branch/").text
        return tablet.post("/branch/verify", data={"csrf_token": hidden(counter, "csrf_token"),
                                                   "n": hidden(counter, "n"), "token": token}).text

    token = fresh_token()
    assert 'data-verdict="approve"' in verify(token)
    assert "Token not found" in verify("NOPE-2345-6789")
    assert "watch-list" in verify("TEST-SANC-0005")
    shown = [result_id_of(app, typed) for typed in (token, "NOPE-2345-6789", "TEST-SANC-0005")]
    viewed = entries(app, audit.Action.CLAIMS_VIEWED)
    assert [(e.actor, e.actor_role, e.subject, e.detail) for e in viewed] == [
        (name, "counter", result_id, "branch counter") for result_id in shown]
    assert not any(typed in str(vars(e)) for e in viewed for typed in (token, "NOPE-2345", "TEST-SANC", "SANCTIONS"))

    assert tablet.get(f"/branch/results/{shown[0]}").status_code == 200  # the QR flow's staff view
    assert [e.detail for e in entries(app, audit.Action.CLAIMS_VIEWED)][3:] == ["branch counter, QR flow"]


NOTES = "note-KOALA-5521"  # an outcome report's notes: typed by the bank's staff about the person


def test_the_history_lists_only_what_is_clear_and_each_detail_page_is_a_recorded_view(
    app: Flask, analyst: tuple[FlaskClient, str], widget: WidgetActions, fresh_token: Callable[[], str]
) -> None:
    """A token, a code, a deny or decline reason, a recommendation, a claim, an outcome's amount or notes:
    each is about a person, so each is shown on the detail page only, where every view is recorded."""
    browser, name = analyst
    token = normalise_token(fresh_token())  # as stored and shown: without the `PASSID-` prefix
    assert 'data-view="success"' in widget.submit_token(token).text
    approved = result_id_of(app, token)
    url = f"/console/verifications/{approved}/outcome"
    sent = browser.post(url, data={"csrf_token": hidden(browser.get(url).text, "csrf_token"), "outcome": "other",
                                   "product_type": "personal_loan", "amount": "4321.77", "notes": NOTES})
    assert sent.status_code == 303
    with app.app_context():
        denied = record(source=Source.MANUAL, status=FinalStatus.DENIED, token="TEST-SANC-0005",
                        idempotency_key="sanctions", deny_reason="HARD_DENY_SANCTIONS_MATCH").result_id
        declined = record(source=Source.QR, status=FinalStatus.DECLINED, code="AB3X7YQM", request_id="req_declined",
                          decline_reason="USER_DECLINED").result_id
        advised = record(source=Source.MANUAL, status=FinalStatus.COMPLETED, token="GH2P-ABCD-56KL",
                         idempotency_key="advised", claims={"tier": "C", "fraud_risk": "medium"},
                         recommendation="decline", corridor="GH-US").result_id

    listed = browser.get("/console/").text
    rows = dict(re.findall(r'<tr data-result-id="([^"]+)">(.*?)</tr>', listed, flags=re.S))
    assert set(rows) == {approved, denied, declined, advised}
    for shown in (token, "TEST-SANC", "HARD_DENY", "SANCTIONS", "GH2P", "AB3X", "USER_DECLINED", "GH-US", "4321",
                  NOTES, "812", "medium"):
        assert shown not in listed, shown
    assert "decline" not in rows[advised] and "<td>C</td>" in rows[advised]
    assert "denied" in rows[denied] and "<td>A</td>" in rows[approved] and "Other" in rows[approved]
    for result_id, row in rows.items():
        assert f'href="/console/verifications/{result_id}"' in row
    found = browser.get("/console/", query_string={"q": "TEST-SANC-0005"}).text
    assert re.findall(r'<tr data-result-id="([^"]+)">', found) == [denied]  # the search still finds by token
    assert entries(app, audit.Action.CLAIMS_VIEWED) == []  # listing is not looking

    for result_id, shown_there in ((denied, ["TEST-SANC-0005", "HARD_DENY_SANCTIONS_MATCH"]),
                                   (declined, ["AB3X7YQM", "USER_DECLINED"]),
                                   (advised, ["GH2P-ABCD-56KL", "fraud risk medium",
                                              'PASSID recommends: <code translate="no">decline</code>']),
                                   (approved, [token, "812 · tier A · identity verified · fraud risk low",
                                               "Clear of sanctions lists", "$4,321.77", NOTES])):
        detail = browser.get(f"/console/verifications/{result_id}").text
        assert all(shown in detail for shown in shown_there), (result_id, detail)
    browser.get(f"/console/verifications/{approved}")
    viewed = entries(app, audit.Action.CLAIMS_VIEWED)
    assert [(e.actor, e.actor_role, e.subject, e.detail) for e in viewed] == [
        (name, "analyst", result_id, "console detail") for result_id in (denied, declined, advised, approved, approved)]

    missing = browser.get("/console/verifications/res_nobody")
    assert missing.status_code == 404 and "No verification has this id." in missing.text
    assert len(entries(app, audit.Action.CLAIMS_VIEWED)) == 5


def test_the_outcome_page_shows_no_token_no_claims_beyond_the_tier_and_no_amount_or_notes(
    app: Flask, analyst: tuple[FlaskClient, str], widget: WidgetActions, fresh_token: Callable[[], str]
) -> None:
    """The outcome page is not a recorded view, so it shows only what is clear in the database; the amount
    and notes of a report are on the verification's page, where each view is recorded."""
    browser, name = analyst
    token = normalise_token(fresh_token())
    widget.submit_token(token)
    result_id = result_id_of(app, token)
    url = f"/console/verifications/{result_id}/outcome"
    page = browser.get(url).text
    # The random ids on the page (the result's, the form's CSRF token) may hold the digits 812 by chance.
    shown = page.replace(result_id, "").replace(hidden(page, "csrf_token"), "")
    assert "Tier</dt><dd>A" in page and "812" not in shown and "identity verified" not in page.lower()
    assert token not in page and result_id in page
    sent = browser.post(url, data={"csrf_token": hidden(page, "csrf_token"), "outcome": "other",
                                   "product_type": "personal_loan", "amount": "4321.77", "notes": NOTES})
    assert sent.status_code == 303
    [reported] = entries(app, audit.Action.OUTCOME_REPORTED)
    assert (reported.actor, reported.subject, reported.detail) == (name, result_id, "other")
    on_record = browser.get(url).text
    assert "Outcome on record" in on_record and "Other" in on_record and "personal_loan" in on_record
    assert token not in on_record and "4321" not in on_record and NOTES not in on_record
    assert f'href="/console/verifications/{result_id}"' in on_record
    assert entries(app, audit.Action.CLAIMS_VIEWED) == []


def test_no_console_page_stays_in_the_browser_s_cache(
    app: Flask, analyst: tuple[FlaskClient, str], widget: WidgetActions, fresh_token: Callable[[], str]
) -> None:
    """A page with a person's data must not outlive its audited view on the analyst's disk (or come back
    with the Back button after signing out), as the branch counter's results never do."""
    browser, _ = analyst
    token = fresh_token()
    widget.submit_token(token)
    result_id = result_id_of(app, token)
    for path in ("/console/", f"/console/?q={token}", f"/console/verifications/{result_id}",
                 f"/console/verifications/{result_id}/outcome", "/console/review", "/console/webhooks"):
        answer = browser.get(path)
        assert answer.status_code == 200 and answer.headers.get("Cache-Control") == "no-store", path


def test_the_cli_s_outcome_verify_and_test_webhook_are_recorded_as_the_cli(
    app: Flask, runner: FlaskCliRunner, fresh_token: Callable[[], str]
) -> None:
    token = fresh_token()
    with app.app_context():
        verified = runner.invoke(args=["passid", "verify", token])
        assert verified.exit_code == 0, verified.output
        reported = runner.invoke(args=["passid", "outcome", token, "repaid", "--product", "loan", "--amount", "5"])
        assert reported.exit_code == 0, reported.output
        sent = runner.invoke(args=["passid", "webhook-test", "--wait", "0"])
        assert sent.exit_code == 0, sent.output
    result_id = result_id_of(app, token)
    [viewed] = entries(app, audit.Action.CLAIMS_VIEWED)
    assert (viewed.actor, viewed.subject, viewed.detail) == ("cli", result_id, "flask passid verify")
    [outcome] = entries(app, audit.Action.OUTCOME_REPORTED)
    assert (outcome.actor, outcome.subject, outcome.detail) == ("cli", result_id, "repaid")
    [webhook] = entries(app, audit.Action.TEST_WEBHOOK_SENT)
    assert webhook.actor == "cli" and webhook.subject and webhook.subject in sent.output


def test_a_test_webhook_from_the_checklist_is_recorded(app: Flask, admin: FlaskClient) -> None:
    page = admin.get("/console/go-live").text
    sent = admin.post("/console/go-live/test-webhook", data={"csrf_token": hidden(page, "csrf_token")})
    assert sent.status_code == 303
    [entry] = entries(app, audit.Action.TEST_WEBHOOK_SENT)
    assert entry.actor_role == "admin" and entry.subject and entry.subject.startswith("evt_")


# --- the admins' page -----------------------------------------------------------------------------------


def test_the_page_filters_by_action_actor_subject_and_day(app: Flask, admin: FlaskClient) -> None:
    for _ in range(2):
        sign_in_attempt(app, "mallory", "guess guess guess")
    sign_in_attempt(app, "trudy", "guess guess guess")
    shown = admin.get("/console/audit", query_string={"action": "sign_in_failed", "actor": "(Unknown user)"}).text
    assert shown.count("data-audit-entry=") == 3 and "3 entries" in shown
    assert shown.count('name tried: &#34;mallory&#34;') == 2 and shown.count('name tried: &#34;trudy&#34;') == 1
    by_subject = admin.get("/console/audit", query_string={"subject": "no-such-subject"}).text
    assert "data-audit-entry=" not in by_subject and "No entries match these filters." in by_subject
    today = utcnow().date()
    failed = {"action": "sign_in_failed"}
    assert admin.get("/console/audit", query_string={"from": today.isoformat(), **failed}).text.count(
        "data-audit-entry=") == 3
    yesterday = (today - timedelta(days=1)).isoformat()
    assert admin.get("/console/audit", query_string={"to": yesterday, **failed}).text.count(
        "data-audit-entry=") == 0


@pytest.mark.parametrize(("args", "problem"), [
    ({"from": "26/11/2026"}, "The from date is a day written as YYYY-MM-DD"),
    ({"to": "yesterday"}, "The to date is a day written as YYYY-MM-DD"),
    ({"from": "2026-11-27", "to": "2026-11-26"}, "The from date is after the to date."),
    ({"action": "everything"}, "Choose an action from the list."),
])
def test_a_filter_that_means_nothing_is_a_400_not_everything(
    admin: FlaskClient, args: dict[str, str], problem: str
) -> None:
    for answer in (admin.get("/console/audit", query_string=args), export_audit(admin, **args)):
        assert answer.status_code == 400 and problem in answer.text
        assert "data-audit-entry=" not in answer.text


def test_the_page_is_newest_first_25_at_a_time_keeping_the_filters(app: Flask, admin: FlaskClient) -> None:
    for _ in range(30):
        sign_in_attempt(app, "pager", "guess guess guess")
    first = admin.get("/console/audit", query_string={"action": "sign_in_failed"}).text
    ids = [int(part.split('"', 1)[0]) for part in first.split('data-audit-entry="')[1:]]
    assert len(ids) == 25 and ids == sorted(ids, reverse=True) and "Page 1 of 2" in first
    assert 'href="/console/audit?page=2&amp;action=sign_in_failed" rel="next"' in first
    second = admin.get("/console/audit", query_string={"action": "sign_in_failed", "page": "2"}).text
    assert second.count("data-audit-entry=") == 5


def test_the_csv_export_holds_the_filtered_entries_defused_and_is_itself_recorded(
    app: Flask, admin: FlaskClient
) -> None:
    sign_in_attempt(app, "=HYPERLINK(\"http://evil.example\",\"x\")", "guess guess guess")
    sign_in_attempt(app, "@SUM(1+1)", "guess guess guess")
    sign_in_attempt(app, "someone-else", "guess guess guess")
    answer = export_audit(admin, action="sign_in_failed")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="audit-log-')
    assert answer.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["at_utc", "actor", "actor_role", "address", "action", "subject", "detail"]
    details = [row[6] for row in rows[1:]]
    assert details == [  # newest first
        'no such account; name tried: "someone-else"',
        'no such account; name tried: "@sum(1+1)"',
        'no such account; name tried: "=hyperlink(\\"http://evil.example\\",\\"x\\")"',
    ]
    assert {row[1] for row in rows[1:]} == {audit.UNKNOWN_ACTOR}
    # Every cell quoted, the header's too: a spreadsheet splitting on ";" or "," cannot cut one into a formula.
    first_line = answer.text.split("\r\n", 1)[0]
    assert first_line == '"at_utc","actor","actor_role","address","action","subject","detail"'
    assert all(line.startswith('"') and line.endswith('"') for line in answer.text.split("\r\n")[1:] if line)
    [exported] = entries(app, audit.Action.AUDIT_EXPORTED)
    assert exported.actor_role == "admin" and exported.detail == "3 entries; action=sign_in_failed"


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1"])
def test_a_csv_cell_that_a_spreadsheet_would_run_gets_an_apostrophe(value: str) -> None:
    assert cell(value) == "'" + value


def test_ordinary_csv_cells_are_left_alone(app: Flask) -> None:
    assert [cell(None), cell(42), cell("res_1-2"), cell("a=b")] == ["", "42", "res_1-2", "a=b"]
    with app.test_request_context():
        response = csv_response("x.csv", ["a", "b"], [["=1", None], [utcnow().replace(microsecond=0), "-"]])
    lines = response.get_data(as_text=True).split("\r\n")
    assert lines[0] == '"a","b"' and lines[1] == '"\'=1",""' and lines[2].endswith(',"\'-"')


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1", "a;=1+1", 'x",=1+1'])
def test_every_csv_cell_is_quoted_so_no_separator_can_start_a_formula(app: Flask, value: str) -> None:
    """A spreadsheet that splits on ";" (or on "," inside an unquoted cell) would read `=1+1` as a cell of
    its own; every cell in quotes, formula starts defused, reads back exactly as written."""
    with app.test_request_context():
        text = csv_response("x.csv", ["value", "n"], [[value, 7]]).get_data(as_text=True)
    header, line, _end = text.split("\r\n")
    assert header == '"value","n"'
    assert line.startswith('"') and line.endswith('","7"')
    [row] = list(csv.reader(io.StringIO(line)))
    assert row == [cell(value), "7"]
    for separator in (";", ","):  # as a spreadsheet set to either separator reads the line
        for part in next(csv.reader(io.StringIO(line), delimiter=separator)):
            assert not part.startswith(("=", "+", "-", "@", "\t", "\r")), (separator, part)


def test_the_audit_export_is_a_post_with_the_csrf_token(app: Flask, admin: FlaskClient) -> None:
    """A link (GET) or a form posted from another site would let a page elsewhere make an admin's browser
    download the log, and write into it; only the console's own form, with its token, exports."""
    sign_in_attempt(app, "mallory", "guess guess guess")
    by_link = admin.get("/console/audit.csv", query_string={"action": "sign_in_failed"})
    assert by_link.status_code == 405 and "text/csv" not in by_link.headers["Content-Type"]
    cross_site = admin.post("/console/audit.csv", data={"action": "sign_in_failed"})
    assert cross_site.status_code == 400 and "text/csv" not in cross_site.headers["Content-Type"]
    forged = admin.post("/console/audit.csv", data={"action": "sign_in_failed", "csrf_token": "forged"})
    assert forged.status_code == 400
    assert entries(app, audit.Action.AUDIT_EXPORTED) == []
    page = admin.get("/console/audit", query_string={"action": "sign_in_failed"}).text
    form = page.split('action="/console/audit.csv"', 1)[1].split("</form>", 1)[0]
    assert 'name="csrf_token"' in form and 'name="action" value="sign_in_failed"' in form
    assert 'href="/console/audit.csv' not in page
    exported = export_audit(admin, action="sign_in_failed")
    assert exported.status_code == 200 and exported.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert len(entries(app, audit.Action.AUDIT_EXPORTED)) == 1


# --- append-only ------------------------------------------------------------------------------------------


@pytest.fixture
def app_on(database_kind: str, fresh_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on a database of this test's own, of each kind (the triggers differ between them)."""
    with serving_in_process(fresh_database_url, tmp_path) as built:
        yield built


def test_the_database_refuses_to_change_or_remove_an_entry(app_on: Flask) -> None:
    with app_on.app_context():
        entry = audit.record(audit.Action.SIGN_IN_FAILED, actor="mallory", detail="wrong password")
        attempts: list[Callable[[], object]] = [
            lambda: db.session.execute(sqlalchemy.update(audit.AuditEntry).values(actor="someone else")),
            lambda: db.session.execute(sqlalchemy.delete(audit.AuditEntry)),
            lambda: db.session.execute(sqlalchemy.text("DELETE FROM audit_entry WHERE id = :id"), {"id": entry.id}),
        ]
        # An insert that would replace or rewrite the entry (SQLite's REPLACE deletes without the DELETE trigger).
        replacement = {"id": entry.id, "at": utcnow(), "actor": "someone else", "action": "sign_in"}
        attempts.append(lambda: db.session.execute(sqlalchemy.text(
            "INSERT INTO audit_entry (id, at, actor, action) VALUES (:id, :at, :actor, :action) "
            "ON CONFLICT (id) DO UPDATE SET actor = excluded.actor, action = excluded.action"), replacement))
        if db.engine.dialect.name == "postgresql":
            attempts.append(lambda: db.session.execute(sqlalchemy.text("TRUNCATE audit_entry")))
        else:
            for verb in ("INSERT OR REPLACE", "REPLACE"):
                attempts.append(lambda verb=verb: db.session.execute(sqlalchemy.text(
                    f"{verb} INTO audit_entry (id, at, actor, action) VALUES (:id, :at, :actor, :action)"),
                    replacement))
        for attempt in attempts:
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
                attempt()
                db.session.flush()
            db.session.rollback()
        entry = db.session.get(audit.AuditEntry, entry.id)
        assert entry is not None
        entry.detail = "nothing happened"
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
            db.session.commit()
        db.session.rollback()
        db.session.delete(entry)
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
            db.session.commit()
        db.session.rollback()
        kept = db.session.get(audit.AuditEntry, entry.id)
        assert kept is not None and (kept.actor, kept.detail) == ("mallory", "wrong password")


def test_a_name_with_nul_or_line_breaks_is_recorded_safely(app_on: Flask) -> None:
    """PostgreSQL refuses NUL in text: a failed sign-in typed with one must still be recorded, not a 500."""
    assert sign_in_attempt(app_on, "no\x00body\nforged line", "guess guess guess") == 401
    [failed] = entries(app_on, audit.Action.SIGN_IN_FAILED)
    assert failed.actor == audit.UNKNOWN_ACTOR
    assert failed.detail == 'no such account; name tried: "no\\u0000body\\nforged line"'


def test_the_log_only_grows_through_a_day_s_work(
    app: Flask, runner: FlaskCliRunner, widget: WidgetActions, fresh_token: Callable[[], str]
) -> None:
    """Every staff act adds entries and none removes or changes an earlier one."""
    seen: list[tuple[int, str, str | None]] = []

    def unchanged_and_grown() -> None:
        now = [(e.id, e.action, e.subject) for e in entries(app)]
        assert now[: len(seen)] == seen and len(now) > len(seen)
        seen[:] = now

    admin_name = add_staff(runner, role="admin")
    unchanged_and_grown()
    admin = signed_in(app.test_client(), admin_name)
    unchanged_and_grown()
    token = fresh_token()
    widget.submit_token(token)
    admin.get(f"/console/verifications/{result_id_of(app, token)}")
    unchanged_and_grown()
    page = admin.get("/console/staff").text
    admin.post("/console/staff", data={"csrf_token": hidden(page, "csrf_token"), "username": "late-shift",
                                       "role": "counter", "password": PASSWORD})
    unchanged_and_grown()
    export_audit(admin)
    unchanged_and_grown()
    admin.post("/staff/sign-out", data={"csrf_token": hidden(page, "csrf_token")})
    unchanged_and_grown()
