"""`POST /webhooks/passid`: bound, verify and parse, store, answer — handling happens later.

The guide asks for a 200 within 10 s with processing in the background, and
for the signature to be checked over the raw bytes before anything else. In
order:

1. Size. No PASSID event comes near `MAX_BODY`: a larger Content-Length is
   answered 413 before any of the body is read, and a body without one
   (chunked) is read only up to the limit and refused past it.
2. Verify and parse in one call to the signing module (`parse_webhook_event`,
   stripe-python's `construct_event`): a typed event out, or a
   `WebhookSignatureError` whose reason (missing, malformed, mismatch) is
   what the log line shows and what the rejection is counted under.
3. A rate limit on failed calls per client address. A validly signed call is
   exempt, so PASSID's deliveries and retries always get through, however
   much junk arrives from the same address (a proxy, a NAT).
4. An event about a person erased since (its token or request id has a tombstone, `app.rules.tombstones`) is
   acknowledged and counted, and stored as a receipt without its body: PASSID stops retrying, and
   nothing of the person comes back.
5. Store the typed event's fields with the raw body, answer; a test event also keeps
   how long the answer took (arrival to commit), which the go-live checklist reads.
   Rejected calls leave no row of their own: they add one to a counter for
   their hour (app/webhooks/rejections.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.config import MAX_WEBHOOK_BODY, current_settings
from app.passid import (
    SIGNATURE_HEADER,
    MalformedResponse,
    WebhookEvent,
    WebhookSignatureError,
    parse_webhook_event,
)
from app.plumbing.access_log import ARRIVED_AT
from app.plumbing.background import wake_job
from app.plumbing.database import db, utcnow
from app.plumbing.encryption import search_hash
from app.plumbing.metrics import metrics
from app.plumbing.passid_connection import passid_connection
from app.plumbing.rate_limits import limiter
from app.rules.webhook_receipts import Handling, SignatureResult, WebhookReceipt
from app.webhooks.handling import HANDLING_JOB, count_erased_event, erased_subject
from app.webhooks.rejections import clean_claimed_id, count_rejection

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

MAX_BODY = MAX_WEBHOOK_BODY
NO_SECRET = "no_secret"  # the log's reason when no webhook secret is configured here: nothing can be verified


@dataclass(frozen=True)
class Inbound:
    """What this call turned out to be, worked out once."""

    raw: bytes  # the exact bytes that were signed; empty when the body was too large to read
    verdict: SignatureResult
    detail: str = ""  # why not, in a sentence, for the caller
    reason: str = ""  # why not, in a word, for the log: the signing module's reason, "too_large" or "no_secret"
    event: WebhookEvent | None = None  # the typed event; None unless validly signed and well-formed


def failed_call_limit() -> str:
    return current_settings().rate_limit_webhook_failures


def _is_validly_signed() -> bool:
    return _inbound().verdict is SignatureResult.VALID


def _is_failed_call(response: Response) -> bool:
    return response.status_code in (401, 413)


@bp.post("/webhooks/passid")
@limiter.limit(failed_call_limit, exempt_when=_is_validly_signed, deduct_when=_is_failed_call)
def receive() -> tuple[Response, int]:
    inbound = _inbound()
    if inbound.verdict is not SignatureResult.VALID:
        status = 413 if inbound.verdict is SignatureResult.TOO_LARGE else 401
        _reject(inbound, status)
        if status == 413:
            return _error("PAYLOAD_TOO_LARGE", inbound.detail), 413
        return _error("INVALID_SIGNATURE", inbound.detail), 401
    event = inbound.event
    if event is None:
        count_receipt("invalid_event")
        return _error("VALIDATION_ERROR", inbound.detail), 400
    unstorable = storage_problem(event)
    if unstorable:
        count_receipt("invalid_event")
        return _error("VALIDATION_ERROR", f"The body is not a PASSID event: {unstorable}."), 400
    erased = None if event.test else erased_subject(event.data)
    receipt = WebhookReceipt(
        event_id=event.id,
        claimed_event_id=clean_claimed_id(request.headers.get("X-PASSID-Event-Id")),
        event_type=event.type,
        signature_result=SignatureResult.VALID,
        delivery_attempt=delivery_attempt(request.headers.get("X-PASSID-Delivery-Attempt")),
        test=event.test,
        **(erased_receipt() if erased else {"body": inbound.raw, "handling_status": Handling.PENDING,
                                            **event_subject(event)}),
    )
    db.session.add(receipt)
    try:
        if erased:
            count_erased_event(event.data)  # in this commit: a duplicate delivery is not counted twice
        db.session.commit()
    except IntegrityError:  # delivered before: acknowledge, do nothing twice
        db.session.rollback()
        count_receipt("duplicate")
        return jsonify(received=True, duplicate=True), 200
    if erased:  # acknowledged, so PASSID stops retrying; nothing to handle
        count_receipt("erased")
        return jsonify(received=True), 200
    count_receipt("accepted")
    if event.test:
        record_answer_time(receipt, request.environ[ARRIVED_AT])
    wake_job(current_app._get_current_object(), HANDLING_JOB)  # type: ignore[attr-defined]
    return jsonify(received=True), 200


@bp.errorhandler(429)
def too_many_failed_calls(_exception: HTTPException) -> tuple[Response, int]:
    """The failed-call limit: still counted (so the log shows the flood), never stored, never parsed."""
    _reject(_inbound(), 429)
    message = f"Too many failed webhook calls from this address ({failed_call_limit()}); try again later."
    return _error("RATE_LIMITED", message), 429


@bp.errorhandler(413)
def too_large(_exception: HTTPException) -> tuple[Response, int]:
    count_receipt("too_large")
    return _error("PAYLOAD_TOO_LARGE", _too_large_detail()), 413


# `passid_webhook_receipts_total{result}` for each refusal, by the status it was refused with.
_REFUSAL_RESULTS = {401: "invalid_signature", 413: "too_large", 429: "rate_limited"}


def count_receipt(result: str) -> None:
    """One call to the receiver, counted under what came of it (accepted, duplicate, erased, or a refusal)."""
    watched = metrics()
    if watched is not None:
        watched.webhook_receipts.labels(result).inc()


def _inbound() -> Inbound:
    """This call's body, verdict and event, worked out once: the rate limit asks before the view does."""
    if "webhook_inbound" not in g:
        g.webhook_inbound = _read_and_check()
    return g.webhook_inbound


def _read_and_check() -> Inbound:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _oversized()  # refused before reading a byte of it
    # No length given (chunked): Werkzeug stops reading at the request's limit, without saying whether
    # more was coming, so read one byte past ours and refuse the body if it is there.
    request.max_content_length = MAX_BODY + 1
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raw = None
    if raw is None or len(raw) > MAX_BODY:
        return _oversized()
    return check_and_parse(raw, request.headers.get(SIGNATURE_HEADER), passid_connection().webhook_secrets)


def check_and_parse(raw: bytes, header: str | None, secrets: tuple[str, ...]) -> Inbound:
    """The signing module's one call, its outcome in the receiver's terms (valid, or why not)."""
    if not secrets:
        return Inbound(raw, SignatureResult.INVALID,
                       "Signature check failed: no webhook secret is configured here.", NO_SECRET)
    try:
        event = parse_webhook_event(raw, header, secrets)
    except WebhookSignatureError as failure:
        return Inbound(raw, SignatureResult.of(failure.reason), f"Signature check failed: {failure}.",
                       failure.reason.value)
    except MalformedResponse as problem:  # signed by PASSID's secret, so exempt from the limit, but no event
        return Inbound(raw, SignatureResult.VALID, f"The body is not a PASSID event: {problem}.")
    return Inbound(raw, SignatureResult.VALID, event=event)


def _oversized() -> Inbound:
    return Inbound(b"", SignatureResult.TOO_LARGE, _too_large_detail(), SignatureResult.TOO_LARGE.value)


def _reject(inbound: Inbound, status: int) -> None:
    """Count the call under its verdict, and say why in the log: the reason is what an operator acts on."""
    claimed_id = request.headers.get("X-PASSID-Event-Id")
    count_receipt(_REFUSAL_RESULTS.get(status, "invalid_signature"))
    count_rejection(inbound.verdict, request.headers.get("X-PASSID-Event-Type"), claimed_id, refused=status == 429)
    if status != 429:  # past the limit only the count grows: a flood cannot fill the log either
        log.warning("webhook call rejected: status=%d reason=%s claimed_event_id=%s", status, inbound.reason,
                    clean_claimed_id(claimed_id) or "-")


def record_answer_time(receipt: WebhookReceipt, arrived_at: float) -> None:
    """A test event keeps how long PASSID waited: from the call's arrival (stamped by the access log, the
    outermost layer the factory always installs) to its row committed.

    Measured after the commit, so a database stuck on a lock shows in the figure the go-live
    checklist reads; it costs a second write, so only test events (sent by hand) pay it.
    """
    receipt.answered_ms = max(0, int((time.perf_counter() - arrived_at) * 1000))
    db.session.commit()


def erased_receipt() -> dict[str, object]:
    """The receipt of an event about an erased person (`app.rules.tombstones`): its event id, type and times only.

    Its body is never stored, nor its token's hash or request id: what the person left is nothing."""
    now = utcnow()
    return {"body": None, "handling_status": Handling.ERASED, "body_erased_at": now, "handled_at": now}


def event_subject(event: WebhookEvent) -> dict[str, str | None]:
    """The verification an event is about, as the receipt keeps it in clear: its request id, its token's hash."""
    request_id = event.data.get("requestId")
    token = event.data.get("token")
    return {
        "request_id": request_id if isinstance(request_id, str) and 1 <= len(request_id) <= 64 else None,
        "token_hash": search_hash(token) if isinstance(token, str) else None,
    }


def storage_problem(event: WebhookEvent) -> str | None:
    """What in a well-formed event our columns cannot hold, if anything.

    Printable only: NUL and lone surrogates cannot be stored (PostgreSQL refuses them) and are in no real event.
    """
    if not 1 <= len(event.id) <= 64 or not event.id.isprintable():
        return "its id must be 1-64 printable characters"
    if not 1 <= len(event.type) <= 40 or not event.type.isprintable():
        return "its type must be 1-40 printable characters"
    return None


def delivery_attempt(raw: str | None) -> int | None:
    """X-PASSID-Delivery-Attempt as a number (the contract's are 1-5); anything else is not recorded.

    ASCII digits only: "²" is a digit to str.isdigit but not to int(), and once raised a 500.
    """
    value = raw or ""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 4 else None


def _too_large_detail() -> str:
    return f"The body is larger than {MAX_BODY // 1024} KiB; no PASSID event is."


def _error(code: str, message: str) -> Response:
    return jsonify(error={"code": code, "message": message})
