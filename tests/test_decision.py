"""The counter's verdict never approves on a claim it cannot read.

PASSID's contract says the yes/no claims are true or false and fraud risk is low, medium or high.
Anything else ("false" as text, null, "very high") used to fall through every check to "approve";
a sanctions claim sent as the text "false" approved the person. Now it goes to review, and the
customer's summary leaves such a line out rather than ticking it.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.rules.customer_wording import claim_lines
from app.rules.decision import counter_decision

pytestmark = pytest.mark.databases("sqlite")

GOOD: dict[str, Any] = {"identity_verified": True, "sanctions_clear": True, "income_verified": True,
                        "fraud_risk": "low"}


def verdict(claims: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    decision = counter_decision(verified=True, deny_reason=None, claims=claims, recommendation="approve")
    return decision.verdict, decision.reasons


def test_readable_claims_decide_as_before() -> None:
    assert verdict(GOOD)[0] == "approve"
    assert verdict({**GOOD, "sanctions_clear": False})[0] == "do_not_proceed"
    assert verdict({**GOOD, "fraud_risk": "medium"})[0] == "review"
    assert verdict({"fsi_score": 700})[0] == "approve"  # claims not asked for are not there at all


@pytest.mark.parametrize(("name", "value"), [
    ("sanctions_clear", "false"), ("sanctions_clear", None), ("sanctions_clear", 0), ("sanctions_clear", "yes"),
    ("identity_verified", "false"), ("income_verified", []), ("fraud_risk", "very high"), ("fraud_risk", None),
])
def test_a_claim_that_cannot_be_read_is_never_approved(name: str, value: Any) -> None:
    result, reasons = verdict({**GOOD, name: value})
    assert result == "review"
    assert any(name in reason for reason in reasons), reasons


def test_the_customer_s_summary_leaves_out_a_yes_no_claim_it_cannot_read() -> None:
    lines = dict(claim_lines({"identity_verified": "false", "sanctions_clear": None, "income_verified": "yes"}))
    assert lines == {}
    assert dict(claim_lines({"identity_verified": True}))  # a real true still shows its line
