"""Outcome reports (validation, 404, 409, score from history) and the cohort table."""

from __future__ import annotations

import pytest

from app.passid import DuplicateOutcome, NotFound, Outcome, ValidationError
from tests.support.postgres import refused_before_storage


def test_an_outcome_takes_the_score_from_the_verification_history(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    client.verify("NG4M-XQRS-T88W")
    receipt = client.report_outcome("ng4m-xqrs-t88w", "repaid", "personal_loan", 2500, currency="gbp")
    assert receipt.outcome is Outcome.REPAID and receipt.token == "NG4M-XQRS-T88W"
    assert receipt.fsi_score_at_decision == 743 and receipt.tier == "B"
    assert receipt.currency == "GBP" and receipt.amount == 2500
    assert receipt.outcome_id.startswith("out_")


def test_a_second_outcome_for_the_same_token_is_409(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    client.verify("KE8V-3TXY-Z72L")
    client.report_outcome("KE8V-3TXY-Z72L", "no_default", "card", 100)
    with pytest.raises(DuplicateOutcome) as error:
        client.report_outcome("KE8V-3TXY-Z72L", "defaulted", "card", 100)
    assert error.value.status == 409 and error.value.code == "DUPLICATE_OUTCOME"


def test_a_token_not_verified_with_approval_is_404(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    client.verify("TEST-SANC-0005")
    for token in ("TEST-SANC-0005", "GH2P-ABCD-56KL"):
        with pytest.raises(NotFound) as error:
            client.report_outcome(token, "repaid", "loan", 1)
        assert error.value.code == "TOKEN_NOT_VERIFIED"


@refused_before_storage
@pytest.mark.parametrize(
    ("outcome", "amount", "kwargs", "field"),
    [
        ("bankrupt", 1, {}, "outcome"),
        ("repaid", -1, {}, "amount"),
        ("repaid", 1, {"currency": "POUNDS"}, "currency"),
        ("other", 1, {}, "notes"),
        ("repaid", 1, {"notes": "n" * 1001}, "notes"),
    ],
)
def test_outcome_fields_are_validated(institution, outcome, amount, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    client.verify("KE8V-3TXY-Z72L")
    with pytest.raises(ValidationError) as error:
        client.report_outcome("KE8V-3TXY-Z72L", outcome, "loan", amount, **kwargs)
    assert error.value.field == field


def test_other_with_notes_is_accepted(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    client.verify("GH2P-ABCD-56KL")
    receipt = client.report_outcome("GH2P-ABCD-56KL", "other", "loan", 0, notes="Customer emigrated")
    assert receipt.outcome is Outcome.OTHER and receipt.tier == "C"


def test_cohorts_have_all_five_tiers_with_observed_and_expected_rates(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    empty = client.cohorts()
    assert [row.tier for row in empty.tiers] == ["A", "B", "C", "D", "E"]
    assert all(row.verifications == 0 and row.observed_default_rate is None for row in empty.tiers)
    assert all(row.expected_default_rate is not None for row in empty.tiers)

    client.verify("KE8V-3TXY-Z72L")
    jwt = sandbox.sandbox_login("KE8V-3TXY-Z72L")
    for outcome in ("defaulted", "repaid", "repaid", "no_default"):
        token = sandbox.create_share_token(jwt, onboarding.institution_id).token
        assert client.verify(token).verified
        client.report_outcome(token, outcome, "loan", 1000)

    report = client.cohorts()
    tier_a = report.tiers[0]
    assert tier_a.verifications == 5 and tier_a.outcomes_reported == 4
    assert tier_a.by_outcome["defaulted"] == 1 and tier_a.by_outcome["repaid"] == 2
    assert tier_a.observed_default_rate == pytest.approx(0.25)
    assert client.cohorts(product_type="mortgage").tiers[0].outcomes_reported == 0
    assert client.cohorts(from_date="2001-01-01", to_date="2001-12-31").tiers[0].verifications == 0


@refused_before_storage
def test_cohort_dates_are_validated(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    with pytest.raises(ValidationError) as error:
        client.cohorts(from_date="yesterday")
    assert error.value.field == "from"
