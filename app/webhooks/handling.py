"""Handling stored events in the background, exactly once each.

Same pattern as the sandbox's deliveries: rows are the durable state, a pass
claims a row with a conditional UPDATE on its lease, so a crash between
storing and handling loses nothing (the row is still pending) and two
processes never handle one event twice.

What to do is decided on the typed fields the receiver stored from the event
it verified and parsed (type, test flag, arrival time); the body is read back
only for the event's `data`, by the signing module's own bounded reader, so a
body the receiver accepted reads the same way here. One that does not (a row
written before the receiver bounded nesting, or by hand) fails at once and for
good: retrying a read cannot change its result, and the pass moves on.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update

from app.config import current_settings
from app.passid import EventType, MalformedResponse, read_webhook_event, restrict_claims
from app.plumbing.database import db, rows_changed, utcnow
from app.plumbing.metrics import metrics
from app.rules import sessions as session_records
from app.rules import tombstones, verifications
from app.rules.outcomes import record_outcome_event
from app.rules.verifications import FinalStatus, Source
from app.rules.webhook_receipts import Handling, WebhookReceipt

log = logging.getLogger(__name__)

HANDLING_JOB = "webhook-handling"
MAX_ATTEMPTS = 5


def lease() -> timedelta:
    """How long a claim holds (PASSID_JOB_LEASE_SECONDS): a process killed mid-row frees it after this."""
    return timedelta(seconds=current_settings().job_lease_seconds)


def handle_pending() -> int:
    now = utcnow()
    due = db.session.execute(
        db.select(WebhookReceipt.id)
        .where(
            WebhookReceipt.handling_status == Handling.PENDING,
            or_(WebhookReceipt.lease_until.is_(None), WebhookReceipt.lease_until < now),
        )
        .order_by(WebhookReceipt.received_at)
        .limit(50)
    ).scalars().all()
    db.session.rollback()
    handled = 0
    for receipt_id in due:
        if _claim(receipt_id):
            try:
                _handle(receipt_id)
            except Exception:  # one row's trouble must not stop the rows behind it; its lease delays a retry
                db.session.rollback()
                log.exception("webhook receipt %s could not be handled this pass", receipt_id)
                continue
            handled += 1
    return handled


def _claim(receipt_id: int) -> bool:
    now = utcnow()
    won = rows_changed(
        update(WebhookReceipt)
        .where(
            WebhookReceipt.id == receipt_id,
            WebhookReceipt.handling_status == Handling.PENDING,
            or_(WebhookReceipt.lease_until.is_(None), WebhookReceipt.lease_until < now),
        )
        .values(lease_until=now + lease(), handling_attempts=WebhookReceipt.handling_attempts + 1)
    )
    db.session.commit()
    return won == 1


def _handle(receipt_id: int) -> None:
    receipt = db.session.get(WebhookReceipt, receipt_id)
    if receipt is None:
        return
    if receipt.body is None and receipt.body_erased_at is not None:  # its person was erased while it waited
        _drop_erased(receipt, {})
        return
    if receipt.body is None:  # left pending, it would be claimed again every lease, for ever
        _give_up(receipt, "no body was stored with this event")
        return
    try:
        data = read_webhook_event(receipt.body).data
    except Exception as problem:  # the same bytes fail the same way every time: no retry
        reason = problem if isinstance(problem, MalformedResponse) else f"{type(problem).__name__}: {problem}"
        _give_up(receipt, f"not a PASSID event: {reason}")
        return
    if not receipt.test and erased_subject(data) is not None:  # erased after it was stored: the race
        _drop_erased(receipt, data)
        return
    try:
        apply_event(receipt.event_type, data, test=receipt.test, received_at=receipt.received_at)
    except Deferred as wait:
        db.session.rollback()
        receipt = db.session.get(WebhookReceipt, receipt_id)
        assert receipt is not None
        receipt.lease_until = wait.until
        receipt.handling_attempts -= 1  # waiting is not a failed attempt
        db.session.commit()
        return
    except Exception as error:  # recorded on the row; retried until MAX_ATTEMPTS
        db.session.rollback()
        receipt = db.session.get(WebhookReceipt, receipt_id)
        assert receipt is not None
        receipt.handling_error = f"{type(error).__name__}: {error}"[:500]
        receipt.lease_until = None
        if receipt.handling_attempts >= MAX_ATTEMPTS:
            receipt.handling_status = Handling.FAILED
        db.session.commit()
        if receipt.handling_status == Handling.FAILED:
            observe_lag(receipt, "failed")
        log.warning("webhook %s handling failed: %s", receipt.event_id, receipt.handling_error)
        return
    receipt.handling_status = Handling.HANDLED
    receipt.handling_error = None
    receipt.handled_at = utcnow()
    receipt.lease_until = None
    db.session.commit()
    observe_lag(receipt, "handled")


def observe_lag(receipt: WebhookReceipt, result: str) -> None:
    """`passid_webhook_handling_lag_seconds{result}`: from the event's arrival to the end of its handling."""
    watched = metrics()
    if watched is not None and receipt.received_at is not None:
        lag = (utcnow() - receipt.received_at).total_seconds()
        watched.webhook_lag.labels(result).observe(max(0.0, lag))


def _give_up(receipt: WebhookReceipt, error: str) -> None:
    """Failed for good, on the first attempt: for what no retry can change."""
    receipt.handling_status = Handling.FAILED
    receipt.handling_error = error[:500]
    receipt.lease_until = None
    db.session.commit()
    observe_lag(receipt, "failed")
    log.warning("webhook %s cannot be handled: %s", receipt.event_id, receipt.handling_error)


def erased_subject(data: dict[str, Any]) -> datetime | None:
    """When the person an event's data is about (its token, or its QR request) was erased; None if not."""
    return tombstones.erased_at(**_subject_of(data))


def count_erased_event(data: dict[str, Any]) -> None:
    """One more event about an erased person, on its tombstone (in the caller's transaction)."""
    tombstones.count_later_event(**_subject_of(data))


def _subject_of(data: dict[str, Any]) -> dict[str, str | None]:
    token, request_id = data.get("token"), data.get("requestId")
    return {"token": token if isinstance(token, str) else None,
            "request_id": request_id if isinstance(request_id, str) else None}


def _drop_erased(receipt: WebhookReceipt, data: dict[str, Any]) -> None:
    """Handled as about an erased person: its body and what pointed at the person go, nothing is recorded."""
    now = utcnow()
    receipt.body, receipt.token_hash, receipt.request_id, receipt.handling_error = None, None, None, None
    receipt.body_erased_at = receipt.body_erased_at or now
    receipt.handling_status = Handling.ERASED
    receipt.handled_at, receipt.lease_until = now, None
    count_erased_event(data)
    db.session.commit()
    observe_lag(receipt, "erased")
    log.info("webhook %s is about an erased person: nothing of it was kept", receipt.event_id)


class Deferred(Exception):
    """Not yet: try this event again at `until` (not a failure)."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"deferred until {until.isoformat()}")
        self.until = until


def _record_token_verify(status: FinalStatus, data: dict[str, Any], received_at: datetime) -> None:
    """A verify made by token: ours (the widget, branch or CLI recorded it) or made elsewhere.

    The widget records its own verify as soon as PASSID answers; the webhook
    can arrive first. So wait out a grace period, then record only a verify
    we do not already hold — one row per verify, no race between the two.
    """
    token = str(data.get("token") or "")
    verified_at = _time(data.get("verifiedAt"))
    grace = timedelta(seconds=current_settings().webhook_grace_seconds)
    if verifications.has_record_of(token, status, verified_at, window=2 * grace + timedelta(seconds=60)):
        return
    if utcnow() < received_at + grace:
        raise Deferred(received_at + grace)
    verifications.record(
        source=Source.WEBHOOK,
        status=status,
        token=token or None,
        claims=data.get("claims") if status is FinalStatus.COMPLETED else None,
        permissions=data.get("permissions"),
        deny_reason=data.get("deny_reason") or data.get("denyReason"),
        recommendation=data.get("recommendation"),
        corridor=data.get("corridor"),
        verified_at=verified_at,
    )


def _record_request_completed(data: dict[str, Any]) -> None:
    """A QR request finished before any poll of ours saw it (the customer may have closed the tab).

    A request the widget created inside a session is recorded for that session, with its claims
    limited to the session's permissions, as the widget's poll would have recorded it.
    """
    session = session_records.session_of_request(data["requestId"])
    claims = data.get("claims")
    if session is not None and claims is not None:
        claims = restrict_claims(claims, session.permissions)
    verifications.record(
        source=Source.QR,
        status=FinalStatus.COMPLETED,
        request_id=data["requestId"],
        token=data.get("token"),
        claims=claims,
        permissions=data.get("permissions"),
        recommendation=data.get("recommendation"),
        corridor=data.get("corridor"),
        verified_at=_time(data.get("verifiedAt")),
        **session_records.recorded_for(session),
    )


def apply_event(
    event_type: str | None, data: dict[str, Any], *, test: bool = False, received_at: datetime
) -> None:
    """What each event means for our records."""
    if test:
        return  # the dashboard's "send test webhook": proves the pipe, changes nothing
    if event_type == EventType.VERIFICATION_COMPLETED and data.get("requestId"):
        if verifications.find_by_request(data["requestId"]) is None:
            _record_request_completed(data)
    elif event_type == EventType.VERIFICATION_COMPLETED:
        _record_token_verify(FinalStatus.COMPLETED, data, received_at)
    elif event_type == EventType.VERIFICATION_DENIED:
        _record_token_verify(FinalStatus.DENIED, data, received_at)
    elif event_type == EventType.OUTCOME_REPORTED:
        record_outcome_event(data)
    else:
        log.info("ignoring webhook event type %s", event_type)


def _time(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
