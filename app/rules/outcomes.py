"""Our copy of each outcome reported to PASSID, for the console's history.

One per token, as PASSID allows; filled by the console and the CLI when they
report, and by the `outcome.reported` webhook for reports made elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.passid import Outcome
from app.plumbing.database import Model, db, utcnow
from app.plumbing.encryption import EncryptedInteger, EncryptedText, hash_column, lookup_hashes, search_hash
from app.rules import tombstones

# Keyed by the contract's outcomes (StrEnum, so a stored "repaid" finds its meaning too).
OUTCOME_MEANINGS: dict[str, str] = {
    Outcome.REPAID: "Loan repaid in full, on schedule",
    Outcome.NO_DEFAULT: "Still active, no missed payments to date",
    Outcome.DELINQUENT: "30+ days past due, not yet defaulted",
    Outcome.DEFAULTED: "90+ days past due or written off",
    Outcome.FRAUD_CONFIRMED: "Identity or application fraud confirmed",
    Outcome.ACCOUNT_CLOSED: "Account closed by the institution (not a default)",
    Outcome.OTHER: "Not covered by the above — explain in the notes",
}


class OutcomeReport(Model):
    __tablename__ = "outcome_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Token, amount, notes and score are erased with the verification (`app.rules.retention`); the row stays,
    # so the history still knows that an outcome was reported, and which.
    # Encrypted at rest (app/plumbing/encryption.py) and found by its keyed hash, one report per token.
    token: Mapped[str | None] = mapped_column(EncryptedText)
    token_hash: Mapped[str | None] = mapped_column(hash_column(), unique=True, index=True)
    outcome_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    product_type: Mapped[str] = mapped_column(String(80))
    amount: Mapped[str | None] = mapped_column(EncryptedText)
    currency: Mapped[str] = mapped_column(String(3))
    notes: Mapped[str | None] = mapped_column(EncryptedText)
    # The score at decision: stored under a name that is no claim's, so the schema names none.
    fsi_score: Mapped[int | None] = mapped_column("score_at_decision", EncryptedInteger)
    tier: Mapped[str | None] = mapped_column(String(1))
    reported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def amount_value(self) -> float:
        # Reports are found by their token, and an erased one has none left: it is never shown with an amount.
        assert self.amount is not None, "an erased outcome report has no amount"
        return json.loads(self.amount)


class ErasedToken(Exception):
    """An outcome about a token whose person was erased: acknowledged, counted, and not kept."""

    def __init__(self) -> None:
        super().__init__("this token's person was erased: the outcome report is not kept")


def find_report(token: str) -> OutcomeReport | None:
    return db.session.execute(
        db.select(OutcomeReport).where(OutcomeReport.token_hash.in_(lookup_hashes(token))).limit(1)
    ).scalar_one_or_none()


def save_report(
    *,
    token: str,
    outcome: str,
    product_type: str,
    amount: float,
    currency: str,
    notes: str | None,
    fsi_score: int | None,
    tier: str | None,
    reported_at: datetime | None,
    outcome_id: str | None = None,
    recorded: Callable[[OutcomeReport], object] | None = None,
) -> OutcomeReport:
    """Keep one report per token; a second save (the webhook after the console) changes nothing.

    `recorded` adds what records this save to the transaction (a staff report's audit entry), so it commits
    with the report, never apart from it; and alone when the report was saved a moment before (by the
    webhook about it), since the staff member's report was still made.

    ErasedToken, with nothing stored, when the token's person was erased (`app.rules.tombstones`).
    """
    if tombstones.refused(token=token) is not None:
        raise ErasedToken()
    existing = find_report(token)
    if existing is not None:
        return _recorded(existing, recorded)
    row = OutcomeReport(
        token=token,
        token_hash=search_hash(token),
        outcome_id=outcome_id,
        outcome=outcome,
        product_type=product_type,
        amount=json.dumps(amount),
        currency=currency,
        notes=notes,
        fsi_score=fsi_score,
        tier=tier,
        reported_at=(reported_at or utcnow()).replace(tzinfo=None),
    )
    db.session.add(row)
    try:
        if recorded is not None:
            recorded(row)  # inside: its queries flush the row, which may meet the webhook's copy
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        found = find_report(token)
        assert found is not None
        return _recorded(found, recorded)
    return row


def _recorded(report: OutcomeReport, recorded: Callable[[OutcomeReport], object] | None) -> OutcomeReport:
    if recorded is not None:
        recorded(report)
        db.session.commit()
    return report


def record_outcome_event(data: dict[str, Any]) -> None:
    """An `outcome.reported` webhook: kept, or (about an erased person) counted and dropped."""
    reported = data.get("reportedAt")
    try:
        save_report(
            token=str(data["token"]),
            outcome=str(data["outcome"]),
            product_type=str(data.get("productType", ""))[:80],
            amount=float(data.get("amount", 0)),
            currency=str(data.get("currency", "USD"))[:3],
            notes=data.get("notes"),
            fsi_score=data.get("fsiScoreAtDecision"),
            tier=data.get("tier"),
            reported_at=datetime.fromisoformat(reported.replace("Z", "+00:00")) if isinstance(reported, str) else None,
        )
    except ErasedToken:
        return
