"""`POST /webhooks/passid`: bound, check, parse, store, answer — handling happens later.

The guide asks for a 200 within 10 s with processing in the background, and
for the signature to be checked over the raw bytes before anything else. In
order:

1. Size. No PASSID event comes near `MAX_BODY`: a larger Content-Length is
   answered 413 before any of the body is read, and a body without one
   (chunked) is read only up to the limit and refused past it.
2. Signature, by the signing module, whose verdict (missing, malformed,
   mismatch) is what the log records.
3. A rate limit on failed calls per client address. A validly signed call is
   exempt, so PASSID's deliveries and retries always get through, however
   much junk arrives from the same address (a proxy, a NAT).
4. Parse once, bounded (`read_webhook_event`), store the typed fields with the
   raw body, answer. Rejected calls leave no row of their own: they add one to
   a counter for their hour (app/webhooks/rejections.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.background import wake_job
from app.database import db
from app.passid import (
    SIGNATURE_HEADER,
    MalformedResponse,
    SignatureFailure,
    WebhookEvent,
    WebhookSignatureError,
    read_webhook_event,
    verify_webhook_signature,
)
from app.passid_connection import passid_connection
from app.rate_limits import limiter
from app.webhooks.handling import HANDLING_JOB
from app.webhooks.models import WebhookReceipt
from app.webhooks.rejections import clean_claimed_id, count_rejection

bp = Blueprint("webhooks", __name__)

MAX_BODY = 256 * 1024

# The signing module's reasons, in the words the log has always used for them.
SIGNATURE_RESULT_OF: dict[SignatureFailure, str] = {"missing": "missing", "malformed": "malformed",
                                                     "mismatch": "invalid"}


@dataclass(frozen=True)
class Inbound:
    """What this call turned out to be, before any of it is trusted."""

    raw: bytes  # the exact bytes that were signed; empty when the body was too large to read
    verdict: str  # "valid", or one of models.REJECTION_RESULTS
    detail: str  # why, in a sentence, for the caller


def failed_call_limit() -> str:
    return current_app.config["PASSID_RATE_LIMIT_WEBHOOK_FAILURES"]


def _is_validly_signed() -> bool:
    return _inbound().verdict == "valid"


def _is_failed_call(response: Response) -> bool:
    return response.status_code in (401, 413)


@bp.post("/webhooks/passid")
@limiter.limit(failed_call_limit, exempt_when=_is_validly_signed, deduct_when=_is_failed_call)
def receive() -> tuple[Response, int]:
    inbound = _inbound()
    if inbound.verdict != "valid":
        count_rejection(inbound.verdict, _claimed_type(), request.headers.get("X-PASSID-Event-Id"), refused=False)
        if inbound.verdict == "too_large":
            return _error("PAYLOAD_TOO_LARGE", inbound.detail), 413
        return _error("INVALID_SIGNATURE", inbound.detail), 401

    try:
        event = read_webhook_event(inbound.raw)
    except MalformedResponse as problem:
        return _error("VALIDATION_ERROR", f"The body is not a PASSID event: {problem}."), 400
    unstorable = storage_problem(event)
    if unstorable:
        return _error("VALIDATION_ERROR", f"The body is not a PASSID event: {unstorable}."), 400
    receipt = WebhookReceipt(
        event_id=event.id,
        claimed_event_id=clean_claimed_id(request.headers.get("X-PASSID-Event-Id")),
        event_type=event.type,
        signature_result="valid",
        delivery_attempt=_attempt_number(),
        test=event.test,
        body=inbound.raw,
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


@bp.errorhandler(429)
def too_many_failed_calls(_exception: HTTPException) -> tuple[Response, int]:
    """The failed-call limit: still counted (so the log shows the flood), never stored, never parsed."""
    inbound = _inbound()
    count_rejection(inbound.verdict, _claimed_type(), request.headers.get("X-PASSID-Event-Id"), refused=True)
    message = f"Too many failed webhook calls from this address ({failed_call_limit()}); try again later."
    return _error("RATE_LIMITED", message), 429


@bp.errorhandler(413)
def too_large(_exception: HTTPException) -> tuple[Response, int]:
    return _error("PAYLOAD_TOO_LARGE", _too_large_detail()), 413


def _inbound() -> Inbound:
    """This call's body and signature verdict, worked out once: the rate limit asks before the view does."""
    if "webhook_inbound" not in g:
        g.webhook_inbound = _read_and_check()
    return g.webhook_inbound


def _read_and_check() -> Inbound:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return Inbound(b"", "too_large", _too_large_detail())  # refused before reading a byte of it
    # No length given (chunked): Werkzeug stops reading at the request's limit, without saying whether
    # more was coming, so read one byte past ours and refuse the body if it is there.
    request.max_content_length = MAX_BODY + 1
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raw = None
    if raw is None or len(raw) > MAX_BODY:
        return Inbound(b"", "too_large", _too_large_detail())
    verdict, detail = signature_verdict(raw, request.headers.get(SIGNATURE_HEADER),
                                        passid_connection().webhook_secrets)
    return Inbound(raw, verdict, detail)


def signature_verdict(raw: bytes, header: str | None, secrets: tuple[str, ...]) -> tuple[str, str]:
    """("valid" or why not, a sentence for the caller), from the signing module's own check."""
    if not secrets:
        return "invalid", "Signature check failed: no webhook secret is configured here."
    try:
        verify_webhook_signature(raw, header, list(secrets))
    except WebhookSignatureError as failure:
        return SIGNATURE_RESULT_OF[failure.reason], f"Signature check failed: {failure}."
    return "valid", ""


def storage_problem(event: WebhookEvent) -> str | None:
    """What in a well-formed event our columns cannot hold, if anything.

    Printable only: NUL and lone surrogates cannot be stored (PostgreSQL refuses them) and are in no real event.
    """
    if not 1 <= len(event.id) <= 64 or not event.id.isprintable():
        return "its id must be 1-64 printable characters"
    if not 1 <= len(event.type) <= 40 or not event.type.isprintable():
        return "its type must be 1-40 printable characters"
    return None


def _too_large_detail() -> str:
    return f"The body is larger than {MAX_BODY // 1024} KiB; no PASSID event is."


def _error(code: str, message: str) -> Response:
    return jsonify(error={"code": code, "message": message})


def _claimed_type() -> str | None:
    return request.headers.get("X-PASSID-Event-Type")


def _attempt_number() -> int | None:
    raw = request.headers.get("X-PASSID-Delivery-Attempt", "")
    return int(raw) if raw.isdigit() and len(raw) < 4 else None
