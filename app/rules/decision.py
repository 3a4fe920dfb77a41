"""The app's one verdict on a verification: approve, review or decline, with the reasons as codes.

Decided once, when the verification is recorded (`app.rules.verifications.record`), from what PASSID
answered and the rules below, and stored with it: the widget, the branch counter, the review queue, the
console, the CLI and the backend API all read that stored verdict, so no screen can say "Verified" where
another says "Do not proceed". PASSID's own `recommendation` is an input, not the verdict.

The reasons are stable codes (`VerdictReason`) for the bank's backend and the console; staff read them as
sentences (`staff_reason`); the customer reads neither.

Which outcome each claim-based finding leads to is configuration (`PASSID_VERDICT_RULES`, with the defaults
in `DEFAULT_VERDICT_RULES`), and so is a minimum tier (`PASSID_MINIMUM_TIER`). A token PASSID did not verify,
a request the customer declined or let expire, is always a decline: there is no one verified to approve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from flask_babel import LazyString, lazy_gettext

from app.config import DEFAULT_VERDICT_RULES, TIERS
from app.passid import DenyReason

Verdict = Literal["approve", "review", "decline"]
VERDICTS: tuple[Verdict, ...] = ("approve", "review", "decline")
_RANK: dict[str, int] = {"approve": 0, "review": 1, "decline": 2}


class VerdictReason(StrEnum):
    """Why a verdict is what it is: the codes the API's `verdictReasons` and the console carry."""

    # Nothing verified: always a decline.
    TOKEN_NOT_FOUND = "token_not_found"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_ALREADY_USED = "token_already_used"
    INSTITUTION_MISMATCH = "institution_mismatch"
    SANCTIONS_MATCH = "sanctions_match"  # PASSID's HARD_DENY_SANCTIONS_MATCH: never approved, whatever the rules
    NOT_VERIFIED = "not_verified"  # a deny reason this app does not know
    CUSTOMER_DECLINED = "customer_declined"
    REQUEST_EXPIRED = "request_expired"
    # From the claims and PASSID's recommendation: each leads where PASSID_VERDICT_RULES says.
    SANCTIONS_NOT_CLEAR = "sanctions_not_clear"
    FRAUD_RISK_HIGH = "fraud_risk_high"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    FRAUD_RISK_MEDIUM = "fraud_risk_medium"
    INCOME_NOT_VERIFIED = "income_not_verified"
    PASSID_RECOMMENDS_REVIEW = "passid_recommends_review"
    CLAIM_OUT_OF_CONTRACT = "claim_out_of_contract"  # a claim in a shape the contract does not allow
    TIER_BELOW_MINIMUM = "tier_below_minimum"
    # Approved: the one reason, so a verdict always says why.
    NO_WARNING_SIGNS = "no_warning_signs"


_DENIED: dict[str, VerdictReason] = {
    DenyReason.TOKEN_NOT_FOUND: VerdictReason.TOKEN_NOT_FOUND,
    DenyReason.TOKEN_EXPIRED: VerdictReason.TOKEN_EXPIRED,
    DenyReason.TOKEN_REVOKED: VerdictReason.TOKEN_REVOKED,
    DenyReason.TOKEN_ALREADY_USED: VerdictReason.TOKEN_ALREADY_USED,
    DenyReason.INSTITUTION_MISMATCH: VerdictReason.INSTITUTION_MISMATCH,
    DenyReason.HARD_DENY_SANCTIONS_MATCH: VerdictReason.SANCTIONS_MATCH,
}


@dataclass(frozen=True)
class VerdictRules:
    """Where each claim-based finding leads (a `Verdict` by reason code), and the lowest tier approved."""

    outcomes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VERDICT_RULES))
    minimum_tier: str | None = None

    @classmethod
    def from_settings(cls, rules: Mapping[str, str] | None, minimum_tier: str | None) -> VerdictRules:
        """The defaults with the configured outcomes laid over them (config checked the names and values)."""
        return cls({**DEFAULT_VERDICT_RULES, **(rules or {})}, minimum_tier or None)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]  # VerdictReason codes, in the order the rules found them

    @property
    def headline(self) -> str:
        """The verdict in the staff member's language (`verdict` itself is a stable code)."""
        return str(VERDICT_NAMES[self.verdict])

    @property
    def staff_reasons(self) -> tuple[str, ...]:
        """The reasons as sentences staff read."""
        return tuple(staff_reason(code) for code in self.reasons)


def decide(
    *, status: str, deny_reason: str | None, claims: dict[str, Any] | None, recommendation: str | None,
    rules: VerdictRules | None = None,
) -> Decision:
    """The verdict on a finished verification (`status` a FinalStatus value)."""
    if status == "declined":
        return Decision("decline", (VerdictReason.CUSTOMER_DECLINED,))
    if status == "expired":
        return Decision("decline", (VerdictReason.REQUEST_EXPIRED,))
    if status != "completed":
        return Decision("decline", (_DENIED.get(deny_reason or "", VerdictReason.NOT_VERIFIED),))
    return _decide_on_claims(claims or {}, recommendation, rules or VerdictRules())


def _decide_on_claims(claims: dict[str, Any], recommendation: str | None, rules: VerdictRules) -> Decision:
    found = [reason for reason, present in _findings(claims, recommendation, rules.minimum_tier) if present]
    led = [(reason, rules.outcomes.get(reason, DEFAULT_VERDICT_RULES.get(reason, "review"))) for reason in found]
    led = [(reason, outcome) for reason, outcome in led if outcome != "approve"]  # a finding the bank ignores
    if not led:
        return Decision("approve", (VerdictReason.NO_WARNING_SIGNS,))
    verdict: Verdict = "decline" if any(outcome == "decline" for _, outcome in led) else "review"
    # The reasons that decided it first, then the rest: the first reason is the one to act on.
    ordered = sorted(led, key=lambda item: -_RANK[item[1]])
    return Decision(verdict, tuple(reason for reason, _ in ordered))


def _findings(claims: dict[str, Any], recommendation: str | None,
              minimum_tier: str | None) -> list[tuple[VerdictReason, bool]]:
    unreadable = unreadable_claims(claims)
    tier = claims.get("tier")
    return [
        (VerdictReason.SANCTIONS_NOT_CLEAR, claims.get("sanctions_clear") is False),
        (VerdictReason.FRAUD_RISK_HIGH, claims.get("fraud_risk") == "high"),
        (VerdictReason.IDENTITY_NOT_VERIFIED, claims.get("identity_verified") is False),
        (VerdictReason.FRAUD_RISK_MEDIUM, claims.get("fraud_risk") == "medium"),
        (VerdictReason.INCOME_NOT_VERIFIED, claims.get("income_verified") is False),
        (VerdictReason.PASSID_RECOMMENDS_REVIEW, recommendation == "review"),
        # A claim PASSID sent in a shape the contract does not allow ("false" as text, null, "very high") is
        # never read as a pass: a person is approved only on values that say so.
        (VerdictReason.CLAIM_OUT_OF_CONTRACT, bool(unreadable)),
        (VerdictReason.TIER_BELOW_MINIMUM, minimum_tier is not None and _below(tier, minimum_tier)),
    ]


def _below(tier: Any, minimum: str) -> bool:
    """A tier worse than the minimum, or none to compare when a minimum is set (not read as a pass either)."""
    if not isinstance(tier, str) or tier not in TIERS:
        return True
    return TIERS.index(tier) > TIERS.index(minimum)


def stored_reasons(text: str | None) -> tuple[str, ...]:
    """The reason codes as stored (comma-separated) back as a tuple."""
    return tuple(code for code in (text or "").split(",") if code)


def storable_reasons(reasons: Iterable[str]) -> str:
    return ",".join(reasons)


# What staff read: the verdict and each reason in their language.
VERDICT_NAMES: dict[str, LazyString] = {
    "approve": lazy_gettext("Approve"),
    "review": lazy_gettext("Review"),
    "decline": lazy_gettext("Do not proceed"),
}

STAFF_REASONS: dict[str, LazyString] = {
    VerdictReason.TOKEN_NOT_FOUND: lazy_gettext(
        "Token not found. Ask the customer to create a new share in the PASSID app."),
    VerdictReason.TOKEN_EXPIRED: lazy_gettext("Token expired. Ask the customer to create a fresh share."),
    VerdictReason.TOKEN_REVOKED: lazy_gettext("The customer revoked this token. Ask for a new share."),
    VerdictReason.TOKEN_ALREADY_USED: lazy_gettext("This one-time token was already used. Ask for a new share."),
    VerdictReason.INSTITUTION_MISMATCH: lazy_gettext(
        "This token was issued for a different institution. Ask for a new share for us."),
    VerdictReason.SANCTIONS_MATCH: lazy_gettext(
        "Sanctions watch-list match (OFAC/EU/UN). Do not proceed; do not tell the customer why — follow your "
        "escalation procedure."),
    VerdictReason.NOT_VERIFIED: lazy_gettext("Not verified: PASSID gave a reason this app does not know."),
    VerdictReason.CUSTOMER_DECLINED: lazy_gettext("The customer declined to share."),
    VerdictReason.REQUEST_EXPIRED: lazy_gettext("The request expired before the customer answered."),
    VerdictReason.SANCTIONS_NOT_CLEAR: lazy_gettext("Sanctions check is not clear."),
    VerdictReason.FRAUD_RISK_HIGH: lazy_gettext("Fraud risk is high."),
    VerdictReason.IDENTITY_NOT_VERIFIED: lazy_gettext("Identity is not verified."),
    VerdictReason.FRAUD_RISK_MEDIUM: lazy_gettext("Fraud risk is medium."),
    VerdictReason.INCOME_NOT_VERIFIED: lazy_gettext("Income is not verified."),
    VerdictReason.PASSID_RECOMMENDS_REVIEW: lazy_gettext("PASSID recommends a manual review."),
    VerdictReason.CLAIM_OUT_OF_CONTRACT: lazy_gettext("PASSID sent a claim value that cannot be read."),
    VerdictReason.TIER_BELOW_MINIMUM: lazy_gettext("The tier is below the minimum this bank accepts."),
    VerdictReason.NO_WARNING_SIGNS: lazy_gettext("Verified with PASSID; no warning signs."),
}


def staff_reason(code: str) -> str:
    """A reason code as a sentence staff read; a code this version does not know, as itself."""
    known = STAFF_REASONS.get(code)
    return str(known) if known is not None else code


def recommendation_name(code: str) -> str | None:
    """PASSID's recommendation in the staff member's language; None for a code this app has no word for
    (the page then shows the code itself, marked as a code). PASSID's codes are the verdicts' own words."""
    name = VERDICT_NAMES.get(code)
    return str(name) if name is not None and code != "decline" else None


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


def review_status_for(verdict: str) -> ReviewStatus | None:
    """PENDING exactly when the verdict is "review", from whatever channel: the queue and every screen agree.

    Decided once, when the verification is recorded, from the claims still in clear in hand: the
    queue itself then needs no claim (they may be encrypted, or erased by retention, by the time an
    analyst looks).
    """
    return ReviewStatus.PENDING if verdict == "review" else None
