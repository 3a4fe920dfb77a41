"""The review queue: verifications whose verdict was "Review", and an analyst's decision on each.

A verification lands here when it is recorded with a "review" verdict (`app.rules.decision.review_status_for` sets its
`review_status` to "pending"); an analyst then decides "proceed" or "do not proceed", with a note.
Why one decision and no second opinion: the decision is what the bank acted on, so it is kept, not
overwritten. Two analysts deciding the same item at once is settled by a conditional UPDATE (only the
row still "pending" changes), backed by a unique key on `review_decision.verification_id`.

A sanctions match may only be "do not proceed". The counter's verdict never queues one (it says "do
not proceed" at once), so the rule here is the server's own guard, whatever a form or a row says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import DateTime, ForeignKey, Integer, String, update
from sqlalchemy.orm import Mapped, mapped_column

from app.passid import DenyReason
from app.plumbing.database import Model, db, rows_changed, utcnow
from app.plumbing.encryption import EncryptedText
from app.rules import audit
from app.rules.decision import REVIEW_DECISIONS, ReviewStatus
from app.rules.verifications import Verification, verdict_of

PER_PAGE = 25
LOOKUP_BATCH = 500  # ids in one IN (…), well inside every database's limit on bound parameters
NOTE_MAX = 1000

DECISION_NAMES: dict[ReviewStatus, LazyString] = {
    ReviewStatus.PENDING: lazy_gettext("Waiting for review"),
    ReviewStatus.PROCEED: lazy_gettext("Proceed"),
    ReviewStatus.DO_NOT_PROCEED: lazy_gettext("Do not proceed"),
}


class ReviewDecision(Model):
    __tablename__ = "review_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    verification_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("verification.id", name="fk_review_decision_verification"), unique=True
    )
    decision: Mapped[str] = mapped_column(String(16))  # ReviewStatus.PROCEED or DO_NOT_PROCEED
    # Free text about a person (analysts write names, dates and document numbers, whatever the form asks):
    # encrypted like the claims (app/plumbing/encryption.py), and NULL once erased with them (`erase_notes`).
    note: Mapped[str | None] = mapped_column(EncryptedText)
    decided_by: Mapped[str] = mapped_column(String(80))  # the analyst's staff name
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ReviewRefused(Exception):
    """A decision the queue will not take; `status` is the HTTP answer, the message one sentence for a person."""

    status = 400


class ErasedVerification(ReviewRefused):
    """The person's data was erased: no decision or note about them is taken any more."""

    status = 410


class NotWaiting(ReviewRefused):
    """Decided already (perhaps a moment ago by a colleague), or never queued."""

    status = 409


def is_sanctions_match(row: Verification) -> bool:
    """PASSID's hard deny, or a sanctions check that is not clear: the bank may not proceed with this person."""
    if row.deny_reason == DenyReason.HARD_DENY_SANCTIONS_MATCH:
        return True
    claims = _readable_claims(row)
    return claims is not None and claims.get("sanctions_clear") is False


def allowed_decisions(row: Verification) -> tuple[ReviewStatus, ...]:
    """The decisions an analyst may record for `row`: only "do not proceed" for a sanctions match."""
    if is_sanctions_match(row):
        return (ReviewStatus.DO_NOT_PROCEED,)
    return REVIEW_DECISIONS


def waiting_for(since: datetime, now: datetime) -> str:
    """How long an item has waited, as a queue shows it: "45 min", "3 h 12 min", "2 d 5 h"."""
    minutes = max(int((now - since).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(days)d d %(hours)d h", days=days, hours=hours)  # the queue's short units, translated whole
    if hours:
        return _("%(hours)d h %(minutes)d min", hours=hours, minutes=minutes)
    return _("%(minutes)d min", minutes=minutes)


def reasons(row: Verification) -> tuple[str, ...]:
    """Why the verdict was "Review", as staff read it: the reasons recorded with it; none once erased."""
    decision = verdict_of(row) if row.redacted_at is None else None
    return decision.staff_reasons if decision is not None else ()


def _readable_claims(row: Verification) -> dict[str, Any] | None:
    """The row's claims, or None when they are gone (a redacted row keeps none, whatever its columns say)."""
    if row.redacted_at is not None:
        return None
    return row.claims


def pending(page: int) -> Pagination:
    """What is waiting, oldest first: the longest wait is the first one an analyst sees.

    An erased verification leaves the queue: there is nothing left to decide on, and a note about it
    would be new personal data about a person who asked to be forgotten.
    """
    select = (
        db.select(Verification)
        .where(Verification.review_status == ReviewStatus.PENDING.value, Verification.redacted_at.is_(None))
        .order_by(Verification.created_at, Verification.id)
    )
    return db.paginate(select, page=page, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)


def decisions_for(result_ids: list[str]) -> dict[str, ReviewDecision]:
    """The decisions on these verifications, by result id (the history and its export show who decided, when)."""
    decisions: dict[str, ReviewDecision] = {}
    for start in range(0, len(result_ids), LOOKUP_BATCH):
        batch = result_ids[start:start + LOOKUP_BATCH]
        found = db.session.execute(db.select(ReviewDecision).where(ReviewDecision.verification_id.in_(batch)))
        decisions.update({decision.verification_id: decision for decision in found.scalars()})
    return decisions


@dataclass(frozen=True)
class DecisionEntry:
    decision: ReviewStatus
    note: str


def parse_decision(raw_decision: str | None, raw_note: str | None) -> DecisionEntry:
    """The form's two fields, or ReviewRefused with the sentence to show (the form checks the same first)."""
    try:
        decision = ReviewStatus(raw_decision or "")
    except ValueError:
        decision = None
    if decision not in REVIEW_DECISIONS:
        raise ReviewRefused(_("Choose proceed or do not proceed."))
    assert decision is not None
    note = (raw_note or "").strip()
    if not note:
        raise ReviewRefused(_("A note is required: say why."))
    if len(note) > NOTE_MAX:
        raise ReviewRefused(_("The note may be at most %(num)d characters.", num=NOTE_MAX))
    if "\x00" in note:  # no database column takes one (PostgreSQL refuses it)
        raise ReviewRefused(_("The note cannot contain a NUL character."))
    return DecisionEntry(decision, note)


def decide(result_id: str, entry: DecisionEntry, decided_by: str) -> ReviewDecision:
    """Record an analyst's decision, its history entry and its audit entry in one commit.

    Raises NotWaiting when the item is not (or no longer) pending, ErasedVerification when its person was
    erased, ReviewRefused when the decision is not one this item allows (a sanctions match can only be
    "do not proceed").
    """
    row = db.session.get(Verification, result_id)
    if row is None or row.review_status is None:
        raise NotWaiting(_("This verification is not in the review queue."))
    if row.redacted_at is not None:
        raise ErasedVerification(_("This person's data was erased: no decision or note can be recorded about them."))
    if row.review_status != ReviewStatus.PENDING:
        raise NotWaiting(_("This verification has already been decided; the first decision stands."))
    if entry.decision not in allowed_decisions(row):
        raise ReviewRefused("A sanctions match can only be “do not proceed”.")
    claimed = rows_changed(  # still pending and not erased meanwhile: an erase racing the form wins
        update(Verification)
        .where(Verification.id == result_id, Verification.review_status == ReviewStatus.PENDING.value,
               Verification.redacted_at.is_(None))
        .values(review_status=entry.decision.value)
        .execution_options(synchronize_session=False)
    )
    if claimed != 1:
        db.session.rollback()
        raise NotWaiting(_("This verification has already been decided; the first decision stands."))
    decision = ReviewDecision(
        verification_id=result_id, decision=entry.decision.value, note=entry.note, decided_by=decided_by,
        decided_at=utcnow(),
    )
    db.session.add(decision)
    # The decision only, never the note: the log is never erased, and the note is about the person.
    audit.note(
        audit.Action.REVIEW_DECIDED,
        subject=result_id,
        detail=f"{entry.decision.value} (note, {len(entry.note)} characters)",
    )
    db.session.commit()
    db.session.refresh(row)
    return decision


def erase_notes(verifications: Any) -> int:
    """Erase the notes on the decisions about the verifications `verifications` (a WHERE clause on
    Verification) selects; how many changed. For retention and redaction (`app.rules.retention`): an analyst's
    note is free text about a person, so it goes when the claims do (the decision, who made it and when
    stay: they are the bank's own record). Run it before the rows it selects are marked erased, in the same
    transaction; a note already erased (NULL) is not counted again."""
    return rows_changed(
        update(ReviewDecision)
        .where(
            ReviewDecision.verification_id.in_(db.select(Verification.id).where(verifications)),
            ReviewDecision.note.is_not(None),
        )
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
