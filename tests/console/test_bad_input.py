"""Bad input to the console is a 4xx with a sentence, never a 500, on SQLite and on PostgreSQL.

PostgreSQL refuses a NUL character anywhere in text (in a comparison as much as in a stored value), and
both databases refuse an OFFSET beyond a 64-bit integer: a filter, an id in a path, a review note, a
redaction reason or a page number typed (or forged) that way must not reach a query as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.plumbing.database import db
from app.rules.verifications import FinalStatus, Source, Verification, record
from tests.console.conftest import add_staff, signed_in
from tests.support.html_fields import hidden
from tests.support.in_process import serving_in_process

HUGE = "999999999999999999999"  # past any 64-bit OFFSET


@pytest.fixture
def app(fresh_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    with serving_in_process(fresh_database_url, tmp_path, PASSID_BACKGROUND_JOBS="false") as built:
        built.config["PROPAGATE_EXCEPTIONS"] = False  # a crash is the 500 a browser would get, not a raise here
        yield built


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    return signed_in(app.test_client(), add_staff(app.test_cli_runner(), role="admin"))


@pytest.fixture
def waiting(app: Flask) -> str:
    """A verification waiting for review (PASSID recommended review): the id of its row."""
    with app.app_context():
        done = record(source=Source.MANUAL, status=FinalStatus.COMPLETED, token="GH2P-ABCD-56KL",
                      idempotency_key="bad-input", recommendation="review",
                      claims={"tier": "C", "fraud_risk": "medium", "identity_verified": True})
        row = db.session.get(Verification, done.result_id)
        assert row is not None and row.review_status == "pending"
        return done.result_id


def csrf(client: FlaskClient) -> str:
    return hidden(client.get("/console/review").text, "csrf_token")


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/console/audit?actor=%00", 400, "A filter cannot contain a NUL character."),
    ("/console/audit?subject=a%00b", 400, "cannot contain"),
    ("/console/webhooks?type=%00", 200, "Webhook"),
    ("/console/?q=%00&status=completed", 200, "verification"),
    ("/console/verifications/%00", 404, "No verification has this id."),
    ("/console/verifications/x%00/redact", 404, "No verification has this id."),
    ("/console/verifications/x%00/outcome", 404, "No verification has this id."),
])
def test_a_nul_in_a_filter_or_an_id_is_a_4xx_with_a_sentence(
    admin: FlaskClient, database_kind: str, path: str, status: int, says: str
) -> None:
    answer = admin.get(path)
    assert answer.status_code == status and says in answer.text


def test_a_nul_in_a_posted_id_note_or_reason_is_refused_with_a_sentence(
    app: Flask, admin: FlaskClient, waiting: str, database_kind: str
) -> None:
    token = csrf(admin)
    forged_id = admin.post("/console/review/x%00", data={"csrf_token": token, "decision": "proceed", "note": "n"})
    assert forged_id.status_code == 404 and "No verification has this id." in forged_id.text
    note = admin.post(f"/console/review/{waiting}", data={"csrf_token": token, "decision": "proceed",
                                                           "note": "seen\x00at the branch"})
    assert note.status_code == 400 and "The note cannot contain a NUL character." in note.text
    redact_missing = admin.post("/console/verifications/x%00/redact",
                                data={"csrf_token": token, "reason": "r", "confirm": "y"})
    assert redact_missing.status_code == 404
    reason = admin.post(f"/console/verifications/{waiting}/redact",
                        data={"csrf_token": token, "reason": "request\x0042", "confirm": "y"})
    assert reason.status_code == 422 and "The reason cannot contain a NUL character." in reason.text
    export = admin.post("/console/audit.csv", data={"csrf_token": token, "actor": "\x00"})
    assert export.status_code == 400 and "A filter cannot contain a NUL character." in export.text
    huge_staff_id = admin.post(f"/console/staff/{HUGE}/disable", data={"csrf_token": token})
    assert huge_staff_id.status_code == 404 and "Nothing here has this id." in huge_staff_id.text
    with app.app_context():
        row = db.session.get(Verification, waiting)
        assert row is not None and row.review_status == "pending" and row.redacted_at is None


def test_the_redact_command_refuses_a_nul_in_the_reason_in_one_line(
    app: Flask, waiting: str, database_kind: str
) -> None:
    with app.app_context():
        done = app.test_cli_runner().invoke(args=["passid", "redact", waiting, "--reason", "x\x00y"])
        assert done.exit_code == 2 and "cannot contain" in done.output, (done.output, done.exception)
        missing = app.test_cli_runner().invoke(args=["passid", "redact", "x\x00", "--reason", "request 42"])
        assert missing.exit_code == 1 and "no verification has the id 'x\\x00'" in missing.output, missing.output
        row = db.session.get(Verification, waiting)
        assert row is not None and row.redacted_at is None


@pytest.mark.parametrize("path", ["/console/", "/console/audit", "/console/review", "/console/webhooks"])
def test_a_huge_or_odd_page_number_shows_a_page_not_a_500(
    admin: FlaskClient, waiting: str, database_kind: str, path: str
) -> None:
    for page in (HUGE, "-5", "0", "nonsense"):
        answer = admin.get(path, query_string={"page": page})
        assert answer.status_code == 200, (page, answer.status_code)


def test_a_nul_in_a_branch_result_id_is_not_found(app: Flask, database_kind: str) -> None:
    counter = signed_in(app.test_client(), add_staff(app.test_cli_runner(), role="counter"))
    assert counter.get("/branch/results/x%00").status_code == 404


@pytest.mark.parametrize("dates", [
    {"to": "9999-12-31"}, {"from": "9999-12-31"}, {"from": "0001-01-01", "to": "9999-12-31"},
])
def test_the_last_day_a_date_can_name_filters_and_exports_without_a_500(
    admin: FlaskClient, waiting: str, database_kind: str, dates: dict[str, str]
) -> None:
    """A "to" of 9999-12-31 means "everything up to the end": there is no day after it to stop before, so the
    filter stops at nothing, on the pages and in both exports."""
    everything = dates.get("from", "0001-01-01") == "0001-01-01"
    history = admin.get("/console/", query_string=dates)
    assert history.status_code == 200 and (waiting in history.text) == everything
    audit_page = admin.get("/console/audit", query_string=dates)
    assert audit_page.status_code == 200 and ("data-audit-entry=" in audit_page.text) == everything
    token = csrf(admin)
    history_file = admin.post("/console/history.csv", data={"csrf_token": token, **dates})
    assert history_file.status_code == 200 and (waiting in history_file.text) == everything
    audit_file = admin.post("/console/audit.csv", data={"csrf_token": token, **dates})
    assert audit_file.status_code == 200 and audit_file.text.startswith('"at_utc"')
    assert ("sign_in" in audit_file.text) == everything
