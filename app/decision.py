"""The one line branch staff act on: approve, review or do not proceed.

Do not proceed on a sanctions hard deny, high fraud risk, unverified
identity or a failed sanctions check — whatever else the claims say, and
whatever PASSID's own recommendation is. A token that did not verify for any
other reason is not a customer we have verified either.

Shared by the branch counter (the line staff act on) and the review queue
(`app.review`: a "review" verdict is what lands in it), so it lives beside
neither blueprint: `app.verifications` needs it at record time and must not
import a blueprint package.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from app.passid import DenyReason

Verdict = Literal["approve", "review", "do_not_proceed"]

# Keyed by DenyReason, a StrEnum: the reason as stored (a plain string) finds its member's entry.
STAFF_DENY_REASONS: dict[str, str] = {
    DenyReason.TOKEN_NOT_FOUND: "Token not found. Ask the customer to create a new share in the PASSID app.",
    DenyReason.TOKEN_EXPIRED: "Token expired. Ask the customer to create a fresh share.",
    DenyReason.TOKEN_REVOKED: "The customer revoked this token. Ask for a new share.",
    DenyReason.TOKEN_ALREADY_USED: "This one-time token was already used. Ask for a new share.",
    DenyReason.INSTITUTION_MISMATCH: "This token was issued for a different institution. Ask for a new share for us.",
    DenyReason.HARD_DENY_SANCTIONS_MATCH: "Sanctions watch-list match (OFAC/EU/UN). Do not proceed; do not tell the "
    "customer why — follow your escalation procedure.",
}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def headline(self) -> str:
        return {"approve": "Approve", "review": "Review", "do_not_proceed": "Do not proceed"}[self.verdict]


def counter_decision(
    *, verified: bool, deny_reason: str | None, claims: dict[str, Any] | None, recommendation: str | None
) -> Decision:
    if not verified:
        reason = STAFF_DENY_REASONS.get(deny_reason or "", f"Not verified ({deny_reason or 'unknown reason'}).")
        return Decision("do_not_proceed", (reason,))
    claims = claims or {}
    stop = []
    if claims.get("fraud_risk") == "high":
        stop.append("Fraud risk is high.")
    if claims.get("identity_verified") is False:
        stop.append("Identity is not verified.")
    if claims.get("sanctions_clear") is False:
        stop.append("Sanctions check is not clear.")
    if stop:
        return Decision("do_not_proceed", tuple(stop))
    review = []
    if recommendation == "review":
        review.append("PASSID recommends a manual review.")
    if claims.get("fraud_risk") == "medium":
        review.append("Fraud risk is medium.")
    if claims.get("income_verified") is False:
        review.append("Income is not verified.")
    if review:
        return Decision("review", tuple(review))
    return Decision("approve", ("Verified with PASSID; no warning signs.",))


class ReviewStatus(StrEnum):
    """Where a verification stands in the review queue; a row that never needed a review has none (NULL).

    Stored in clear on `verification.review_status` (a status, not a claim), so the queue and the
    history's filter are plain indexed queries whatever encryption the claims are under.
    """

    PENDING = "pending"  # its verdict was "review": waiting for an analyst
    PROCEED = "proceed"
    DO_NOT_PROCEED = "do_not_proceed"


REVIEW_DECISIONS: tuple[ReviewStatus, ...] = (ReviewStatus.PROCEED, ReviewStatus.DO_NOT_PROCEED)


def review_status_at_record(
    *, verified: bool, deny_reason: str | None, claims: dict[str, Any] | None, recommendation: str | None
) -> ReviewStatus | None:
    """PENDING exactly when the counter would say "Review", else None: the queue and the counter never disagree.

    Decided once, when the verification is recorded, from the claims still in clear in hand: the
    queue itself then needs no claim (they may be encrypted, or erased by retention, by the time an
    analyst looks).
    """
    verdict = counter_decision(
        verified=verified, deny_reason=deny_reason, claims=claims, recommendation=recommendation
    ).verdict
    return ReviewStatus.PENDING if verdict == "review" else None
