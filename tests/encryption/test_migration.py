"""Migration 0011 encrypts the rows already stored (filling hashes and tier), and its downgrade decrypts them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from app.console.queries import verification_history
from app.passid.claims import CLAIM_FIELDS
from app.plumbing.database import db
from app.plumbing.encryption import Keyring
from app.rules import outcomes, sessions, verifications
from app.rules.webhook_receipts import WebhookReceipt
from tests.support.in_process import serving_in_process
from tests.support.migrations import empty_database, flask_db
from tests.support.servers import TEST_DATA_KEY, base_env

BEFORE = "0010_staff_roles_and_audit"
TOKEN, CODE = "NG4M-XQRS-T88W", "QX7P-M2KD"
CLAIMS = json.dumps({"fsi_score": 743, "tier": "B", "income_band": "USD 50k-75k", "identity_verified": True})
BODY = json.dumps({"id": "evt_old", "type": "verification.completed",
                   "data": {"requestId": "req_old", "token": TOKEN, "claims": json.loads(CLAIMS)}}).encode()
AT = datetime(2026, 11, 1, 12, 0)

# Each table's clear columns as 0010 left them, and the values stored in them before the upgrade.
VERIFICATION = {"id": "res_old", "source": "qr", "status": "completed", "request_id": "req_old", "code": CODE,
                "token": TOKEN, "claims_json": CLAIMS, "permissions_json": '["full_score"]',
                "recommendation": "approve", "corridor": "NG→US", "created_at": AT}
DENIED = {"id": "res_denied", "source": "manual", "status": "denied", "token": "TEST-SANC-0005",
          "deny_reason": "HARD_DENY_SANCTIONS_MATCH", "created_at": AT}
REPORT = {"token": TOKEN, "outcome": "repaid", "product_type": "loan", "amount": "2500.0", "currency": "USD",
          "notes": "on time", "fsi_score": 743, "tier": "B", "reported_at": AT}
RECEIPT = {"event_id": "evt_old", "event_type": "verification.completed", "received_at": AT,
           "signature_result": "valid", "test": False, "body": BODY, "handling_status": "handled",
           "handling_attempts": 1}
SESSION = {"id": "vs_old", "reference": "loan-old", "institution_name": "Demo Bank",
           "permissions_json": '["identity_verified"]', "created_at": AT, "expires_at": AT}


def insert(conn, table: str, row: dict) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row)


def clear(row, expected: dict) -> bool:  # type: ignore[no-untyped-def]
    """Whether `row` holds `expected` again (times aside: raw SQLite reads them back as text)."""
    return {k: row[k] for k in expected if not isinstance(expected[k], datetime)} == {
        k: v for k, v in expected.items() if not isinstance(v, datetime)}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_encrypts_stored_rows_and_its_downgrade_decrypts_them(kind: str, tmp_path: Path) -> None:
    ring = Keyring([TEST_DATA_KEY])
    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade", BEFORE)
        engine = create_engine(url)
        with engine.begin() as conn:
            insert(conn, "verification", VERIFICATION)
            insert(conn, "verification", DENIED)
            insert(conn, "outcome_report", REPORT)
            insert(conn, "webhook_receipt", RECEIPT)
            insert(conn, "verification_session", SESSION)

        flask_db(env, "upgrade")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM verification WHERE id = 'res_old'")).mappings().one()
            report = conn.execute(text("SELECT * FROM outcome_report")).mappings().one()
            receipt = conn.execute(text("SELECT * FROM webhook_receipt")).mappings().one()
        for name in ("code", "token", "claims_json", "permissions_json", "recommendation", "corridor"):
            assert row[name] != VERIFICATION[name] and ring.decrypt(row[name].encode()).decode() == VERIFICATION[name]
        assert row["tier"] == "B" and row["token_hash"] == ring.search_hash(TOKEN)
        assert row["code_hash"] == ring.search_hash(CODE)
        assert ring.decrypt(report["score_at_decision"].encode()) == b"743"
        assert report["token_hash"] == row["token_hash"]
        assert ring.decrypt(bytes(receipt["body"])) == BODY
        assert receipt["request_id"] == "req_old" and receipt["token_hash"] == row["token_hash"]
        # No claim's name is a column of ours (the tier excepted: it stays clear by design).
        claim_names = {name for names in CLAIM_FIELDS.values() for name in names} - {"tier"}
        for table in ("verification", "outcome_report", "webhook_receipt", "verification_session"):
            assert not claim_names & {c["name"] for c in inspect(engine).get_columns(table)}, table

        # The app reads them as it reads its own, and finds them by token and by code.
        with serving_in_process(url, tmp_path, PASSID_BACKGROUND_JOBS="false") as app, app.app_context():
            found = verifications.find("res_old")
            assert found is not None and found.claims == json.loads(CLAIMS) and found.token == TOKEN
            assert outcomes.find_report(TOKEN).fsi_score == 743  # type: ignore[union-attr]
            assert [r.id for r in verification_history("NG4MXQRST88W", 1).rows] == ["res_old"]
            assert [r.id for r in verification_history("QX7PM2KD", 1).rows] == ["res_old"]
            assert db.session.execute(db.select(WebhookReceipt)).scalar_one().body == BODY
            assert db.session.execute(db.select(sessions.VerificationSession)).scalar_one().permissions == (
                "identity_verified",)
            db.session.rollback()

        flask_db(env, "downgrade", BEFORE)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM verification WHERE id = 'res_old'")).mappings().one()
            denied = conn.execute(text("SELECT * FROM verification WHERE id = 'res_denied'")).mappings().one()
            report = conn.execute(text("SELECT * FROM outcome_report")).mappings().one()
            receipt = conn.execute(text("SELECT * FROM webhook_receipt")).mappings().one()
            session = conn.execute(text("SELECT * FROM verification_session")).mappings().one()
        assert clear(row, VERIFICATION) and clear(denied, DENIED) and clear(report, REPORT)
        assert bytes(receipt["body"]) == BODY
        assert session["permissions_json"] == SESSION["permissions_json"]
        assert "token_hash" not in {c["name"] for c in inspect(engine).get_columns("verification")}
        flask_db(env, "upgrade")
        engine.dispose()
