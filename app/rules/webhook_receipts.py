"""What we keep of webhook calls: valid events one by one, rejected calls as counts.

A valid event is kept with its raw body and handled in the background. A call
whose signature fails (or whose body is too large to check) is never acted on
and nothing it carried is kept: it only adds one to a counter for its hour, its
verdict and the event type it claimed. Counting instead of storing a row per
call means a flood of forged calls costs a bounded number of rows, while the
console can still say "12 calls with a bad signature, 14:00–15:00".
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.passid import EventType, SignatureFailure
from app.plumbing.database import Model, db, utcnow
from app.plumbing.encryption import EncryptedBytes, hash_column


class SignatureResult(StrEnum):
    """What the receiver made of a call's signature, as stored and as the console filters by it."""

    VALID = "valid"
    INVALID = "invalid"  # the signing module's "mismatch", in the word the log has always used
    MISSING = "missing"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"  # never checked: the body was larger than any PASSID event

    @classmethod
    def of(cls, failure: SignatureFailure) -> SignatureResult:
        return _RESULT_OF_FAILURE[failure]


_RESULT_OF_FAILURE = {
    SignatureFailure.MISSING: SignatureResult.MISSING,
    SignatureFailure.MALFORMED: SignatureResult.MALFORMED,
    SignatureFailure.MISMATCH: SignatureResult.INVALID,
}


class Handling(StrEnum):
    PENDING = "pending"
    HANDLED = "handled"
    FAILED = "failed"
    # About a person erased before it arrived or was handled (`app.rules.tombstones`): acknowledged, counted, its
    # body never kept (or dropped), nothing recorded from it.
    ERASED = "erased"


# Why a call was rejected: the signing module's verdict, or a body too large to check.
REJECTION_RESULTS = tuple(result.value for result in SignatureResult if result is not SignatureResult.VALID)
SIGNATURE_RESULTS = tuple(result.value for result in SignatureResult)
# Rejected calls are counted under the type they claim only when it is one of the contract's; anything
# else (a typo, junk, nothing) is "other", so a caller cannot make a new row per call by varying it.
CONTRACT_EVENT_TYPES = tuple(event_type.value for event_type in EventType)
OTHER_EVENT_TYPE = "other"


class WebhookReceipt(Model):
    """One valid event, stored before the 200 and handled once."""

    __tablename__ = "webhook_receipt"
    __table_args__ = (Index("ix_webhook_receipt_due", "handling_status", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Unique: the same event delivered twice is stored (and handled) once.
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    claimed_event_id: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str | None] = mapped_column(String(40), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    signature_result: Mapped[str] = mapped_column(String(10), index=True)  # a SignatureResult
    delivery_attempt: Mapped[int | None] = mapped_column(Integer)
    test: Mapped[bool] = mapped_column(default=False)
    # The raw body as signed, encrypted at rest (app/plumbing/encryption.py): it carries the claims and the token.
    body: Mapped[bytes | None] = mapped_column(EncryptedBytes)
    # What the event is about, kept beside the body so the receipts about one verification can be found
    # (and erased) without decrypting every body: the request id, and the token's keyed hash.
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    token_hash: Mapped[str | None] = mapped_column(hash_column(), index=True)
    handling_status: Mapped[str] = mapped_column(String(10))  # a Handling
    handling_error: Mapped[str | None] = mapped_column(String(500))
    handling_attempts: Mapped[int] = mapped_column(Integer, default=0)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Test events only: from the call's arrival at the app to its row committed, what PASSID waited
    # for (its deadline is 10 s). Null on other events and on rows stored before it was measured.
    answered_ms: Mapped[int | None] = mapped_column(Integer)
    # When its body was erased (`app.rules.retention`: retention or a redaction). The row and its event id stay,
    # so the same signed event delivered again is still answered as a duplicate and recorded nothing.
    body_erased_at: Mapped[datetime | None] = mapped_column(DateTime)


class WebhookRejection(Model):
    """How many calls were rejected in one hour, for one verdict and one claimed event type."""

    __tablename__ = "webhook_rejection"
    __table_args__ = (
        UniqueConstraint("hour", "signature_result", "event_type", name="uq_webhook_rejection_bucket"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hour: Mapped[datetime] = mapped_column(DateTime, index=True)  # naive UTC, start of the hour
    signature_result: Mapped[str] = mapped_column(String(10))
    event_type: Mapped[str] = mapped_column(String(40))
    calls: Mapped[int] = mapped_column(Integer, default=0)
    # Of those, how many the rate limit on failed calls answered 429.
    refused: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime)
    # The latest call's X-PASSID-Event-Id, unverified: lets `flask passid webhook-test` say that its
    # test event arrived with a bad signature, without keeping an id per call.
    last_claimed_event_id: Mapped[str | None] = mapped_column(String(64))


def latest_verified_test_webhook() -> WebhookReceipt | None:
    """The newest "send test webhook" delivery whose signature held (only valid ones are kept whole).

    Its `received_at` says when, its `answered_ms` how long the receiver took from the call's arrival
    to the event committed (None on rows stored before that was measured): the go-live checklist reads both.
    """
    return db.session.execute(
        db.select(WebhookReceipt)
        .where(WebhookReceipt.test.is_(True), WebhookReceipt.signature_result == SignatureResult.VALID.value)
        .order_by(WebhookReceipt.received_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def receipt_for_event(event_id: str) -> WebhookReceipt | WebhookRejection | None:
    """What we know of one event's arrival; either answer carries its `signature_result`.

    A valid event is stored under its id. A rejected call is only counted, but its hour's
    count remembers the latest claimed id, which is enough to tell that a test event just
    sent arrived with a bad signature.
    """
    receipt = db.session.execute(
        db.select(WebhookReceipt)
        .where((WebhookReceipt.event_id == event_id) | (WebhookReceipt.claimed_event_id == event_id))
        .order_by(WebhookReceipt.received_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if receipt is not None:
        return receipt
    return db.session.execute(
        db.select(WebhookRejection)
        .where(WebhookRejection.last_claimed_event_id == event_id)
        .order_by(WebhookRejection.last_at.desc())
        .limit(1)
    ).scalar_one_or_none()
