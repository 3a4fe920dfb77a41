"""Key rotation: a new key first, old rows still read; `flask passid rotate-data-key`; then the old key can go."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from app.config import ConfigError
from app.plumbing.database import db
from app.plumbing.encryption import DataKeyError, Keyring
from app.rules import audit, outcomes, sessions, verifications
from app.rules.webhook_receipts import Handling, SignatureResult, WebhookReceipt
from tests.console.conftest import add_staff, signed_in
from tests.support.erasure import api, erasing_app, table_remnants, token_person
from tests.support.in_process import serving_in_process

# Fixed (xdist collects the same test ids in every worker), and for these tests only.
K1, K2 = "Zmlyc3Qta2V5LW9mLXRoZS1lbmNyeXB0aW9uLXRlc3Q=", "c2Vjb25kLWtleS1vZi10aGUtZW5jcnlwdGlvbi10c3Q="
TOKEN, CODE = "KE8V-3TXY-Z72L", "AB3X-7YQM"
CLAIMS = {"fsi_score": 812, "tier": "A", "income_band": "GBP 40k-60k", "identity_verified": True}
BODY = json.dumps({"id": "evt_rotation", "type": "verification.completed",
                   "data": {"token": TOKEN, "claims": CLAIMS}}).encode()


@contextmanager
def app_with(url: str, directory: Path, keys: str) -> Iterator[Flask]:
    with serving_in_process(url, directory, PASSID_DATA_KEY=keys, PASSID_BACKGROUND_JOBS="false") as app:
        yield app


def write_everything(app: Flask) -> str:
    with app.app_context():
        row = verifications.record(source=verifications.Source.QR, status=verifications.FinalStatus.COMPLETED,
                                   request_id="req_rotation", code=CODE, token=TOKEN, claims=CLAIMS,
                                   permissions=["full_score", "income_verified"], recommendation="approve",
                                   corridor="KE→GB")
        outcomes.save_report(token=TOKEN, outcome="repaid", product_type="loan", amount=2500.5, currency="GBP",
                             notes="paid early", fsi_score=812, tier="A", reported_at=None)
        db.session.add(WebhookReceipt(event_id="evt_rotation", event_type="verification.completed",
                                      signature_result=SignatureResult.VALID, body=BODY, test=False,
                                      handling_status=Handling.HANDLED))
        sessions.create(reference="loan-rotation", institution_name="Demo Bank",
                        permissions=("identity_verified",), return_url=None, ttl_seconds=600)
        db.session.commit()
        return row.result_id


def reads_everything(app: Flask, result_id: str) -> None:
    with app.app_context():
        row = verifications.find(result_id)
        assert row is not None and row.claims == CLAIMS and row.token == TOKEN and row.code == CODE
        assert row.corridor == "KE→GB" and row.tier == "A"
        assert verifications.has_record_of(TOKEN, verifications.FinalStatus.COMPLETED, None,
                                           window=timedelta(days=1))
        report = outcomes.find_report("passid-ke8v3txyz72l")
        assert report is not None and report.fsi_score == 812 and report.amount_value == 2500.5
        receipt = db.session.execute(db.select(WebhookReceipt).filter_by(event_id="evt_rotation")).scalar_one()
        assert receipt.body == BODY
        session = db.session.execute(db.select(sessions.VerificationSession)).scalars().one()
        assert session.permissions == ("identity_verified",)
        db.session.rollback()


def stored(url: str) -> dict[str, object]:
    """The raw stored values, as a copy of the database file would show them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                "claims": conn.execute(text("SELECT claims_json FROM verification")).scalar(),
                "token_hash": conn.execute(text("SELECT token_hash FROM verification")).scalar(),
                "body": bytes(conn.execute(text("SELECT body FROM webhook_receipt")).scalar()),
                "amount": conn.execute(text("SELECT amount FROM outcome_report")).scalar(),
            }
    finally:
        engine.dispose()


def search(app: Flask, query: str) -> str:
    with app.app_context():
        client = signed_in(app.test_client(), add_staff(app.test_cli_runner()))
    return client.get("/console/", query_string={"q": query}).text


def test_rotation_re_encrypts_every_row_under_the_new_key(fresh_database_url: str, tmp_path: Path) -> None:
    with app_with(fresh_database_url, tmp_path, K1) as app:
        result_id = write_everything(app)
    before = stored(fresh_database_url)
    assert Keyring([K1]).decrypt(str(before["claims"]).encode()) == json.dumps(CLAIMS).encode()

    with app_with(fresh_database_url, tmp_path, f"{K2},{K1}") as app:
        reads_everything(app, result_id)  # old rows read under the new ring, found by their old hashes
        with app.app_context():  # `passid` is a plain click group: it does not push one itself
            rotated = app.test_cli_runner().invoke(args=["passid", "rotate-data-key"])
            assert rotated.exit_code == 0, rotated.output
            assert "re-encrypted  verification: 1 rows" in rotated.output
            assert "re-encrypted  webhook_receipt: 1 rows" in rotated.output
            entry = db.session.execute(db.select(audit.AuditEntry).filter_by(
                action=audit.Action.DATA_KEY_ROTATED)).scalar_one()
            assert entry.actor == audit.CLI_ACTOR and "verification 1" in (entry.detail or "")

    after = stored(fresh_database_url)
    for name in ("claims", "body", "amount"):
        value = after[name]
        raw = value if isinstance(value, bytes) else str(value).encode()
        Keyring([K2]).decrypt(raw)
        with pytest.raises(DataKeyError):
            Keyring([K1]).decrypt(raw)
    assert after["token_hash"] == Keyring([K2]).search_hash(TOKEN) != before["token_hash"]

    with app_with(fresh_database_url, tmp_path, K2) as app:
        reads_everything(app, result_id)
        for typed in (TOKEN, "passid-ke8v-3txy-z72l", "KE8V3TXYZ72L", CODE.lower().replace("-", "")):
            assert f'data-result-id="{result_id}"' in search(app, typed), typed

    with pytest.raises(ConfigError, match="cannot decrypt the data already stored"), \
            app_with(fresh_database_url, tmp_path, K1):
        pass


def test_after_rotation_a_redaction_still_erases_the_webhooks_about_a_token(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """A webhook receipt is found by its token's keyed hash (the event names no request id when the customer
    typed a token), so rotation recomputes that hash from the body under the new key: once the old key is
    removed, redacting the person still erases the bodies of the webhooks about them."""
    with erasing_app(fresh_database_url, tmp_path, PASSID_DATA_KEY=K1) as app:
        person = token_person(app, TOKEN, "GBP 40k-60k", "paid early")
    with erasing_app(fresh_database_url, tmp_path, PASSID_DATA_KEY=f"{K2},{K1}") as app:
        with app.app_context():
            rotated = app.test_cli_runner().invoke(args=["passid", "rotate-data-key"])
        assert rotated.exit_code == 0, rotated.output
    with erasing_app(fresh_database_url, tmp_path, PASSID_DATA_KEY=K2) as app:
        with app.app_context():
            hashes = db.session.execute(db.select(WebhookReceipt.token_hash)).scalars().all()
            assert hashes == [Keyring([K2]).search_hash(TOKEN)] * 2
            redacted = app.test_cli_runner().invoke(
                args=["passid", "redact", person.result_ids[0], "--reason", "erasure request"])
        assert redacted.exit_code == 0, redacted.output
        assert "2 webhook bodies" in redacted.output
        assert table_remnants(fresh_database_url, app, person.secrets) == set()


def test_a_row_no_key_decrypts_is_a_readable_500_not_a_traceback(
    fresh_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An old key removed after an interrupted rotation: the start-up check reads only the newest and oldest
    rows, so a row in between is found on a page. It answers one readable sentence for the operator (a page,
    or JSON for the API) and logs one line, never a traceback."""
    with app_with(fresh_database_url, tmp_path, K1) as app, app.app_context():
        ids = [verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                                    token=TOKEN, idempotency_key=f"pvw-interrupted-{n}", claims=CLAIMS).result_id
               for n in range(3)]
    with app_with(fresh_database_url, tmp_path, f"{K2},{K1}") as app, app.app_context():
        assert app.test_cli_runner().invoke(args=["passid", "rotate-data-key"]).exit_code == 0
    engine = create_engine(fresh_database_url)
    with engine.begin() as conn:  # the row the interrupted rotation had not reached yet
        stored_claims = conn.execute(text("SELECT claims_json FROM verification WHERE id = :id"),
                                     {"id": ids[1]}).scalar_one()
        conn.execute(text("UPDATE verification SET claims_json = :old WHERE id = :id"), {
            "id": ids[1], "old": Keyring([K1]).encrypt(Keyring([K2]).decrypt(stored_claims.encode())).decode()})
    engine.dispose()

    with app_with(fresh_database_url, tmp_path, K2) as app:  # starts: the rows it samples read
        analyst = signed_in(app.test_client(), add_staff(app.test_cli_runner(), role="analyst"))
        assert analyst.get(f"/console/verifications/{ids[0]}").status_code == 200
        caplog.clear()
        page = analyst.get(f"/console/verifications/{ids[1]}")
        assert page.status_code == 500
        assert "cannot be decrypted with PASSID_DATA_KEY" in page.text and "restore" in page.text
        assert "Traceback" not in page.text
        answer = api(app, f"/api/results/{ids[1]}")
        assert answer.status_code == 500 and "PASSID_DATA_KEY" in answer.json["error"]["message"]
        logged = [record for record in caplog.records if "PASSID_DATA_KEY" in record.getMessage()]
        assert len(logged) == 2 and all(record.exc_info is None for record in logged)
