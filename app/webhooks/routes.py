"""`POST /webhooks/passid`: check, store, answer — handling happens later.

The guide asks for a 200 within 10 s with processing in the background, and
for the signature to be checked over the raw bytes before anything else.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from app.background import wake_job
from app.database import db
from app.passid import SIGNATURE_HEADER, WebhookSignatureError, verify_webhook_signature
from app.passid_connection import passid_connection
from app.webhooks.handling import HANDLING_JOB
from app.webhooks.models import WebhookReceipt

bp = Blueprint("webhooks", __name__)

MAX_BODY = 256 * 1024


@bp.post("/webhooks/passid")
def receive() -> tuple[Response, int]:
    raw = request.get_data(cache=False)  # the exact bytes that were signed
    header = request.headers.get(SIGNATURE_HEADER)
    claimed_id = (request.headers.get("X-PASSID-Event-Id") or "")[:64] or None
    claimed_type = (request.headers.get("X-PASSID-Event-Type") or "")[:40] or None
    verdict = _signature_verdict(raw, header)
    if verdict != "valid":
        _log_rejection(verdict, claimed_id, claimed_type)
        return jsonify(error={"code": "INVALID_SIGNATURE", "message": "Signature check failed."}), 401

    envelope = _envelope(raw)
    if envelope is None:
        return jsonify(error={"code": "VALIDATION_ERROR", "message": "The body is not a PASSID event."}), 400
    receipt = WebhookReceipt(
        event_id=envelope["id"],
        claimed_event_id=claimed_id,
        event_type=envelope["type"],
        signature_result="valid",
        delivery_attempt=_attempt_number(),
        test=bool(envelope.get("test")),
        body=raw,
        handling_status="pending",
    )
    db.session.add(receipt)
    try:
        db.session.commit()
    except IntegrityError:  # delivered before: acknowledge, do nothing twice
        db.session.rollback()
        return jsonify(received=True, duplicate=True), 200
    wake_job(current_app._get_current_object(), HANDLING_JOB)  # type: ignore[attr-defined]
    return jsonify(received=True), 200


def _signature_verdict(raw: bytes, header: str | None) -> str:
    if not header:
        return "missing"
    if not header.startswith("sha256=") or len(header) != len("sha256=") + 64:
        return "malformed"
    secrets = passid_connection().webhook_secrets
    if not secrets:
        return "invalid"
    try:
        verify_webhook_signature(raw, header, list(secrets))
    except WebhookSignatureError:
        return "invalid"
    return "valid"


def _envelope(raw: bytes) -> dict | None:
    try:
        envelope = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(envelope, dict):
        return None
    event_id, event_type = envelope.get("id"), envelope.get("type")
    # Printable only: NUL and lone surrogates cannot be stored (PostgreSQL refuses them) and are in no real event.
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 64 or not event_id.isprintable():
        return None
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 40 or not event_type.isprintable():
        return None
    if not isinstance(envelope.get("data"), dict):
        return None
    return envelope


def _attempt_number() -> int | None:
    raw = request.headers.get("X-PASSID-Delivery-Attempt", "")
    return int(raw) if raw.isdigit() and len(raw) < 4 else None


def _log_rejection(verdict: str, claimed_id: str | None, claimed_type: str | None) -> None:
    """Record that a call failed its check; keep nothing it carried."""
    db.session.add(
        WebhookReceipt(
            event_id=None,
            claimed_event_id=claimed_id,
            event_type=claimed_type,
            signature_result=verdict,
            handling_status="rejected",
        )
    )
    db.session.commit()
