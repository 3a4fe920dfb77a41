"""Erasure tests' parts: an in-process app on either database, people whose data arrives the real way
(signed webhooks handled by the app, a session created through its API, a widget's record), and a scan
of what the database still holds of them, through SQL and in its raw files.

The raw scan looks for each value in clear, and for every Fernet token whose decryption (with the
app's own keyring) contains it: encryption alone must not be what hides an erased value.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.passid import sign_payload
from app.plumbing.database import db
from app.plumbing.encryption import keyring, lookup_hashes
from app.plumbing.passid_connection import passid_connection
from app.rules import sessions as session_records
from app.rules import verifications
from app.webhooks.handling import handle_pending
from tests.support.in_process import serving_in_process
from tests.support.postgres import under_ci
from tests.support.waiting import wait_until


def an_hour_ago() -> str:
    """A time inside any retention period, whenever the test runs (a fixed date turns old one day)."""
    return (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

WEBHOOK_SECRET = "whsec_erasure_tests_0123456789"
FERNET_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_=-]+")


@contextmanager
def erasing_app(url: str, directory: Path, **settings: str) -> Iterator[Flask]:
    """The app on `url`, taking hand-signed webhooks at once, with no background pass racing the test."""
    defaults = {"PASSID_WEBHOOK_SECRET": WEBHOOK_SECRET, "PASSID_WEBHOOK_GRACE_SECONDS": "0",
                "PASSID_BACKGROUND_JOBS": "false"}
    with serving_in_process(url, directory, **{**defaults, **settings}) as app:
        yield app


def signed_event(event_type: str, data: dict[str, Any]) -> tuple[str, bytes]:
    event_id = f"evt_{uuid.uuid4().hex}"
    envelope = {"id": event_id, "type": event_type, "createdAt": an_hour_ago(), "apiVersion": 1,
                "livemode": False, "data": data}
    return event_id, json.dumps(envelope).encode()


def deliver(client: FlaskClient, body: bytes, event_id: str) -> Any:
    return client.post("/webhooks/passid", data=body, headers={
        "Content-Type": "application/json", "X-PASSID-Event-Id": event_id,
        "X-PASSID-Event-Type": json.loads(body)["type"], "X-PASSID-Delivery-Attempt": "1",
        "X-PASSID-Signature": sign_payload(body, WEBHOOK_SECRET)})


def handle_all(app: Flask) -> None:
    with app.app_context():
        handle_pending()


@dataclass
class Person:
    """What one person left in the app, and the values of theirs nothing may keep after an erase."""

    result_ids: list[str]
    secrets: list[str]
    events: list[tuple[str, bytes]]  # (event id, signed body) of the webhooks about them
    session_id: str | None = None


def claims(band: str, tier: str = "B") -> dict[str, Any]:
    return {"fsi_score": 733, "tier": tier, "income_band": band, "identity_verified": True, "fraud_risk": "low",
            "payment_reliability": 0.97}


def token_person(app: Flask, token: str, band: str, notes: str) -> Person:
    """Verified by token: the widget's own record, PASSID's webhook about the same verify, and an outcome report."""
    client = app.test_client()
    with app.app_context():
        manual = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                                      token=token, idempotency_key=f"pvw-{uuid.uuid4().hex}", claims=claims(band),
                                      permissions=["full_score"], recommendation="approve", corridor="KE→GB")
    events = [signed_event("verification.completed", {
        "token": token, "claims": claims(band), "permissions": ["full_score"], "proofType": "passid.share.v1",
        "verifiedAt": an_hour_ago(), "corridor": "KE→GB", "recommendation": "approve"})]
    events.append(signed_event("outcome.reported", {
        "token": token, "outcome": "repaid", "productType": "personal_loan", "amount": 7777.77,
        "currency": "USD", "notes": notes, "fsiScoreAtDecision": 733, "tier": "B",
        "reportedAt": an_hour_ago()}))
    for event_id, body in events:
        assert deliver(client, body, event_id).status_code == 200
    handle_all(app)

    def recorded_by_webhook() -> list[str]:
        with app.app_context():
            return list(db.session.execute(
                db.select(verifications.Verification.id).where(
                    verifications.Verification.source == verifications.Source.WEBHOOK,
                    verifications.Verification.token_hash.in_(lookup_hashes(token)))).scalars().all())

    # Where the app's background passes run, one of them may hold the event's lease while handle_all looks.
    wait_until(lambda: bool(recorded_by_webhook()), "the webhook's verification recorded", every=0.1)
    webhook_rows = recorded_by_webhook()
    # The widget's row knows no verify time, the webhook's does: PASSID's verify recorded twice, as it can be.
    assert len(webhook_rows) == 1
    return Person([manual.result_id, *webhook_rows], [token, band, notes], events)


def session_person(app: Flask, request_id: str, token: str, code: str, band: str, denied_token: str,
                   reference: str | None = None) -> Person:
    """A session the institution's server opened (for `reference`, or a new one): a denied attempt, then a QR
    request its webhook finished."""
    client = app.test_client()
    created = open_session(app, reference or f"loan-{uuid.uuid4().hex[:8]}")
    assert created.status_code == 201, created.text
    session_id = created.json["id"]
    with app.app_context():
        session = session_records.find(session_id)
        assert session is not None
        denied = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.DENIED,
                                      token=denied_token, idempotency_key=f"pvw-{uuid.uuid4().hex}",
                                      deny_reason="TOKEN_EXPIRED", **session_records.recorded_for(session))
        session_records.note_request(request_id, session)
    event = signed_event("verification.completed", {
        "requestId": request_id, "token": token, "claims": claims(band, "A"), "permissions": ["full_score"],
        "proofType": "passid.request.v1", "verifiedAt": an_hour_ago(), "recommendation": "approve"})
    assert deliver(client, event[1], event[0]).status_code == 200
    handle_all(app)
    with app.app_context():
        verifications.attach_code(request_id, code)  # the widget's next poll
        finished = verifications.find_by_request(request_id)
        assert finished is not None and finished.code == code
    return Person([finished.result_id, denied.result_id], [token, code, band, denied_token], [event], session_id)


def open_session(app: Flask, reference: str) -> Any:
    """`POST /api/sessions` as the institution's server makes it: the answer (201, with its id and url)."""
    with app.app_context():
        key = passid_connection().api_key
    return app.test_client().post("/api/sessions", json={"reference": reference}, headers={"X-Institution-Key": key})


def api(app: Flask, path: str) -> Any:
    with app.app_context():
        key = passid_connection().api_key
    return app.test_client().get(path, headers={"X-Institution-Key": key})


# --- what the database still holds ----------------------------------------------------------------


def database_files(url: str) -> bytes:
    """Every byte of the database as stored: SQLite's file and its -wal; PostgreSQL's table, index and TOAST
    files of this database (after a CHECKPOINT writes its buffers out), read by the server as superuser."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("CHECKPOINT"))
            paths = connection.execute(text(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't') "
                "AND pg_relation_filepath(c.oid) IS NOT NULL")).scalars().all()
            chunks = []
            for path in paths:
                size = connection.execute(text("SELECT (pg_stat_file(:p, true)).size"), {"p": path}).scalar()
                if size:
                    chunks.append(connection.execute(text("SELECT pg_read_binary_file(:p)"), {"p": path}).scalar())
            return b"".join(bytes(chunk) for chunk in chunks)
    finally:
        engine.dispose()


def remnants(app: Flask, url: str, secrets: list[str], *, decrypting: bool = True) -> set[str]:
    """Which of `secrets` the raw database still holds, in clear or (`decrypting`) inside a token the app's
    keyring decrypts."""
    raw = database_files(url)
    found = {secret for secret in secrets if secret.encode() in raw}
    if not decrypting:
        return found
    with app.app_context():
        ring = keyring()
    for run in set(FERNET_TOKEN.findall(raw)):
        for token in fernet_tokens_in(run):
            try:
                plain = ring.decrypt(token)
            except Exception:  # cut short by what overwrote it, or not ours: nothing readable
                continue
            found.update(secret for secret in secrets if secret.encode() in plain)
    return found


def fernet_tokens_in(run: bytes) -> list[bytes]:
    """The Fernet tokens a run of base64 characters may start with, longest first.

    A stored record puts columns side by side, so a token is often followed by more such characters (a
    keyed hash in hex): every length a token can have (57 bytes plus whole 16-byte blocks, in base64) is tried.
    """
    lengths = []
    size = 57 + 16
    while (encoded := 4 * -(-size // 3)) <= len(run):
        lengths.append(encoded)
        size += 16
    return [run[:length] for length in reversed(lengths)]


def table_remnants(url: str, app: Flask, secrets: list[str]) -> set[str]:
    """Which of `secrets` any row of our tables still holds, read through the app's models (decrypted)."""
    from app.rules.outcomes import OutcomeReport
    from app.rules.verifications import Verification
    from app.rules.webhook_receipts import WebhookReceipt

    found: set[str] = set()
    with app.app_context():
        for model in (Verification, OutcomeReport, WebhookReceipt):
            for row in db.session.execute(db.select(model)).scalars():
                values = " ".join(str(getattr(row, column.key)) for column in model.__mapper__.column_attrs)
                found.update(secret for secret in secrets if secret in values)
        db.session.rollback()
    return found


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def skip_unless_superuser_files(url: str) -> None:
    """Reading PostgreSQL's files needs a superuser (the tests' `postgres`); say so instead of failing, except
    under CI=true, where a skipped check would pass unseen (tests/support/postgres.py)."""
    if make_url(url).get_backend_name() != "postgresql":
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
                if under_ci():
                    pytest.fail("CI=true and the tests' PostgreSQL role is no superuser: its files cannot be read")
                pytest.skip("reading PostgreSQL's files needs a superuser")
    finally:
        engine.dispose()
