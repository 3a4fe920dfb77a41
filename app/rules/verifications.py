"""Our own record of every verification the widget finished, QR or manual.

Why keep one: the institution's backend fetches a result from us by id
(`GET /api/results/<id>`) instead of trusting the browser, and a later poll
of a finished QR request is answered from here without asking PASSID. Only
what the institution needs is kept: the claims it asked for, the outcome and
the deny reason.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, String, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.config import current_settings
from app.passid import RequestStatus, VerifyResult, restrict_claims
from app.plumbing.database import Model, db, isoformat_z, utcnow
from app.plumbing.encryption import EncryptedText, hash_column, lookup_hashes, search_hash
from app.plumbing.metrics import metrics
from app.rules import notifications, tombstones
from app.rules.decision import Decision, VerdictRules, decide, review_status_for, storable_reasons, stored_reasons
from app.rules.finished_requests import finished_requests


class FinalStatus(StrEnum):
    """How a verification ended: a request's final status, or a token verify's deny.

    Not RequestStatus itself: "denied" is no status a request can have (the
    parser must keep refusing it there), and "pending" is never final. The
    shared values are RequestStatus's own, and compare equal to its members.
    """

    COMPLETED = RequestStatus.COMPLETED.value
    DENIED = "denied"  # a token verify PASSID refused; the row's deny_reason (a DenyReason) says why
    DECLINED = RequestStatus.DECLINED.value
    EXPIRED = RequestStatus.EXPIRED.value


FINAL_STATUSES = tuple(FinalStatus)
RESULT_ID_MAX_LENGTH = 40  # the id column's length (`res_` and 22 characters in practice)


class Source(StrEnum):
    """Where a verification came from; the console's history names each (`SOURCE_NAMES`)."""

    QR = "qr"  # the widget's QR flow (or its webhook, when the webhook finished it first)
    MANUAL = "manual"  # a token typed into the widget
    BRANCH = "branch"  # a token typed at the branch counter
    WEBHOOK = "webhook"  # a webhook for a request no widget of ours created
    CLI = "cli"  # `flask passid verify`


class Verification(Model):
    __tablename__ = "verification"

    id: Mapped[str] = mapped_column(String(RESULT_ID_MAX_LENGTH), primary_key=True)
    source: Mapped[str] = mapped_column(String(10))  # a Source
    status: Mapped[str] = mapped_column(String(10))  # a FinalStatus
    request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Encrypted at rest (app/plumbing/encryption.py), like every personal value below; found by their keyed hashes.
    code: Mapped[str | None] = mapped_column(EncryptedText)
    token: Mapped[str | None] = mapped_column(EncryptedText)
    code_hash: Mapped[str | None] = mapped_column(hash_column(), index=True)
    token_hash: Mapped[str | None] = mapped_column(hash_column(), index=True)
    # The verify's Idempotency-Key: a replayed manual verify records nothing new.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    claims_json: Mapped[str | None] = mapped_column(EncryptedText)
    permissions_json: Mapped[str | None] = mapped_column(EncryptedText)
    deny_reason: Mapped[str | None] = mapped_column(EncryptedText)
    decline_reason: Mapped[str | None] = mapped_column(EncryptedText)
    recommendation: Mapped[str | None] = mapped_column(EncryptedText)
    corridor: Mapped[str | None] = mapped_column(EncryptedText)
    # The one claim kept in clear, so the history and reports can filter and count by it.
    tier: Mapped[str | None] = mapped_column(String(1), index=True)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # A verification made for a session the institution's server created (`app.rules.sessions`): which one, and
    # the institution's own reference, kept here too so the history finds it without a join.
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reference: Mapped[str | None] = mapped_column(String(64), index=True)
    # A ReviewStatus (`app.rules.decision`): "pending" when the verdict was "review" at record time, then an
    # analyst's decision (`app.rules.review`); NULL for every verification that never needed one.
    review_status: Mapped[str | None] = mapped_column(String(16), index=True)
    # The app's one verdict (`app.rules.decision`), decided when the row is recorded and never again: approve,
    # review or decline, in clear like the review status (the history filters on it); its reason codes
    # encrypted (they follow from the claims). NULL only on rows recorded before verdicts were stored, until
    # `verdict_of` first reads them.
    verdict: Mapped[str | None] = mapped_column(String(10), index=True)
    verdict_reasons: Mapped[str | None] = mapped_column(EncryptedText)
    # The deny reason's keyed hash: the history finds sanctions matches without a deny reason in clear.
    deny_reason_hash: Mapped[str | None] = mapped_column(hash_column(), index=True)
    # Erased (`app.rules.retention`): when, and why ("retention", or the reason given for a redaction). The
    # record stays; its claims, token, code and reasons are gone. `reported_outcome` keeps which outcome
    # was reported for it, since the token that linked it to its outcome report is erased too.
    redacted_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    redaction_reason: Mapped[str | None] = mapped_column(String(500))
    reported_outcome: Mapped[str | None] = mapped_column(String(20))

    @property
    def claims(self) -> dict[str, Any] | None:
        return json.loads(self.claims_json) if self.claims_json else None


@dataclass(frozen=True)
class Finished:
    """What a widget needs to draw a final state, from a record or from PASSID."""

    result_id: str
    status: FinalStatus
    claims: dict[str, Any] | None
    token: str | None
    request_id: str | None
    deny_reason: str | None
    decline_reason: str | None
    code: str | None = None
    created_at: datetime | None = None  # when we recorded it: a widget's handle shows it for a while only
    redacted_at: datetime | None = None  # erased (`app.rules.retention`): no widget shows it again
    decision: Decision | None = None  # the app's verdict (`app.rules.decision`), as stored with the row

    @property
    def approved(self) -> bool:
        """Whether the customer may read "Verified": PASSID verified them and the verdict is approve."""
        return self.status == FinalStatus.COMPLETED and self.decision is not None \
            and self.decision.verdict == "approve"


def _finished(row: Verification) -> Finished:
    return Finished(
        result_id=row.id,
        status=FinalStatus(row.status),
        claims=row.claims,
        token=row.token,
        request_id=row.request_id,
        deny_reason=row.deny_reason,
        decline_reason=row.decline_reason,
        code=row.code,
        created_at=row.created_at,
        redacted_at=row.redacted_at,
        decision=verdict_of(row),
    )


# Built once: every awaiting widget's 2.5 s poll runs this lookup, and building
# the statement anew was a tenth of that poll's work.
_BY_REQUEST = select(Verification).where(Verification.request_id == bindparam("request_id"))


# The request ids rows were recorded for lately: what `finished_requests` refreshes from, by the
# indexed created_at column, every ~50 ms per process instead of one lookup per waiting poll.
_CREATED_SINCE = select(Verification.request_id).where(
    Verification.created_at >= bindparam("since"), Verification.request_id.is_not(None)
)


def request_ids_created_since(since: datetime) -> list[str]:
    """Request ids of the rows created at or after `since` (naive UTC), on a pooled connection.

    Outside the ORM session and, on PostgreSQL, in autocommit: one round trip instead of three (BEGIN,
    SELECT, and the ROLLBACK when the session hands its connection back), and no transaction left open.
    """
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        return [found for found in connection.execute(_CREATED_SINCE, {"since": since}).scalars() if found]


def _note_finished(request_id: str | None) -> None:
    """Tell this process's record of finished requests at once, so its own polls need no refresh."""
    if request_id is None:
        return
    finished = finished_requests()
    if finished is not None:
        finished.note(request_id)


def find_by_request(request_id: str) -> Finished | None:
    row = db.session.execute(_BY_REQUEST, {"request_id": request_id}).scalar_one_or_none()
    return _finished(row) if row else None


def find_by_idempotency_key(key: str) -> Finished | None:
    row = db.session.execute(db.select(Verification).filter_by(idempotency_key=key)).scalar_one_or_none()
    return _finished(row) if row else None


def find(result_id: str | None) -> Verification | None:
    """The row with this id, or None, also for an id no row can have: the API, the branch and the console
    take ids from paths, and PostgreSQL refuses a NUL in any text it is asked to compare (a 500, not a 404)."""
    if not result_id or "\x00" in result_id or len(result_id) > RESULT_ID_MAX_LENGTH:
        return None
    return db.session.get(Verification, result_id)


def record(
    *,
    source: Source,
    status: FinalStatus | RequestStatus,
    request_id: str | None = None,
    code: str | None = None,
    token: str | None = None,
    idempotency_key: str | None = None,
    claims: dict[str, Any] | None = None,
    permissions: list[str] | None = None,
    deny_reason: str | None = None,
    decline_reason: str | None = None,
    recommendation: str | None = None,
    corridor: str | None = None,
    verified_at: datetime | None = None,
    session_id: str | None = None,
    reference: str | None = None,
) -> Finished:
    """Store a finished verification once.

    A second record of the same QR request, or of the same keyed verify,
    returns the first: two polls (or a poll and the webhook) may race here.
    Token-only webhooks never race the widget: they wait a grace period and
    are recorded only if the widget did not record that verify itself.

    Nothing is stored about a token, request or session whose person was erased (`app.rules.tombstones`):
    a late webhook, a poll or a record racing the erase gets an erased `Finished` (no id, nothing of the
    person, `redacted_at` set), which every caller already shows as erased.
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"not a final status: {status}")
    erased = tombstones.refused(token=token, request_id=request_id, session_id=session_id)
    if erased is not None:  # nothing recorded; the tombstone counted it
        return _erased(status, erased)
    decision = decide(status=FinalStatus(status).value, deny_reason=deny_reason, claims=claims,
                      recommendation=recommendation, rules=configured_rules())
    row = Verification(
        id=f"res_{secrets.token_urlsafe(16)}",
        source=Source(source).value,
        status=FinalStatus(status).value,
        request_id=request_id,
        code=code,
        token=token,
        code_hash=search_hash(code),
        token_hash=search_hash(token),
        tier=tier_of(claims),
        idempotency_key=idempotency_key,
        claims_json=json.dumps(claims) if claims is not None else None,
        permissions_json=json.dumps(permissions) if permissions is not None else None,
        deny_reason=deny_reason,
        decline_reason=decline_reason,
        recommendation=recommendation,
        corridor=corridor,
        verified_at=verified_at.replace(tzinfo=None) if verified_at else None,
        session_id=session_id,
        reference=reference,
        verdict=decision.verdict,
        verdict_reasons=storable_reasons(decision.reasons),
        deny_reason_hash=search_hash(deny_reason),
        review_status=review_status_for(decision.verdict),
    )
    db.session.add(row)
    try:
        db.session.flush()  # a second record of the same request or key stops here, before anyone hears of it
        for listener in _RECORDED_LISTENERS:
            listener(row)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = find_by_request(request_id) if request_id else None
        if existing is None and idempotency_key:
            existing = find_by_idempotency_key(idempotency_key)
        if existing is None:
            raise
        _note_finished(existing.request_id)
        return existing
    _note_finished(request_id)
    watched = metrics()
    if watched is not None:  # once per verification: a second record of the same one returned above
        watched.verifications.labels(row.source, row.status, row.verdict or "none").inc()
    if notifications.configured():
        notifications.wake()
    return _finished(row)


# Who hears of each verification as it is recorded, inside its transaction, so what a listener adds (an event
# for the bank's backend) commits with the row or not at all. `app.rules.session_events` registers the one
# listener: it needs the sessions' rules, which import this module, so it cannot be called from here by name.
_RECORDED_LISTENERS: list[Callable[[Verification], None]] = []


def when_recorded(listener: Callable[[Verification], None]) -> Callable[[Verification], None]:
    """Register `listener` (a decorator); it runs after the row is flushed and before the commit."""
    if listener not in _RECORDED_LISTENERS:
        _RECORDED_LISTENERS.append(listener)
    return listener


def configured_rules() -> VerdictRules:
    """The verdict rules this app runs with (PASSID_VERDICT_RULES over the defaults, PASSID_MINIMUM_TIER)."""
    settings = current_settings()
    return VerdictRules.from_settings(settings.verdict_rules, settings.minimum_tier)


def verdict_of(row: Verification) -> Decision | None:
    """The row's stored verdict. A row recorded before verdicts were stored gets its verdict now, by the same
    rules, and keeps it: from then on it is read, never decided again. An erased row keeps its verdict and
    loses its reasons (they follow from the claims); one erased before verdicts were stored has none (None):
    its claims are gone, and deciding without them would approve."""
    if row.verdict is None:
        if row.redacted_at is not None:
            return None
        decision = decide(status=row.status, deny_reason=row.deny_reason, claims=row.claims,
                          recommendation=row.recommendation, rules=configured_rules())
        row.verdict, row.verdict_reasons = decision.verdict, storable_reasons(decision.reasons)
        db.session.commit()
    return Decision(row.verdict, stored_reasons(row.verdict_reasons))  # type: ignore[arg-type]


def _erased(status: FinalStatus | RequestStatus, erased: datetime) -> Finished:
    """The answer for a record refused about an erased person: as for an erased row, with nothing of them."""
    return Finished(result_id="", status=FinalStatus(status), claims=None, token=None, request_id=None,
                    deny_reason=None, decline_reason=None, redacted_at=erased)


def tier_of(claims: dict[str, Any] | None) -> str | None:
    """The claims' tier (A-E) for the clear column, when there is one that fits it."""
    tier = (claims or {}).get("tier")
    return tier if isinstance(tier, str) and len(tier) == 1 else None


def has_record_of(token: str, status: FinalStatus, verified_at: datetime | None, *, window: timedelta) -> bool:
    """Whether we already hold this verify: same token and outcome (and same instant when known)."""
    query = db.select(Verification.id).where(Verification.token_hash.in_(lookup_hashes(token)),
                                             Verification.status == status.value)
    if verified_at is not None:
        query = query.where(Verification.verified_at == verified_at.replace(tzinfo=None))
    else:
        query = query.where(Verification.created_at >= utcnow() - window)
    return db.session.execute(query.limit(1)).first() is not None


def attach_code(request_id: str, code: str) -> None:
    """A QR row first recorded from its webhook learns its code at the widget's next poll."""
    row = db.session.execute(db.select(Verification).filter_by(request_id=request_id)).scalar_one_or_none()
    if row is not None and row.code is None and row.redacted_at is None:  # an erased code stays erased
        row.code, row.code_hash = code, search_hash(code)
        db.session.commit()


def attach_session(request_id: str, session_id: str, reference: str) -> None:
    """A QR row its webhook recorded first learns its session at the widget's next poll, as it learns its code."""
    row = db.session.execute(db.select(Verification).filter_by(request_id=request_id)).scalar_one_or_none()
    if row is not None and row.session_id is None:
        row.session_id, row.reference = session_id, reference
        db.session.commit()


def record_verify_result(
    result: VerifyResult, *, source: Source, idempotency_key: str, wanted: Iterable[str],
    session_id: str | None = None, reference: str | None = None,
) -> Finished:
    """Record a manual verify's answer, keeping only the claims this caller asked for.

    A token may carry more permissions than the embed (or the branch) wanted;
    the extra claims are dropped before they are stored or shown.
    """
    granted = [p for p in wanted if p in {str(q) for q in result.permissions}]
    return record(
        source=source,
        status=FinalStatus.COMPLETED if result.verified else FinalStatus.DENIED,
        token=result.token,
        idempotency_key=idempotency_key,
        claims=restrict_claims(result.claims, granted) if result.verified else None,
        permissions=granted or None,
        deny_reason=result.deny_reason.value if result.deny_reason else None,
        recommendation=result.recommendation,
        corridor=result.corridor,
        verified_at=result.verified_at,
        session_id=session_id,
        reference=reference,
    )


def redacted_document(object_id: str, redacted_at: datetime) -> dict[str, Any]:
    """What the backend APIs answer for an erased result (or a session it decided): that it was, and when."""
    return {"id": object_id, "redacted": True, "redactedAt": isoformat_z(redacted_at)}


def result_document(row: Verification) -> dict[str, Any]:
    """The institution backend's view of a result (`GET /api/results/<id>`); an erased one says only that."""
    if row.redacted_at is not None:
        return redacted_document(row.id, row.redacted_at)
    decision = verdict_of(row)
    assert decision is not None  # only an erased row has none, and it was answered above
    return {
        "resultId": row.id,
        "source": row.source,
        "status": row.status,
        "verified": row.status == FinalStatus.COMPLETED,
        "requestId": row.request_id,
        "token": row.token,
        "claims": row.claims,
        "permissions": json.loads(row.permissions_json) if row.permissions_json else None,
        "denyReason": row.deny_reason,
        "declineReason": row.decline_reason,
        "recommendation": row.recommendation,
        "verdict": decision.verdict,
        "verdictReasons": list(decision.reasons),
        "corridor": row.corridor,
        "verifiedAt": isoformat_z(row.verified_at) if row.verified_at else None,
        "createdAt": isoformat_z(row.created_at),
        "reference": row.reference,
        "sessionId": row.session_id,
    }
