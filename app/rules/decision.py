"""The one line branch staff act on: approve, review or do not proceed.

Do not proceed on a sanctions hard deny, high fraud risk, unverified
identity or a failed sanctions check — whatever else the claims say, and
whatever PASSID's own recommendation is. A token that did not verify for any
other reason is not a customer we have verified either.

Shared by the branch counter (the line staff act on) and the review queue
(`app.rules.review`: a "review" verdict is what lands in it), so it lives beside
neither blueprint: `app.rules.verifications` needs it at record time and must not
import a blueprint package.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _

from app.passid import DenyReason

Verdict = Literal["approve", "review", "do_not_proceed"]

# Keyed by DenyReason, a StrEnum: the reason as stored (a plain string) finds its member's entry.
STAFF_DENY_REASONS: dict[str, LazyString] = {
    DenyReason.TOKEN_NOT_FOUND: lazy_gettext(
        "Token not found. Ask the customer to create a new share in the PASSID app."),
    DenyReason.TOKEN_EXPIRED: lazy_gettext("Token expired. Ask the customer to create a fresh share."),
    DenyReason.TOKEN_REVOKED: lazy_gettext("The customer revoked this token. Ask for a new share."),
    DenyReason.TOKEN_ALREADY_USED: lazy_gettext("This one-time token was already used. Ask for a new share."),
    DenyReason.INSTITUTION_MISMATCH: lazy_gettext(
        "This token was issued for a different institution. Ask for a new share for us."),
    DenyReason.HARD_DENY_SANCTIONS_MATCH: lazy_gettext(
        "Sanctions watch-list match (OFAC/EU/UN). Do not proceed; do not tell the customer why — follow your "
        "escalation procedure."),
}


# The verdicts as staff read them. PASSID's own `recommendation` uses the same codes ("approve", "review"),
# so a verification's page names it with these words too.
VERDICT_NAMES: dict[str, LazyString] = {
    "approve": lazy_gettext("Approve"),
    "review": lazy_gettext("Review"),
    "do_not_proceed": lazy_gettext("Do not proceed"),
}


def recommendation_name(code: str) -> str | None:
    """PASSID's recommendation in the staff member's language; None for a code this app has no word for
    (the page then shows the code itself, marked as a code)."""
    name = VERDICT_NAMES.get(code)
    return str(name) if name is not None else None


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def headline(self) -> str:
        """The verdict in the staff member's language (`verdict` itself is a stable code)."""
        return str(VERDICT_NAMES[self.verdict])


def counter_decision(
    *, verified: bool, deny_reason: str | None, claims: dict[str, Any] | None, recommendation: str | None
) -> Decision:
    if not verified:
        known = STAFF_DENY_REASONS.get(deny_reason or "")
        reason = str(known) if known else _("Not verified (%(reason)s).", reason=deny_reason or _("unknown reason"))
        return Decision("do_not_proceed", (reason,))
    claims = claims or {}
    stop = []
    if claims.get("fraud_risk") == "high":
        stop.append(_("Fraud risk is high."))
    if claims.get("identity_verified") is False:
        stop.append(_("Identity is not verified."))
    if claims.get("sanctions_clear") is False:
        stop.append(_("Sanctions check is not clear."))
    if stop:
        return Decision("do_not_proceed", tuple(stop))
    review = []
    if recommendation == "review":
        review.append(_("PASSID recommends a manual review."))
    if claims.get("fraud_risk") == "medium":
        review.append(_("Fraud risk is medium."))
    if claims.get("income_verified") is False:
        review.append(_("Income is not verified."))
    # A claim PASSID sent in a shape the contract does not allow ("false" as text, null, "very high") is
    # never read as a pass: a person is approved only on values that say so.
    for name in unreadable_claims(claims):
        review.append(_("PASSID sent a value for %(claim)s that cannot be read.", claim=name))
    if review:
        return Decision("review", tuple(review))
    return Decision("approve", (_("Verified with PASSID; no warning signs."),))


YES_NO_CLAIMS = ("identity_verified", "sanctions_clear", "income_verified")
FRAUD_RISKS = ("low", "medium", "high")


def unreadable_claims(claims: dict[str, Any]) -> list[str]:
    """The claims present whose value is not one the contract allows (true/false; low, medium or high)."""
    names = [name for name in YES_NO_CLAIMS if name in claims and not isinstance(claims[name], bool)]
    if "fraud_risk" in claims and claims["fraud_risk"] not in FRAUD_RISKS:
        names.append("fraud_risk")
    return names


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
