"""The review queue: a "Review" verdict waits for an analyst, who decides proceed or do not proceed, with a note.

In-process, on SQLite and PostgreSQL (`database_kind`): the queue is a query, the decision a conditional
UPDATE racing a colleague's; checks of the form, the roles and the audit entry run on SQLite only.
Verifications reach the queue through the real flow: the widget's manual token path against the app's
own sandbox. The embed here asks for every permission but `identity_verified`, so Kofi's fixed token
(GH2P-…: PASSID recommends review, fraud risk medium) reads "Review" at the counter; with his unverified
identity shown it would be "do not proceed".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, inspect, text

from app.console.review_queue import shown_detail
from app.passid import DenyReason
from app.plumbing.database import db, utcnow
from app.plumbing.encryption import keyring
from app.rules import audit, review
from app.rules import decision as verdicts
from app.rules.decision import ReviewStatus, review_status_for
from app.rules.verifications import FinalStatus, Source, Verification, record
from tests.console.conftest import add_staff, signed_in
from tests.support.html_fields import hidden
from tests.support.in_process import serving_in_process
from tests.support.migrations import empty_database, flask_db
from tests.support.servers import base_env
from tests.support.widget_actions import WidgetActions

REVIEW_TOKEN = "GH2P-ABCD-56KL"  # recommendation "review", fraud risk medium
APPROVE_TOKEN = "KE8V-3TXY-Z72L"
WITHOUT_IDENTITY = "full_score,income_verified,sanctions_clear,payment_reliability,savings_consistency,fraud_risk"


@pytest.fixture
def app(fresh_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The whole app in this process on a database of `database_kind`, its embed not asking for identity."""
    with serving_in_process(fresh_database_url, tmp_path, PASSID_PERMISSIONS=WITHOUT_IDENTITY) as built:
        yield built


def staff_of(app: Flask, role: str) -> tuple[FlaskClient, str]:
    """A new account of `role` (`flask staff create --role`), signed in on its own browser; and its name."""
    name = add_staff(app.test_cli_runner(), role=role)
    return signed_in(app.test_client(), name), name


@pytest.fixture
def analyst(app: Flask) -> FlaskClient:
    return staff_of(app, "analyst")[0]


def verified_in_widget(app: Flask, token: str) -> str:
    """Type `token` into the widget's manual form, as a customer does; the result id of the row it recorded."""
    before = result_ids(app)
    answer = WidgetActions(app.test_client()).submit_token(token)
    assert answer.status_code == 200, answer.text[:300]
    [recorded] = result_ids(app) - before
    return recorded


def result_ids(app: Flask) -> set[str]:
    with app.app_context():
        return set(db.session.execute(db.select(Verification.id)).scalars())


def row_of(app: Flask, result_id: str) -> Verification:
    with app.app_context():
        row = db.session.get(Verification, result_id)
        assert row is not None
        db.session.expunge(row)
        return row


def queue_rows(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-result-id="([^"]+)">(.*?)</tr>', page, flags=re.S))


def decide(client: FlaskClient, result_id: str, **fields: str) -> Any:
    page = client.get("/console/review").text
    return client.post(f"/console/review/{result_id}", data={"csrf_token": hidden(page, "csrf_token"), **fields})


def audit_entries(app: Flask, action: audit.Action) -> list[audit.AuditEntry]:
    with app.app_context():
        found = db.session.execute(
            db.select(audit.AuditEntry).where(audit.AuditEntry.action == action.value).order_by(audit.AuditEntry.id)
        ).scalars().all()
        for entry in found:
            db.session.expunge(entry)
        return list(found)


def decisions_of(app: Flask, result_id: str) -> list[tuple[str, str | None, str]]:
    with app.app_context():
        return [(d.decision, d.note, d.decided_by) for d in db.session.execute(
            db.select(review.ReviewDecision).where(review.ReviewDecision.verification_id == result_id)
        ).scalars()]


def pending_sanctions_match(app: Flask, **record_fields: Any) -> str:
    """A row that is a sanctions match yet stands "pending": the counter never queues one, so only a
    bug or a hand-edited row could; the server must still refuse to let it proceed."""
    with app.app_context():
        finished = record(source=Source.MANUAL, idempotency_key=f"sanc-{utcnow().timestamp()}", **record_fields)
        db.session.execute(
            db.update(Verification).where(Verification.id == finished.result_id).values(review_status="pending")
        )
        db.session.commit()
        return finished.result_id


# --- the rules, without a request --------------------------------------------------------------------


def test_waiting_time_reads_in_minutes_hours_and_days() -> None:
    start = datetime(2026, 11, 26, 9, 0)
    assert review.waiting_for(start, start + timedelta(seconds=59)) == "0 min"
    assert review.waiting_for(start, start + timedelta(minutes=45)) == "45 min"
    assert review.waiting_for(start, start + timedelta(hours=3, minutes=12, seconds=30)) == "3 h 12 min"
    assert review.waiting_for(start, start + timedelta(days=2, hours=5, minutes=1)) == "2 d 5 h"
    assert review.waiting_for(start, start - timedelta(minutes=5)) == "0 min"  # a clock a little behind


def test_only_a_review_verdict_is_queued() -> None:
    def status(**facts: Any) -> ReviewStatus | None:
        decided = verdicts.decide(**{"status": "completed", "deny_reason": None, "recommendation": "approve",
                            "claims": {}, **facts})
        return review_status_for(decided.verdict)

    assert status(recommendation="review") == ReviewStatus.PENDING
    assert status(claims={"fraud_risk": "medium"}) == ReviewStatus.PENDING
    assert status(claims={"income_verified": False}) == ReviewStatus.PENDING
    assert status(recommendation="review", claims={"identity_verified": False}) == ReviewStatus.PENDING
    assert status() is None  # approve
    # A decline outranks review: high fraud risk, sanctions, a deny.
    assert status(claims={"fraud_risk": "medium", "sanctions_clear": False}) is None
    assert status(claims={"fraud_risk": "high"}) is None
    assert status(status="denied", deny_reason="TOKEN_EXPIRED", claims=None, recommendation="review") is None


def test_a_sanctions_match_allows_only_do_not_proceed() -> None:
    def allowed(**columns: Any) -> tuple[ReviewStatus, ...]:
        return review.allowed_decisions(Verification(status="completed", **columns))

    both = (ReviewStatus.PROCEED, ReviewStatus.DO_NOT_PROCEED)
    assert allowed(claims_json='{"fraud_risk": "medium"}') == both
    assert allowed(claims_json='{"sanctions_clear": false}') == (ReviewStatus.DO_NOT_PROCEED,)
    assert allowed(deny_reason=DenyReason.HARD_DENY_SANCTIONS_MATCH.value) == (ReviewStatus.DO_NOT_PROCEED,)


def test_a_decision_needs_one_of_the_two_choices_and_a_note_of_1_to_1000_characters() -> None:
    assert review.parse_decision("proceed", "  ID checked in branch  ").note == "ID checked in branch"
    assert review.parse_decision("do_not_proceed", "x" * 1000).decision == ReviewStatus.DO_NOT_PROCEED
    for decision, note in (("proceed", ""), ("proceed", "   "), ("proceed", "x" * 1001), ("pending", "ok"),
                           ("approve", "ok"), (None, "ok")):
        with pytest.raises(review.ReviewRefused):
            review.parse_decision(decision, note)


# --- the queue ----------------------------------------------------------------------------------------


def test_a_review_verdict_lands_in_the_queue_oldest_first_with_its_reasons(app: Flask, analyst: FlaskClient) -> None:
    first = verified_in_widget(app, REVIEW_TOKEN)
    approved = verified_in_widget(app, APPROVE_TOKEN)
    second = verified_in_widget(app, REVIEW_TOKEN)
    assert row_of(app, first).review_status == "pending"
    assert row_of(app, approved).review_status is None
    with app.app_context():  # the first waited longer: three hours and twelve minutes
        db.session.execute(db.update(Verification).where(Verification.id == first)
                           .values(created_at=utcnow() - timedelta(hours=3, minutes=12, seconds=20)))
        db.session.commit()

    page = analyst.get("/console/review")
    assert page.status_code == 200
    rows = queue_rows(page.text)
    assert list(rows) == [first, second]  # oldest first; the approved one is not waiting
    assert "3 h 12 min" in rows[first] and "PASSID recommends a manual review." in rows[first]
    assert "Fraud risk is medium." in rows[first]
    assert 'value="proceed"' in rows[first] and 'value="do_not_proceed"' in rows[first]
    assert "2 waiting." in page.text


@pytest.mark.databases("sqlite")
def test_an_analyst_decides_and_the_decision_shows_in_the_history_and_the_audit_log(app: Flask) -> None:
    analyst, name = staff_of(app, "analyst")
    result_id = verified_in_widget(app, REVIEW_TOKEN)

    done = decide(analyst, result_id, decision="proceed", note="Income documents seen at the branch.")
    assert done.status_code == 303
    assert result_id not in queue_rows(analyst.get("/console/review").text)
    assert row_of(app, result_id).review_status == "proceed"
    assert decisions_of(app, result_id) == [("proceed", "Income documents seen at the branch.", name)]

    history = analyst.get("/console/", query_string={"review": "proceed"}).text
    [row] = re.findall(rf'<tr data-result-id="{result_id}">(.*?)</tr>', history, flags=re.S)
    assert 'data-review="proceed"' in row and "Reviewed: proceed" in row and f"by {name}" in row

    [entry] = audit_entries(app, audit.Action.REVIEW_DECIDED)
    assert (entry.subject, entry.actor, entry.actor_role) == (result_id, name, "analyst")
    assert entry.detail == "proceed (note, 36 characters)"
    assert not re.search(r"671|medium|GH2P|fraud", entry.detail or "", flags=re.I)


def test_the_note_is_stored_encrypted_and_never_copied_into_the_audit_log(app: Flask) -> None:
    """A note is free text about a person (analysts write names, dates of birth, passport numbers): it is
    encrypted like the claims and erased with them, and the audit log, which is never erased, says only
    which decision was made."""
    analyst, _ = staff_of(app, "analyst")
    result_id = verified_in_widget(app, REVIEW_TOKEN)
    note = "Spoke to Kofi Mensah DOB 1984-03-02, passport G1234567, lives at 12 High St"
    assert decide(analyst, result_id, decision="do_not_proceed", note=note).status_code == 303

    assert decisions_of(app, result_id)[0][1] == note  # read back through the model
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT note FROM review_decision")).scalar_one()
    finally:
        engine.dispose()
    assert "G1234567" not in stored and stored.startswith("gAAAAA")  # a Fernet token
    with app.app_context():
        assert keyring().decrypt(stored.encode()).decode() == note
    [entry] = audit_entries(app, audit.Action.REVIEW_DECIDED)
    assert entry.detail == f"do_not_proceed (note, {len(note)} characters)"


def test_a_second_decision_is_refused_with_409_and_the_first_stands(app: Flask) -> None:
    first, _ = staff_of(app, "analyst")
    second, _ = staff_of(app, "analyst")
    result_id = verified_in_widget(app, REVIEW_TOKEN)
    assert decide(first, result_id, decision="do_not_proceed", note="Fraud team says no.").status_code == 303
    again = decide(second, result_id, decision="proceed", note="Looks fine to me.")
    assert again.status_code == 409
    assert "already been decided" in again.text
    assert row_of(app, result_id).review_status == "do_not_proceed"
    assert [d[0] for d in decisions_of(app, result_id)] == ["do_not_proceed"]
    assert len(audit_entries(app, audit.Action.REVIEW_DECIDED)) == 1


def test_two_analysts_at_once_only_one_wins(app: Flask, analyst: FlaskClient,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A colleague's decision commits after this one read the row as pending, before it writes."""
    result_id = verified_in_widget(app, REVIEW_TOKEN)
    colleague = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    checked = review.allowed_decisions

    def colleague_decides_meanwhile(row: Verification) -> tuple[ReviewStatus, ...]:
        with colleague.begin() as connection:
            connection.execute(text("UPDATE verification SET review_status = 'do_not_proceed' WHERE id = :id"),
                               {"id": result_id})
            connection.execute(text("INSERT INTO review_decision (verification_id, decision, note, decided_by, "
                                    "decided_at) VALUES (:id, 'do_not_proceed', :note, 'colleague', :at)"),
                               {"id": result_id, "at": utcnow(), "note": keyring().encrypt(b"mine").decode()})
        return checked(row)

    csrf = hidden(analyst.get("/console/review").text, "csrf_token")  # the page, read while still pending
    monkeypatch.setattr(review, "allowed_decisions", colleague_decides_meanwhile)
    try:
        late = analyst.post(f"/console/review/{result_id}",
                            data={"csrf_token": csrf, "decision": "proceed", "note": "Fine."})
    finally:
        colleague.dispose()
    assert late.status_code == 409 and "already been decided" in late.text
    assert row_of(app, result_id).review_status == "do_not_proceed"
    assert decisions_of(app, result_id) == [("do_not_proceed", "mine", "colleague")]
    assert audit_entries(app, audit.Action.REVIEW_DECIDED) == []


@pytest.mark.databases("sqlite")
def test_a_note_is_required_and_at_most_1000_characters(app: Flask, analyst: FlaskClient) -> None:
    result_id = verified_in_widget(app, REVIEW_TOKEN)
    for note, sentence in (("", "A note is required: say why."), ("  ", "A note is required: say why."),
                           ("x" * 1001, "The note may be at most 1000 characters.")):
        refused = decide(analyst, result_id, decision="proceed", note=note)
        assert refused.status_code == 400 and sentence in refused.text
    refused = decide(analyst, result_id, decision="maybe", note="ok")
    assert refused.status_code == 400 and "Choose proceed or do not proceed." in refused.text
    assert row_of(app, result_id).review_status == "pending"
    assert decisions_of(app, result_id) == []


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("match", ["claims", "deny_reason"])
def test_a_sanctions_match_can_only_be_do_not_proceed(app: Flask, analyst: FlaskClient, match: str) -> None:
    if match == "claims":
        result_id = pending_sanctions_match(
            app, status=FinalStatus.COMPLETED, claims={"sanctions_clear": False, "fraud_risk": "medium"},
            recommendation="review",
        )
    else:
        result_id = pending_sanctions_match(
            app, status=FinalStatus.DENIED, deny_reason=DenyReason.HARD_DENY_SANCTIONS_MATCH.value,
        )
    row = queue_rows(analyst.get("/console/review").text)[result_id]
    assert 'value="do_not_proceed"' in row and 'value="proceed"' not in row  # the form offers only that

    forged = decide(analyst, result_id, decision="proceed", note="Overriding the watch list.")
    assert forged.status_code == 400
    assert "A sanctions match can only be “do not proceed”." in forged.text
    assert row_of(app, result_id).review_status == "pending" and decisions_of(app, result_id) == []

    assert decide(analyst, result_id, decision="do_not_proceed", note="Watch-list match.").status_code == 303
    assert row_of(app, result_id).review_status == "do_not_proceed"


def test_deciding_something_not_in_the_queue_is_409(app: Flask, analyst: FlaskClient) -> None:
    approved = verified_in_widget(app, APPROVE_TOKEN)
    for result_id in (approved, "res_nothing_here"):
        refused = decide(analyst, result_id, decision="proceed", note="ok")
        assert refused.status_code == 409 and "not in the review queue" in refused.text


@pytest.mark.databases("sqlite")
def test_only_analysts_and_admins_see_the_queue_and_its_nav_link(app: Flask) -> None:
    result_id = verified_in_widget(app, REVIEW_TOKEN)
    counter, _ = staff_of(app, "counter")
    assert counter.get("/console/review").status_code == 403
    csrf = hidden(counter.get("/branch/").text, "csrf_token")
    forbidden = counter.post(f"/console/review/{result_id}", data={"csrf_token": csrf, "decision": "proceed",
                                                                   "note": "ok"})
    assert forbidden.status_code == 403
    assert row_of(app, result_id).review_status == "pending"
    assert 'href="/console/review"' not in counter.get("/branch/").text

    assert app.test_client().get("/console/review").status_code == 302  # to the sign-in page
    for role in ("analyst", "admin"):
        client, _ = staff_of(app, role)
        page = client.get("/console/review")
        assert page.status_code == 200 and 'href="/console/review"' in page.text


@pytest.mark.databases("sqlite")
def test_a_decision_without_the_csrf_token_is_refused(app: Flask, analyst: FlaskClient) -> None:
    result_id = verified_in_widget(app, REVIEW_TOKEN)
    refused = analyst.post(f"/console/review/{result_id}", data={"decision": "proceed", "note": "ok"})
    assert refused.status_code == 400
    assert row_of(app, result_id).review_status == "pending"


# --- the migration --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_queues_no_existing_row_and_downgrades(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade", "0012_retention_and_redaction")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO verification (id, source, status, recommendation, created_at) "
                              "VALUES ('res_old', 'manual', 'completed', 'review', :at)"),
                         {"at": datetime(2026, 11, 1)})
        flask_db(env, "upgrade")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT review_status FROM verification")).scalars().all() == [None]
        assert "review_decision" in inspect(engine).get_table_names()
        flask_db(env, "downgrade", "0012_retention_and_redaction")
        engine.dispose()
        assert "review_status" not in {c["name"] for c in inspect(engine).get_columns("verification")}
        assert "review_decision" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM verification")).scalars().all() == ["res_old"]
        flask_db(env, "upgrade")
        engine.dispose()


@pytest.mark.databases("sqlite")
def test_erasing_a_verification_can_erase_the_notes_about_it(app: Flask, analyst: FlaskClient) -> None:
    result_id = verified_in_widget(app, REVIEW_TOKEN)
    other = verified_in_widget(app, REVIEW_TOKEN)
    for decided in (result_id, other):
        assert decide(analyst, decided, decision="proceed", note="Spoke to Mr Mensah at home.").status_code == 303
    with app.app_context():
        assert review.erase_notes(Verification.id == result_id) == 1
        assert review.erase_notes(Verification.id == result_id) == 0  # once
        db.session.commit()
    assert decisions_of(app, result_id) == [("proceed", None, decisions_of(app, result_id)[0][2])]
    assert decisions_of(app, other)[0][1] == "Spoke to Mr Mensah at home."


@pytest.mark.databases("sqlite")
def test_each_view_of_the_queue_is_one_recorded_view_naming_the_results_it_showed(app: Flask) -> None:
    """The reasons the queue shows come from the person's claims (fraud risk, identity), so a page of it is a
    view of each person on it: one entry per page view, naming them by result id."""
    analyst, name = staff_of(app, "analyst")
    assert "Nothing is waiting for review." in analyst.get("/console/review").text
    assert audit_entries(app, audit.Action.CLAIMS_VIEWED) == []  # an empty queue shows nobody
    first = verified_in_widget(app, REVIEW_TOKEN)
    second = verified_in_widget(app, REVIEW_TOKEN)
    assert "Fraud risk is medium." in analyst.get("/console/review").text
    analyst.get("/console/review", query_string={"page": "2"})  # past the last page: nobody shown
    [viewed] = audit_entries(app, audit.Action.CLAIMS_VIEWED)
    assert (viewed.actor, viewed.actor_role, viewed.subject) == (name, "analyst", "review queue")
    assert viewed.detail == f"{first}, {second}"


def test_a_full_queue_page_s_entry_names_what_fits_and_counts_the_rest() -> None:
    ids = [f"res_{number:022d}" for number in range(25)]  # a page of result ids as long as real ones
    detail = shown_detail(ids)
    assert len(detail) <= 500 and detail.endswith(" more")
    named, rest = detail.split(" … and ")
    assert named.split(", ") == ids[: len(named.split(", "))]
    assert len(named.split(", ")) + int(rest.removesuffix(" more")) == 25
    assert shown_detail(ids[:3]) == ", ".join(ids[:3])


def redact_from_the_cli(app: Flask, result_id: str) -> None:
    with app.app_context():
        done = app.test_cli_runner().invoke(args=["passid", "redact", result_id, "--reason", "erasure request ER-9"])
    assert done.exit_code == 0, done.output


@pytest.mark.databases("sqlite")
def test_an_erased_verification_leaves_the_queue_and_takes_no_new_note(app: Flask, analyst: FlaskClient) -> None:
    waiting = verified_in_widget(app, REVIEW_TOKEN)
    with app.app_context():  # another person (another token), whose fraud risk also asks for a review
        erased = record(source=Source.MANUAL, status=FinalStatus.COMPLETED, token="QZ7K-W4PM-R8TX",
                        idempotency_key="pvw-another-person", claims={"identity_verified": True, "tier": "B",
                                                                       "fraud_risk": "medium"}).result_id
    assert {erased, waiting} <= set(queue_rows(analyst.get("/console/review").text))
    redact_from_the_cli(app, erased)

    page = analyst.get("/console/review").text
    assert set(queue_rows(page)) == {waiting} and "1 waiting." in page
    refused = decide(analyst, erased, decision="proceed", note="Spoke to Mr Mensah, DOB 1990-03-14.")
    assert refused.status_code == 410
    assert "This person&#39;s data was erased: no decision or note can be recorded about them." in refused.text
    assert decisions_of(app, erased) == []
    assert [entry for entry in audit_entries(app, audit.Action.REVIEW_DECIDED) if entry.subject == erased] == []


@pytest.mark.databases("sqlite")
def test_the_purge_erases_a_note_left_on_a_verification_erased_before_it(app: Flask, analyst: FlaskClient) -> None:
    """A note written about a row after its erase (as the queue once allowed) is still about a person: the purge,
    which passes over rows erased already, must not pass over their notes."""
    from app.rules import retention

    result_id = verified_in_widget(app, REVIEW_TOKEN)
    redact_from_the_cli(app, result_id)
    with app.app_context():
        db.session.add(review.ReviewDecision(verification_id=result_id, decision=ReviewStatus.PROCEED.value,
                                             note="Spoke to Mr Mensah, DOB 1990-03-14.", decided_by="analyst-1",
                                             decided_at=utcnow()))
        db.session.commit()
        erased = retention.purge(now=utcnow() + timedelta(days=int(app.config["PASSID_RETENTION_DAYS"]) + 1))
    assert erased.review_notes == 1
    assert [(decision, note) for decision, note, _ in decisions_of(app, result_id)] == [("proceed", None)]
