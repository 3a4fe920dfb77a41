"""The app's verdict, as a pure function: the rules, their configuration, and never an approval on a claim
it cannot read.

PASSID's contract says the yes/no claims are true or false and fraud risk is low, medium or high.
Anything else ("false" as text, null, "very high") used to fall through every check to "approve";
a sanctions claim sent as the text "false" approved the person. Now it goes to review, and the
customer's summary leaves such a line out rather than ticking it.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.rules.customer_wording import claim_lines
from app.rules.decision import VerdictRules, decide

pytestmark = pytest.mark.databases("sqlite")

GOOD: dict[str, Any] = {"identity_verified": True, "sanctions_clear": True, "income_verified": True,
                        "fraud_risk": "low"}


def verdict(claims: dict[str, Any], rules: VerdictRules | None = None,
            recommendation: str = "approve") -> tuple[str, tuple[str, ...]]:
    decision = decide(status="completed", deny_reason=None, claims=claims, recommendation=recommendation,
                      rules=rules)
    return decision.verdict, decision.reasons


def test_readable_claims_decide_as_before() -> None:
    assert verdict(GOOD) == ("approve", ("no_warning_signs",))
    assert verdict({**GOOD, "sanctions_clear": False}) == ("decline", ("sanctions_not_clear",))
    assert verdict({**GOOD, "fraud_risk": "high"})[0] == "decline"
    assert verdict({**GOOD, "fraud_risk": "medium"}) == ("review", ("fraud_risk_medium",))
    assert verdict({"fsi_score": 700})[0] == "approve"  # claims not asked for are not there at all


def test_the_sandbox_s_tier_c_profile_goes_to_review_for_each_of_its_findings() -> None:
    gh2p = {"identity_verified": False, "income_verified": True, "sanctions_clear": True, "fraud_risk": "medium"}
    assert verdict(gh2p, recommendation="review") == (
        "review", ("identity_not_verified", "fraud_risk_medium", "passid_recommends_review"))


def test_a_decline_reason_comes_before_the_review_reasons() -> None:
    assert verdict({**GOOD, "fraud_risk": "high", "identity_verified": False}) == (
        "decline", ("fraud_risk_high", "identity_not_verified"))


@pytest.mark.parametrize(("status", "deny_reason", "reason"), [
    ("denied", "HARD_DENY_SANCTIONS_MATCH", "sanctions_match"),
    ("denied", "TOKEN_EXPIRED", "token_expired"),
    ("denied", "SOMETHING_NEW", "not_verified"),
    ("declined", None, "customer_declined"),
    ("expired", None, "request_expired"),
])
def test_nothing_verified_is_always_a_decline_whatever_the_rules(status: str, deny_reason: str | None,
                                                                reason: str) -> None:
    lenient = VerdictRules.from_settings({name: "approve" for name in VerdictRules().outcomes}, None)
    decision = decide(status=status, deny_reason=deny_reason, claims=None, recommendation=None, rules=lenient)
    assert (decision.verdict, decision.reasons) == ("decline", (reason,))


def test_configured_rules_move_a_finding_and_approve_ignores_one() -> None:
    strict = VerdictRules.from_settings({"identity_not_verified": "decline"}, None)
    assert verdict({**GOOD, "identity_verified": False}, strict) == ("decline", ("identity_not_verified",))
    lenient = VerdictRules.from_settings({"income_not_verified": "approve"}, None)
    assert verdict({**GOOD, "income_verified": False}, lenient) == ("approve", ("no_warning_signs",))


@pytest.mark.parametrize(("tier", "expected"), [("A", "approve"), ("C", "approve"), ("D", "review"),
                                                (None, "review"), ("Z", "review")])
def test_a_minimum_tier_sends_worse_tiers_and_no_tier_to_review(tier: str | None, expected: str) -> None:
    claims = {**GOOD, **({"tier": tier} if tier else {})}
    assert verdict(claims, VerdictRules.from_settings(None, "C"))[0] == expected


@pytest.mark.parametrize(("name", "value"), [
    ("sanctions_clear", "false"), ("sanctions_clear", None), ("sanctions_clear", 0), ("sanctions_clear", "yes"),
    ("identity_verified", "false"), ("income_verified", []), ("fraud_risk", "very high"), ("fraud_risk", None),
])
def test_a_claim_that_cannot_be_read_is_never_approved(name: str, value: Any) -> None:
    result, reasons = verdict({**GOOD, name: value})
    assert result == "review"
    assert reasons == ("claim_out_of_contract",)


def test_the_customer_s_summary_leaves_out_a_yes_no_claim_it_cannot_read() -> None:
    lines = dict(claim_lines({"identity_verified": "false", "sanctions_clear": None, "income_verified": "yes"}))
    assert lines == {}
    assert dict(claim_lines({"identity_verified": True}))  # a real true still shows its line
