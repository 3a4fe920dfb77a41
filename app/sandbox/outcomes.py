"""Outcome reports and the cohort table they feed (the calibration loop).

The score at decision time always comes from the sandbox's own verification
history, never from the caller — that is the point of the loop.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from app.plumbing.database import db, isoformat_z, utcnow
from app.sandbox import webhooks
from app.sandbox.errors import ApiError
from app.sandbox.identifiers import new_id
from app.sandbox.models import SandboxInstitution, SandboxOutcome, SandboxVerification
from app.sandbox.profiles import EXPECTED_DEFAULT_RATE, TIERS

OUTCOMES: tuple[str, ...] = (
    "repaid",
    "no_default",
    "delinquent",
    "defaulted",
    "fraud_confirmed",
    "account_closed",
    "other",
)


def report_outcome(
    institution: SandboxInstitution,
    *,
    token: str,
    outcome: str,
    product_type: str,
    amount: float,
    currency: str,
    notes: str | None,
) -> dict[str, Any]:
    verification = db.session.execute(
        db.select(SandboxVerification)
        .filter_by(institution_id=institution.id, token=token, approved=True)
        .order_by(SandboxVerification.verified_at)
        .limit(1)
    ).scalar_one_or_none()
    if verification is None:
        raise ApiError(404, "TOKEN_NOT_VERIFIED", "This institution has no approved verification of that token.")
    if _existing(institution, token) is not None:
        raise _duplicate()
    row = SandboxOutcome(
        id=new_id("out"),
        institution_id=institution.id,
        token=token,
        outcome=outcome,
        product_type=product_type,
        amount=json.dumps(amount),
        currency=currency,
        notes=notes,
        fsi_score=verification.fsi_score,
        tier=verification.tier,
        reported_at=utcnow(),
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent report of the same token won
        db.session.rollback()
        raise _duplicate() from None
    answer = outcome_answer(row)
    event_data = dict(answer)
    event_data.pop("outcomeId")
    if notes:
        event_data["notes"] = notes
    webhooks.enqueue_event(institution, "outcome.reported", event_data)
    return answer


def _existing(institution: SandboxInstitution, token: str) -> SandboxOutcome | None:
    return db.session.execute(
        db.select(SandboxOutcome).filter_by(institution_id=institution.id, token=token)
    ).scalar_one_or_none()


def _duplicate() -> ApiError:
    return ApiError(409, "DUPLICATE_OUTCOME", "An outcome was already reported for this token.")


def outcome_answer(row: SandboxOutcome) -> dict[str, Any]:
    return {
        "outcomeId": row.id,
        "token": row.token,
        "outcome": row.outcome,
        "productType": row.product_type,
        "amount": json.loads(row.amount),
        "currency": row.currency,
        "fsiScoreAtDecision": row.fsi_score,
        "tier": row.tier,
        "reportedAt": isoformat_z(row.reported_at),
    }


def cohorts(
    institution: SandboxInstitution, *, from_date: date | None, to_date: date | None, product_type: str | None
) -> dict[str, Any]:
    """One row per tier A–E (zeros included): verifications, outcomes, default rates."""
    start = datetime.combine(from_date, time.min) if from_date else None
    end = datetime.combine(to_date + timedelta(days=1), time.min) if to_date else None

    verifications = db.select(SandboxVerification.tier, func.count()).where(
        SandboxVerification.institution_id == institution.id, SandboxVerification.approved.is_(True)
    )
    outcomes = db.select(SandboxOutcome.tier, SandboxOutcome.outcome, func.count()).where(
        SandboxOutcome.institution_id == institution.id
    )
    if start:
        verifications = verifications.where(SandboxVerification.verified_at >= start)
        outcomes = outcomes.where(SandboxOutcome.reported_at >= start)
    if end:
        verifications = verifications.where(SandboxVerification.verified_at < end)
        outcomes = outcomes.where(SandboxOutcome.reported_at < end)
    if product_type:
        outcomes = outcomes.where(SandboxOutcome.product_type == product_type)

    verified_by_tier: dict[str, int] = {
        tier: count for tier, count in db.session.execute(verifications.group_by(SandboxVerification.tier)).all()
    }
    by_tier: dict[str, dict[str, int]] = {tier: {} for tier in TIERS}
    for tier, outcome, count in db.session.execute(
        outcomes.group_by(SandboxOutcome.tier, SandboxOutcome.outcome)
    ).all():
        if tier in by_tier:
            by_tier[tier][outcome] = count

    rows = []
    for tier in TIERS:
        reported = sum(by_tier[tier].values())
        defaulted = by_tier[tier].get("defaulted", 0)
        rows.append(
            {
                "tier": tier,
                "verifications": verified_by_tier.get(tier, 0),
                "outcomesReported": reported,
                "byOutcome": {outcome: by_tier[tier].get(outcome, 0) for outcome in OUTCOMES},
                "observedDefaultRate": round(defaulted / reported, 4) if reported else None,
                "expectedDefaultRate": EXPECTED_DEFAULT_RATE[tier],
            }
        )
    return {"generatedAt": isoformat_z(utcnow()), "tiers": rows}
