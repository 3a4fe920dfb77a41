"""Retention and redaction: `flask passid redact`, `flask passid purge`, the daily purge, and what is left.

"Erased" is checked four ways: the backend APIs answer only `{"redacted": true}`, no table holds the
person's values (read through the app's models, decrypted), the widget shows nothing of them, and the
raw database files hold neither the values in clear nor any token the app's key decrypts to them.
Each erasure and each look at the files runs on SQLite and PostgreSQL (the raw files of PostgreSQL are read
by the server itself); what the app refuses to take in afterwards (a webhook retry, an outcome), on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import Result
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, event, text

from app.passid import Outcome, OutcomeReceipt, PassidClient
from app.plumbing.background import wake_job
from app.plumbing.database import db, utcnow
from app.plumbing.encryption import keyring
from app.rules import audit, retention, tombstones, verifications
from app.rules import sessions as session_records
from app.rules.outcomes import OutcomeReport
from app.rules.sessions import SessionRequest
from app.rules.verifications import Verification
from app.rules.webhook_receipts import WebhookReceipt
from tests.conftest import provisioned_database
from tests.console.conftest import add_staff, signed_in
from tests.support.erasure import (
    Person,
    an_hour_ago,
    api,
    claims,
    deliver,
    erasing_app,
    handle_all,
    is_sqlite,
    open_session,
    remnants,
    session_person,
    signed_event,
    skip_unless_superuser_files,
    table_remnants,
    token_person,
)
from tests.support.html_fields import hidden
from tests.support.in_process import serving_in_process
from tests.support.postgres import refused_before_storage
from tests.support.waiting import wait_until
from tests.support.widget_actions import WidgetActions

REASON = "erasure request ER-2026-114 (GDPR art. 17)"


@pytest.fixture
def database(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    with provisioned_database(database_kind, tmp_path, request) as url:
        yield url


@pytest.fixture
def app(database: str, tmp_path: Path) -> Iterator[Flask]:
    # No background pass delivers the sandbox's webhooks here, so a QR approval reaches the widget through
    # its own check of PASSID: every poll checks, instead of the first one 7 s (the default) after the last.
    with erasing_app(database, tmp_path, PASSID_RETENTION_DAYS="1", PASSID_POLL_CHECK_SECONDS="0") as app:
        yield app


def people(app: Flask) -> tuple[Person, Person, Person]:
    """Two people to erase (one by token, one in a session) and a bystander who must keep everything."""
    first = token_person(app, "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913")
    second = session_person(app, "req_erasure_numbat_01", "HV3N-T6QB-J2LZ", "KX4T-9WQZ", "band-NUMBAT-5582",
                            "DQ8R-M3XW-P5KC")
    bystander = token_person(app, "MB2Z-C7RT-Y4NH", "band-KOALA-1234", "note-EMU-5678")
    return first, second, bystander


def flask_passid(app: Flask, *args: str) -> Result:
    """`flask passid ARGS…` as an operator runs it (the `passid` group is plain click: it pushes no context)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=["passid", *args])


def redact(app: Flask, result_id: str, reason: str = REASON) -> tuple[int, str]:
    done = flask_passid(app, "redact", result_id, "--reason", reason)
    return done.exit_code, done.output


def audit_entries(app: Flask, action: audit.Action) -> list[audit.AuditEntry]:
    with app.app_context():
        entries = list(db.session.execute(db.select(audit.AuditEntry).where(audit.AuditEntry.action == action)
                                          .order_by(audit.AuditEntry.id)).scalars())
        db.session.expunge_all()
        return entries


def row_counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()
                     for model in (WebhookReceipt, Verification, OutcomeReport))


def assert_erased(app: Flask, url: str, person: Person) -> None:
    for result_id in person.result_ids:
        answer = api(app, f"/api/results/{result_id}")
        assert answer.status_code == 200
        assert set(answer.json) == {"id", "redacted", "redactedAt"} and answer.json["redacted"] is True
        assert answer.json["id"] == result_id
    assert table_remnants(url, app, person.secrets) == set()
    # SQLite: not a byte left, in clear or encrypted. PostgreSQL: nothing in clear; the old row versions keep
    # their ciphertext until the space is reused (see the key retirement test below).
    assert remnants(app, url, person.secrets, decrypting=is_sqlite(url)) == set()


def test_a_redaction_erases_the_person_everywhere_and_leaves_nothing_in_the_files(app: Flask, database: str) -> None:
    skip_unless_superuser_files(database)
    first, second, bystander = people(app)
    # The scan reads what is there: the bystander's values, live, are found (inside their encryption).
    assert remnants(app, database, bystander.secrets) == set(bystander.secrets)

    status, output = redact(app, first.result_ids[0])
    assert status == 0, output
    assert f"redacted  {first.result_ids[0]} and 1 more of the same person: {first.result_ids[1]}" in output
    assert "2 verifications, 2 webhook bodies, 1 outcome report, 0 session links, 0 review notes" in output
    assert_erased(app, database, first)

    with app.app_context():
        rows = [db.session.get(Verification, result_id) for result_id in first.result_ids]
        assert all(row is not None and row.redaction_reason == REASON and row.status == "completed"
                   and row.tier == "B" and row.reported_outcome == "repaid" for row in rows)
        [report] = [report for report in db.session.execute(db.select(OutcomeReport)).scalars()
                    if report.token is None]
        assert report.outcome == "repaid" and report.amount is None and report.notes is None
        receipts = {receipt.event_id: receipt for receipt in db.session.execute(db.select(WebhookReceipt)).scalars()}
        for event_id, _ in first.events:
            assert receipts[event_id].body is None and receipts[event_id].body_erased_at is not None
    entries = audit_entries(app, audit.Action.REDACTED)
    assert [(entry.subject, entry.actor) for entry in entries] == [(result_id, audit.CLI_ACTOR)
                                                                   for result_id in first.result_ids]
    assert entries[0].detail == REASON and REASON in (entries[1].detail or "")

    # The same signed events delivered again: still duplicates, and nothing of the person comes back.
    stored = row_counts(app)
    for event_id, body in first.events:
        again = deliver(app.test_client(), body, event_id)
        assert again.status_code == 200 and again.json == {"received": True, "duplicate": True}
    handle_all(app)
    assert row_counts(app) == stored
    assert_erased(app, database, first)

    # A session: every attempt in it is the same applicant's; the session answers "redacted" too.
    status, output = redact(app, second.result_ids[0])
    assert status == 0, output
    assert "2 verifications, 1 webhook body, 0 outcome reports, 1 session link, 0 review notes" in output
    assert_erased(app, database, second)
    answer = api(app, f"/api/sessions/{second.session_id}")
    assert set(answer.json) == {"id", "redacted", "redactedAt"} and answer.json["id"] == second.session_id
    with app.app_context():
        assert db.session.execute(db.select(SessionRequest)).first() is None

    # Nobody else was touched.
    kept = api(app, f"/api/results/{bystander.result_ids[0]}").json
    assert kept["claims"]["income_band"] == "band-KOALA-1234" and kept["token"] == "MB2Z-C7RT-Y4NH"
    assert table_remnants(database, app, bystander.secrets) == set(bystander.secrets)
    assert remnants(app, database, bystander.secrets) == set(bystander.secrets)


@refused_before_storage
def test_redact_refuses_what_it_cannot_do_in_one_sentence(app: Flask) -> None:
    first = token_person(app, "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913")
    status, output = redact(app, "res_nobody")
    assert status == 1 and "no verification has the id 'res_nobody'" in output and "Traceback" not in output
    for reason in ("", "   ", "x" * 501):
        status, output = redact(app, first.result_ids[0], reason)
        assert status == 2 and "the reason must be 1–500 characters" in output
    missing = flask_passid(app, "redact", first.result_ids[0])
    assert missing.exit_code == 2 and "--reason" in missing.output
    assert redact(app, first.result_ids[0])[0] == 0
    status, output = redact(app, first.result_ids[1], "again")
    assert status == 0 and f"{first.result_ids[1]} was already redacted on" in output and REASON in output
    assert len(audit_entries(app, audit.Action.REDACTED)) == 2


def backdate(url: str, days: int) -> None:
    """Everything stored so far, `days` older (as if the test had run that long ago)."""
    engine = create_engine(url)
    moved = {"verification": "created_at", "webhook_receipt": "received_at", "outcome_report": "reported_at",
             "session_request": "created_at"}
    with engine.begin() as connection:
        for table, column in moved.items():
            rows = connection.execute(text(f"SELECT {_key(table)}, {column} FROM {table}")).all()
            for key, moment in rows:
                connection.execute(text(f"UPDATE {table} SET {column} = :moment WHERE {_key(table)} = :key"),
                                   {"moment": _moment(moment) - timedelta(days=days), "key": key})
    engine.dispose()


def _key(table: str) -> str:
    return "request_id" if table == "session_request" else "id"


def _moment(value: object) -> object:
    from datetime import datetime

    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_retention_erases_what_is_older_than_the_period_and_nothing_else(app: Flask, database: str) -> None:
    skip_unless_superuser_files(database)
    first = token_person(app, "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913")
    second = session_person(app, "req_erasure_numbat_01", "HV3N-T6QB-J2LZ", "KX4T-9WQZ", "band-NUMBAT-5582",
                            "DQ8R-M3XW-P5KC")
    backdate(database, days=2)  # PASSID_RETENTION_DAYS is 1
    recent = token_person(app, "MB2Z-C7RT-Y4NH", "band-KOALA-1234", "note-EMU-5678")

    dry = flask_passid(app, "purge", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run, nothing erased" in dry.output
    assert "4 verifications, 3 webhook bodies, 1 outcome report, 1 session link, 0 review notes" in dry.output
    assert table_remnants(database, app, first.secrets + second.secrets) == set(first.secrets + second.secrets)
    assert audit_entries(app, audit.Action.RETENTION_PURGED) == []

    done = flask_passid(app, "purge")
    assert done.exit_code == 0, done.output
    assert "erased (older than 1 days" in done.output
    assert "4 verifications, 3 webhook bodies, 1 outcome report, 1 session link, 0 review notes" in done.output
    assert_erased(app, database, first)
    assert_erased(app, database, second)
    with app.app_context():
        rows = [db.session.get(Verification, result_id) for result_id in first.result_ids + second.result_ids]
        assert all(row is not None and row.redaction_reason == retention.RETENTION_REASON for row in rows)
    [entry] = audit_entries(app, audit.Action.RETENTION_PURGED)
    assert entry.actor == audit.CLI_ACTOR and "4 verifications, 3 webhook bodies" in (entry.detail or "")
    assert table_remnants(database, app, recent.secrets) == set(recent.secrets)
    assert api(app, f"/api/results/{recent.result_ids[0]}").json["claims"]["income_band"] == "band-KOALA-1234"

    again = flask_passid(app, "purge")
    assert "0 verifications, 0 webhook bodies, 0 outcome reports, 0 session links, 0 review notes" in again.output
    assert len(audit_entries(app, audit.Action.RETENTION_PURGED)) == 1  # a run that erased nothing adds nothing


@refused_before_storage
def test_the_daily_purge_runs_in_the_background_as_the_system(database: str, tmp_path: Path) -> None:
    with serving_in_process(database, tmp_path, PASSID_RETENTION_DAYS="1",
                            PASSID_WEBHOOK_SECRET="whsec_erasure_tests_0123456789",
                            PASSID_WEBHOOK_GRACE_SECONDS="0") as app:
        person = token_person(app, "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913")  # starts the jobs
        scheduler = app.extensions["passid_scheduler"]
        assert scheduler.get_job(retention.PURGE_JOB).trigger.interval == timedelta(days=1)
        backdate(database, days=2)
        wake_job(app, retention.PURGE_JOB)
        wait_until(lambda: audit_entries(app, audit.Action.RETENTION_PURGED), "the background purge")
        [entry] = audit_entries(app, audit.Action.RETENTION_PURGED)
        assert entry.actor == audit.SYSTEM_ACTOR
        assert table_remnants(database, app, person.secrets) == set()


@refused_before_storage
def test_without_secure_delete_and_a_checkpoint_the_erased_bytes_stay_in_the_files(
    app: Flask, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the scans above: what SQLite keeps when nobody asks it to forget."""
    with app.app_context():
        @event.listens_for(db.engine, "connect")
        def _keep_deleted_bytes(connection: object, _record: object) -> None:
            connection.execute("PRAGMA secure_delete=OFF")  # type: ignore[attr-defined]

        db.engine.dispose()
    monkeypatch.setattr(retention, "forget_erased_bytes", lambda *args: None)
    person = token_person(app, "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913")
    assert redact(app, person.result_ids[0])[0] == 0
    assert table_remnants(database, app, person.secrets) == set()  # gone for every query…
    assert remnants(app, database, person.secrets) == set(person.secrets)  # …but not from the files


def test_after_a_key_rotation_no_copy_of_an_erased_person_is_readable_anywhere(
    app: Flask, database: str, tmp_path: Path
) -> None:
    """What makes PostgreSQL's leftovers (dead row versions, its write-ahead log, backups) unreadable: they are
    ciphertext under the data key, so rotating the key and removing the old one retires every copy of them."""
    skip_unless_superuser_files(database)
    person = token_person(app, "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913")
    bystander = token_person(app, "MB2Z-C7RT-Y4NH", "band-KOALA-1234", "note-EMU-5678")
    assert redact(app, person.result_ids[0])[0] == 0
    with app.app_context():
        old_key = keyring().keys[0]
    new_key = Fernet.generate_key().decode()
    (tmp_path / "rotating").mkdir()
    with erasing_app(database, tmp_path / "rotating", PASSID_DATA_KEY=f"{new_key},{old_key}") as rotating:
        rotated = flask_passid(rotating, "rotate-data-key")
        assert rotated.exit_code == 0, rotated.output
    (tmp_path / "retired").mkdir()
    with erasing_app(database, tmp_path / "retired", PASSID_DATA_KEY=new_key) as retired:
        assert remnants(retired, database, person.secrets) == set()
        assert api(retired, f"/api/results/{person.result_ids[0]}").json["redacted"] is True
        kept = api(retired, f"/api/results/{bystander.result_ids[0]}").json
        assert kept["claims"]["income_band"] == "band-KOALA-1234"


@refused_before_storage
def test_a_redacted_qr_request_polled_again_shows_nothing_of_the_person(app: Flask) -> None:
    """The customer's tab still polls after the redaction: no claims, no 500, and its code is not written back."""
    widget = WidgetActions(app.test_client())
    session = widget.generate_qr()
    phone = PassidClient(app.config["PASSID_BASE_URL"])
    phone.fulfill_request(session.request_id, phone.sandbox_login("KE8V-3TXY-Z72L"))
    shown = widget.poll_until_final(session)
    assert 'data-view="success"' in shown.text and "812" in shown.text
    with app.app_context():
        finished = verifications.find_by_request(session.request_id)
        assert finished is not None and finished.code == session.code
    assert redact(app, finished.result_id)[0] == 0

    for answer in (widget.poll(session), widget.poll(session)):
        assert answer.status_code == 410
        assert 'data-view="idle"' in answer.text and "This verification has finished." in answer.text
        assert "812" not in answer.text and finished.result_id not in answer.text
    with app.app_context():
        row = db.session.get(Verification, finished.result_id)
        assert row is not None and row.code is None and row.code_hash is None and row.claims is None


@refused_before_storage
def test_a_webhook_about_the_person_still_waiting_is_not_recorded_after_the_redaction(
    database: str, tmp_path: Path
) -> None:
    """PASSID's event about a token verify waits out the grace period; erased meanwhile, it must not bring the
    person back as a new row once it is due (their token's hash, which would have matched it, is gone too)."""
    with erasing_app(database, tmp_path, PASSID_WEBHOOK_GRACE_SECONDS="3600") as app:
        with app.app_context():
            manual = verifications.record(
                source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                token="QZ7K-W4PM-R8TX", idempotency_key="pvw-waiting", claims=claims("band-WOMBAT-4471"))
        event_id, body = signed_event("verification.completed", {
            "token": "QZ7K-W4PM-R8TX", "claims": claims("band-WOMBAT-4471"), "permissions": ["full_score"],
            "verifiedAt": an_hour_ago(), "recommendation": "approve"})
        assert deliver(app.test_client(), body, event_id).status_code == 200
        handle_all(app)  # deferred: the grace period has not passed
        assert redact(app, manual.result_id)[0] == 0
        engine = create_engine(database)
        with engine.begin() as connection:  # the grace period is over
            connection.execute(text("UPDATE webhook_receipt SET lease_until = NULL, received_at = :past"),
                               {"past": utcnow() - timedelta(hours=2)})
        engine.dispose()
        handle_all(app)
        with app.app_context():
            [receipt] = db.session.execute(db.select(WebhookReceipt)).scalars().all()
            assert receipt.handling_status == "erased" and receipt.body is None
            assert db.session.execute(db.select(db.func.count()).select_from(Verification)).scalar_one() == 1
        assert table_remnants(database, app, ["QZ7K-W4PM-R8TX", "band-WOMBAT-4471"]) == set()


def test_an_analysts_review_note_goes_with_the_person_and_the_decision_stays(app: Flask, database: str) -> None:
    from app.rules import review
    from app.rules.decision import ReviewStatus

    with app.app_context():
        queued = verifications.record(
            source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED, token="QZ7K-W4PM-R8TX",
            idempotency_key="pvw-review", claims={**claims("band-WOMBAT-4471"), "fraud_risk": "medium"})
        review.decide(queued.result_id, review.DecisionEntry(ReviewStatus.PROCEED, "note-PLATYPUS-3141 called back"),
                      "analyst-1")
    status, output = redact(app, queued.result_id)
    assert status == 0 and "1 review note" in output
    with app.app_context():
        [decision] = db.session.execute(db.select(review.ReviewDecision)).scalars().all()
        assert decision.note is None
        assert (decision.decision, decision.decided_by) == (ReviewStatus.PROCEED.value, "analyst-1")


def test_between_a_new_key_and_the_rotation_a_redaction_finds_what_either_key_hashed(
    app: Flask, database: str, tmp_path: Path
) -> None:
    """With PASSID_DATA_KEY=NEW,OLD and `rotate-data-key` not run yet, the widget's row holds its token's hash
    under the old key while PASSID's webhooks and the outcome report that arrive now hash it under the new
    one: "the same person" is matched on the token's hash under every key, so all of it is erased."""
    token, band, notes = "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913"
    with app.app_context():
        old_key = keyring().keys[0]
        manual = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                                      token=token, idempotency_key="pvw-before-the-new-key", claims=claims(band))
    (tmp_path / "new-key").mkdir()
    with erasing_app(database, tmp_path / "new-key",
                     PASSID_DATA_KEY=f"{Fernet.generate_key().decode()},{old_key}") as rotating:
        events = [signed_event("verification.completed", {
            "token": token, "claims": claims(band), "permissions": ["full_score"],
            "verifiedAt": an_hour_ago(), "recommendation": "approve"}),
            signed_event("outcome.reported", {
                "token": token, "outcome": "repaid", "productType": "personal_loan", "amount": 7777.77,
                "currency": "USD", "notes": notes, "fsiScoreAtDecision": 733, "tier": "B",
                "reportedAt": an_hour_ago()})]
        for event_id, body in events:
            assert deliver(rotating.test_client(), body, event_id).status_code == 200
        handle_all(rotating)
        status, output = redact(rotating, manual.result_id)
        assert status == 0, output
        assert "2 verifications, 2 webhook bodies, 1 outcome report" in output
        assert table_remnants(database, rotating, [token, band, notes]) == set()
        with rotating.app_context():
            row = db.session.get(Verification, manual.result_id)
            assert row is not None and row.reported_outcome == "repaid"


# --- an erased person stays erased ---------------------------------------------------------------


def tombstone_rows(url: str) -> list[dict[str, object]]:
    """The tombstones as stored (raw SQL, so the test reads what the table holds, not what a model makes of it)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text("SELECT * FROM erasure_tombstone")).mappings()]
    finally:
        engine.dispose()


def receipts(app: Flask) -> list[WebhookReceipt]:
    with app.app_context():
        found = list(db.session.execute(db.select(WebhookReceipt).order_by(WebhookReceipt.id)).scalars())
        db.session.expunge_all()
        return found


@pytest.mark.databases("sqlite")
def test_webhooks_retried_after_the_redaction_are_acknowledged_counted_and_store_nothing(
    app: Flask, database: str
) -> None:
    """PASSID's webhooks failed (our server was down for a deploy), the person was erased, then the retries came:
    each is answered 2xx so PASSID stops, and neither the verification, the outcome nor the bodies come back."""
    token, band, notes = "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913"
    with app.app_context():
        manual = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                                      token=token, idempotency_key="pvw-before-the-deploy", claims=claims(band))
    assert redact(app, manual.result_id)[0] == 0
    retries = [
        signed_event("verification.completed", {"token": token, "claims": claims(band), "permissions": ["full_score"],
                                                "verifiedAt": an_hour_ago(), "recommendation": "approve"}),
        signed_event("verification.denied", {"token": token, "deny_reason": "TOKEN_EXPIRED", "message": "expired"}),
        signed_event("outcome.reported", {"token": token, "outcome": "repaid", "productType": "personal_loan",
                                          "amount": 7777.77, "currency": "USD", "notes": notes,
                                          "fsiScoreAtDecision": 733, "tier": "B", "reportedAt": an_hour_ago()}),
    ]
    for event_id, body in retries:
        answer = deliver(app.test_client(), body, event_id)
        assert answer.status_code == 200 and answer.json == {"received": True}
    handle_all(app)

    assert row_counts(app)[1:] == (1, 0)  # the erased verification alone; no outcome report
    stored = receipts(app)
    assert [receipt.event_id for receipt in stored] == [event_id for event_id, _ in retries]
    assert all(receipt.body is None and receipt.token_hash is None and receipt.handling_status == "erased"
               for receipt in stored)
    assert table_remnants(database, app, [token, band, notes, "7777.77"]) == set()
    assert api(app, f"/api/results/{manual.result_id}").json["redacted"] is True
    # Counted where an operator sees it: on the tombstone, with nothing personal beside the count.
    assert sum(int(str(row["later_events"])) for row in tombstone_rows(database)) == 3
    analyst = signed_in(app.test_client(), add_staff(app.test_cli_runner(), role="analyst"))
    assert analyst.get("/console/webhooks").text.count("about an erased person: nothing kept") == 3
    again = deliver(app.test_client(), retries[0][1], retries[0][0])
    assert again.status_code == 200 and again.json == {"received": True, "duplicate": True}


def test_a_webhook_about_a_request_of_an_erased_session_stores_nothing(app: Flask, database: str) -> None:
    """A second QR request was pending in the applicant's session when they were erased; its webhook then arrives."""
    person = session_person(app, "req_erasure_numbat_01", "HV3N-T6QB-J2LZ", "KX4T-9WQZ", "band-NUMBAT-5582",
                            "DQ8R-M3XW-P5KC")
    with app.app_context():
        session = session_records.find(person.session_id)
        assert session is not None
        session_records.note_request("req_erasure_numbat_02", session)
    assert redact(app, person.result_ids[0])[0] == 0
    event_id, body = signed_event("verification.completed", {
        "requestId": "req_erasure_numbat_02", "token": "WX5C-Q8NB-T3RM", "claims": claims("band-DINGO-7001", "A"),
        "permissions": ["full_score"], "verifiedAt": an_hour_ago(), "recommendation": "approve"})
    assert deliver(app.test_client(), body, event_id).status_code == 200
    handle_all(app)
    with app.app_context():
        assert verifications.find_by_request("req_erasure_numbat_02") is None
    assert row_counts(app)[1] == 2
    assert table_remnants(database, app, ["WX5C-Q8NB-T3RM", "band-DINGO-7001", *person.secrets]) == set()


def test_an_erasure_inside_the_grace_window_beats_the_widgets_record_and_the_waiting_webhook(
    database: str, tmp_path: Path
) -> None:
    """The webhook of a second verify waits out the grace period; the person is erased; then the widget's own
    record of that verify lands: nothing of it is stored, and the webhook once due records nothing either."""
    token, band = "QZ7K-W4PM-R8TX", "band-WOMBAT-4471"
    with erasing_app(database, tmp_path, PASSID_WEBHOOK_GRACE_SECONDS="3600") as app:
        with app.app_context():
            earlier = verifications.record(source=verifications.Source.MANUAL,
                                           status=verifications.FinalStatus.COMPLETED, token=token,
                                           idempotency_key="pvw-first-visit", claims=claims(band))
        event_id, body = signed_event("verification.completed", {
            "token": token, "claims": claims(band), "permissions": ["full_score"], "verifiedAt": an_hour_ago(),
            "recommendation": "approve"})
        assert deliver(app.test_client(), body, event_id).status_code == 200
        handle_all(app)  # deferred: inside the grace period
        assert redact(app, earlier.result_id)[0] == 0
        with app.app_context():  # the widget's record of the second verify, a moment after the erase
            late = verifications.record(source=verifications.Source.MANUAL,
                                        status=verifications.FinalStatus.COMPLETED, token=token,
                                        idempotency_key="pvw-second-visit", claims=claims(band))
        assert late.redacted_at is not None and late.claims is None and late.token is None
        engine = create_engine(database)
        with engine.begin() as connection:  # the grace period is over
            connection.execute(text("UPDATE webhook_receipt SET lease_until = NULL, received_at = :past"),
                               {"past": utcnow() - timedelta(hours=2)})
        engine.dispose()
        handle_all(app)
        [receipt] = receipts(app)
        assert receipt.handling_status == "erased" and receipt.body is None
        assert row_counts(app)[1] == 1
        assert table_remnants(database, app, [token, band]) == set()


@refused_before_storage
def test_a_poll_after_the_erasure_of_its_session_records_nothing_of_the_person(app: Flask) -> None:
    """The applicant is erased while their QR request in the session is still open; they approve it anyway and
    the widget's poll sees it finished: no verification with claims is recorded, and the widget shows none."""
    created = open_session(app, "loan-erased-while-open").json
    client = app.test_client()
    parts = urlsplit(created["url"])
    page = client.get(parts.path, query_string=dict(parse_qsl(parts.query))).text
    with app.app_context():
        session = session_records.find(created["id"])
        denied = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.DENIED,
                                      token="DQ8R-M3XW-P5KC", idempotency_key="pvw-denied-first",
                                      deny_reason="TOKEN_EXPIRED", **session_records.recorded_for(session))
    widget = WidgetActions(client)
    qr = widget.generate_qr(hidden(page, "o"))
    assert redact(app, denied.result_id)[0] == 0
    phone = PassidClient(app.config["PASSID_BASE_URL"])
    phone.fulfill_request(qr.request_id, phone.sandbox_login("KE8V-3TXY-Z72L"))
    shown = widget.poll_until_final(qr)
    assert shown.status_code == 410 and "812" not in shown.text
    with app.app_context():
        assert verifications.find_by_request(qr.request_id) is None
        assert db.session.execute(db.select(db.func.count()).select_from(Verification)).scalar_one() == 1
    assert set(api(app, f"/api/sessions/{created['id']}").json) == {"id", "redacted", "redactedAt"}


def test_redact_by_reference_erases_every_verification_session_and_body_of_it(app: Flask, database: str) -> None:
    skip_unless_superuser_files(database)
    reference = "loan-ER-2026-300"
    first = session_person(app, "req_reference_01", "HV3N-T6QB-J2LZ", "KX4T-9WQZ", "band-NUMBAT-5582",
                           "DQ8R-M3XW-P5KC", reference=reference)
    # The bank reopened a session for the same application: another token, another session, the same reference.
    second = session_person(app, "req_reference_02", "WX5C-Q8NB-T3RM", "PL2M-7HQV", "band-DINGO-7001",
                            "CJ6T-N9WR-B4XE", reference=reference)
    unused = open_session(app, reference).json  # a third, never used
    bystander = session_person(app, "req_reference_09", "MB2Z-C7RT-Y4NH", "ZR8K-3LPW", "band-KOALA-1234",
                               "TY4V-K2QM-H8DS", reference="loan-someone-else")

    assert flask_passid(app, "redact", first.result_ids[0], "--reference", reference, "--reason", REASON
                        ).exit_code == 2  # one or the other
    done = flask_passid(app, "redact", "--reference", reference, "--reason", REASON)
    assert done.exit_code == 0, done.output
    assert f"every record of the reference {reference!r}" in done.output
    assert "4 verifications, 2 webhook bodies, 0 outcome reports, 2 session links, 0 review notes, 3 sessions" \
        in done.output
    for person in (first, second):
        assert_erased(app, database, person)
    for session_id in (first.session_id, second.session_id, unused["id"]):
        answer = api(app, f"/api/sessions/{session_id}")
        assert set(answer.json) == {"id", "redacted", "redactedAt"} and answer.json["id"] == session_id
    subjects = {entry.subject for entry in audit_entries(app, audit.Action.REDACTED)}
    assert subjects == {*first.result_ids, *second.result_ids, first.session_id, second.session_id, unused["id"]}
    assert all(reference not in (entry.detail or "") for entry in audit_entries(app, audit.Action.REDACTED))

    kept = api(app, f"/api/sessions/{bystander.session_id}").json
    assert kept["reference"] == "loan-someone-else" and kept["status"] == "completed"
    assert table_remnants(database, app, bystander.secrets) == set(bystander.secrets)

    again = flask_passid(app, "redact", "--reference", reference, "--reason", REASON)
    assert again.exit_code == 1 and "was already erased" in again.output
    unknown = flask_passid(app, "redact", "--reference", "loan-nobody", "--reason", REASON)
    assert unknown.exit_code == 1 and "no verification or session has the reference 'loan-nobody'" in unknown.output


def test_tombstones_hold_no_personal_data_and_the_daily_purge_expires_them(app: Flask, database: str) -> None:
    from app.rules import tombstones

    person = token_person(app, "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913")
    assert redact(app, person.result_ids[0])[0] == 0
    rows = tombstone_rows(database)
    assert {row["kind"] for row in rows} == {"token"}
    assert not any(secret in str(row) for row in rows for secret in person.secrets)
    # Kept past PASSID's retries (2 h 35 min) and a margin, never past PASSID_RETENTION_DAYS (1 here).
    assert {_moment(row["keep_until"]) - _moment(row["erased_at"]) for row in rows} == {timedelta(days=1)}  # type: ignore[operator]
    with app.app_context():
        assert tombstones.keep_for(90) == timedelta(days=7, hours=2, minutes=35, seconds=30)

    assert "expired tombstone" not in flask_passid(app, "purge").output  # not due yet: kept
    assert len(tombstone_rows(database)) == len(rows)
    with app.app_context():
        erased = retention.purge(now=utcnow() + timedelta(days=1, minutes=1))
    assert erased.expired_tombstones == len(rows) and tombstone_rows(database) == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_tombstone_migration_upgrades_and_downgrades_keeping_sessions(kind: str, tmp_path: Path) -> None:
    from sqlalchemy import inspect

    from app.plumbing.encryption import Keyring
    from tests.support.migrations import empty_database, flask_db
    from tests.support.servers import TEST_DATA_KEY, base_env

    permissions = Keyring([TEST_DATA_KEY]).encrypt(b'["identity_verified"]').decode()
    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade", "0014_session_locale")
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO verification_session (id, reference, institution_name, permissions_json, created_at, "
                "expires_at) VALUES ('vs_old', 'loan-old', 'Demo Bank', :permissions, :at, :at)"),
                {"at": utcnow(), "permissions": permissions})
        flask_db(env, "upgrade")
        engine.dispose()
        assert "erasure_tombstone" in inspect(engine).get_table_names()
        assert "redacted_at" in {column["name"] for column in inspect(engine).get_columns("verification_session")}
        flask_db(env, "downgrade", "0014_session_locale")
        engine.dispose()
        assert "erasure_tombstone" not in inspect(engine).get_table_names()
        assert "redacted_at" not in {column["name"] for column in inspect(engine).get_columns("verification_session")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT id FROM verification_session")).scalars().all() == ["vs_old"]
        flask_db(env, "upgrade")
        engine.dispose()


def test_an_erased_persons_token_at_the_counter_or_the_cli_shows_and_keeps_nothing(app: Flask) -> None:
    """Inside the tombstone's time a verify of the erased token still reaches PASSID (it is PASSID's to say
    whether the token is good), but the counter and the operator are told the person was erased and see
    nothing of them; nothing is recorded and nothing is audited as a view."""
    token = "KE8V-3TXY-Z72L"  # a sandbox profile: PASSID verifies it every time
    with app.app_context():
        first = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                                     token=token, idempotency_key="pvw-erased-at-the-counter", claims=claims("A"))
    assert redact(app, first.result_id)[0] == 0
    counts = row_counts(app)
    tablet = signed_in(app.test_client(), add_staff(app.test_cli_runner(), role="counter"))
    counter = tablet.get("/branch/").text
    shown = tablet.post("/branch/verify", data={"csrf_token": hidden(counter, "csrf_token"), "n": hidden(counter, "n"),
                                                "token": token})
    assert shown.status_code == 410
    assert "was erased at their request" in shown.text and "812" not in shown.text
    by_hand = flask_passid(app, "verify", token)
    assert by_hand.exit_code == 0, by_hand.output
    assert "erased  KE8V-3TXY-Z72L" in by_hand.output and "812" not in by_hand.output
    assert "recorded as" not in by_hand.output
    assert row_counts(app) == counts
    assert audit_entries(app, audit.Action.CLAIMS_VIEWED) == []


@pytest.mark.databases("sqlite")
def test_an_outcome_about_an_erased_person_is_neither_sent_to_passid_nor_kept(app: Flask) -> None:
    from app.passid import PassidUnavailable
    from app.rules.outcome_reporting import OutcomeEntry, PersonErased, report_outcome

    token = "QZ7K-W4PM-R8TX"
    with app.app_context():
        first = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                                     token=token, idempotency_key="pvw-erased-before-the-outcome", claims=claims("B"))
    assert redact(app, first.result_id)[0] == 0
    entry = OutcomeEntry("repaid", "personal_loan", Decimal("2500"), "GBP", None)
    nowhere = PassidClient("http://127.0.0.1:9", "sk_test_never_called", timeout=1)  # a call would raise

    with app.app_context():
        assert isinstance(report_outcome(nowhere, token, entry, recorded=lambda _report: None), PersonErased)

    class ErasedOnTheWay(PassidClient):
        """PASSID takes the report while, here, an admin erases the person: the report's copy must not land."""

        def report_outcome(self, token: str, *args: Any, **kwargs: Any) -> OutcomeReceipt:
            tombstones.bury(tokens=[token])
            db.session.commit()
            return OutcomeReceipt("out_race", token, Outcome.REPAID, "personal_loan", 2500.0, "GBP", 733, "B", utcnow())

    other = "MB2Z-C7RT-Y4NH"
    with app.app_context():
        racing = ErasedOnTheWay("http://127.0.0.1:9", "sk_test_never_called", timeout=1)
        assert isinstance(report_outcome(racing, other, entry, recorded=lambda _report: None), PersonErased)
        assert db.session.execute(db.select(db.func.count()).select_from(OutcomeReport)).scalar_one() == 0
        with pytest.raises(PassidUnavailable):  # the first check really would have called PASSID
            report_outcome(nowhere, "CN5R-Q8WT-L3PY", entry, recorded=lambda _report: None)
    refused = flask_passid(app, "outcome", token, "repaid", "--product", "personal_loan", "--amount", "2500")
    assert refused.exit_code == 1 and "was erased" in refused.output and "Traceback" not in refused.output
