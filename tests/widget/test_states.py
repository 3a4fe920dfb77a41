"""Which final state a finished verification shows, and which event the embedding page gets.

`states.final_view` is a plain function: no app, no request, no server.
"""

from __future__ import annotations

from typing import Any

from app.passid import DenyReason
from app.rules.decision import Decision
from app.rules.verifications import FinalStatus, Finished
from app.widget.options import WidgetOptions
from app.widget.states import STATES, StateView, final_view

EMBEDDED = WidgetOptions("Acme Lending", ("income_verified", "identity_verified"), "#0055ff", "https://shop.example")
STANDALONE = WidgetOptions("Acme Lending", ("income_verified", "identity_verified"), "#0055ff", None)


def finished(status: FinalStatus, **fields: Any) -> Finished:
    values: dict[str, Any] = {
        "result_id": "res_1",
        "status": status,
        "claims": None,
        "token": None,
        "request_id": None,
        "deny_reason": None,
        "decline_reason": None,
    }
    return Finished(**{**values, **fields})


APPROVED = Decision("approve", ("no_warning_signs",))


def test_a_completed_request_shows_success_with_its_claims_and_a_success_event() -> None:
    claims = {"income_verified": True, "income_band": "40-60k", "identity_verified": True}
    view = final_view(finished(FinalStatus.COMPLETED, claims=claims, request_id="req_1", decision=APPROVED), EMBEDDED)
    assert view == StateView(
        "success",
        {"claims": claims, "lines": [("Income verified (40-60k)", True), ("Identity verified", True)],
         "approved": True},
        {"type": "passid:success", "claims": claims, "resultId": "res_1", "requestId": "req_1"},
    )


def test_only_an_approve_verdict_is_shown_as_verified_and_the_event_is_the_same_for_every_verdict() -> None:
    claims = {"identity_verified": False}
    views = {verdict: final_view(finished(FinalStatus.COMPLETED, claims=claims, request_id="req_1",
                                          decision=Decision(verdict, ("identity_not_verified",))), EMBEDDED)
             for verdict in ("approve", "review", "decline")}
    assert {verdict: view.context["approved"] for verdict, view in views.items()} == {
        "approve": True, "review": False, "decline": False}
    assert views["approve"].event == views["review"].event == views["decline"].event
    assert "verdict" not in str(views["review"].event) and "identity_not_verified" not in str(views["review"].event)


def test_a_completed_token_check_names_its_token_in_the_event() -> None:
    view = final_view(finished(FinalStatus.COMPLETED, claims={}, token="KE8V-3TXY-Z72L"), EMBEDDED)
    assert view.event == {"type": "passid:success", "claims": {}, "resultId": "res_1", "token": "KE8V-3TXY-Z72L"}


def test_a_sanctions_deny_reads_like_any_other_failure_to_the_customer() -> None:
    view = final_view(finished(FinalStatus.DENIED, deny_reason=DenyReason.HARD_DENY_SANCTIONS_MATCH.value), EMBEDDED)
    assert view.state == "declined"
    assert view.context == {
        "message": "We can't complete this verification here. Please contact Acme Lending to continue your "
        "application.",
        "expired": False,
        "qr": False,
    }
    assert "sanction" not in view.context["message"].lower()
    # Today the embedding page still gets the real reason, as the guide's onDecline does.
    assert view.event == {"type": "passid:decline", "reason": "denied", "resultId": "res_1"}


def test_a_deny_reason_says_what_to_do_next() -> None:
    view = final_view(finished(FinalStatus.DENIED, deny_reason="TOKEN_ALREADY_USED"), STANDALONE)
    assert view.context["message"].startswith("That token has already been used")


def test_an_unknown_deny_reason_reads_as_a_plain_failure() -> None:
    view = final_view(finished(FinalStatus.DENIED, deny_reason="SOMETHING_NEW"), STANDALONE)
    assert view.context["message"] == "We couldn't verify that token. Please try again."


def test_expired_request_offers_generate_new_code() -> None:
    view = final_view(finished(FinalStatus.EXPIRED, request_id="req_1"), EMBEDDED)
    assert view == StateView(
        "declined",
        {"message": "This code has expired. Generate a new code to try again.", "expired": True, "qr": True},
        {"type": "passid:decline", "reason": "Request expired", "resultId": "res_1"},
    )


def test_a_request_declined_in_the_app_offers_to_start_again() -> None:
    view = final_view(finished(FinalStatus.DECLINED, request_id="req_1"), EMBEDDED)
    assert view == StateView(
        "declined",
        {
            "message": "The request was declined in the PASSID app. You can start again whenever you're ready.",
            "expired": False,
            "qr": True,
        },
        {"type": "passid:decline", "reason": "Request declined", "resultId": "res_1"},
    )


def test_outside_an_allowed_embed_no_state_sends_an_event() -> None:
    for status in FinalStatus:
        view = final_view(finished(status, claims={}, deny_reason="TOKEN_NOT_FOUND"), STANDALONE)
        assert view.event is None, status
        assert view.state in STATES


def test_the_customer_never_reads_the_bank_s_risk_assessment() -> None:
    claims = {"identity_verified": True, "fraud_risk": "low", "sanctions_clear": True, "income_verified": True}
    view = final_view(finished(FinalStatus.COMPLETED, claims=claims, token="KE8V-3TXY-Z72L", decision=APPROVED),
                      EMBEDDED)
    shown = " ".join(text for text, _ in view.context["lines"])
    assert "Identity verified" in shown and "Income verified" in shown
    assert "Fraud risk" not in shown and "sanctions" not in shown


def test_the_bank_chooses_the_customer_s_lines_and_its_risk_assessment_is_never_among_them() -> None:
    """PASSID_CUSTOMER_CLAIMS picks the lines (here no score badge, no identity line); fraud risk and sanctions
    stay off the screen even if a caller names them. The embedding page's event still carries every claim."""
    claims = {"fsi_score": 812, "tier": "A", "identity_verified": True, "savings_consistency": 88,
              "fraud_risk": "low", "sanctions_clear": True}
    view = final_view(finished(FinalStatus.COMPLETED, claims=claims, request_id="req_1", decision=APPROVED),
                      EMBEDDED, customer_claims=("savings_consistency", "fraud_risk", "sanctions_clear"))
    assert view.context["claims"] == {"savings_consistency": 88}  # what the badge and the lines are drawn from
    assert view.context["lines"] == [("Savings consistency 88 out of 100", None)]
    assert view.event is not None and view.event["claims"] == claims
    default = final_view(finished(FinalStatus.COMPLETED, claims=claims, request_id="req_1", decision=APPROVED),
                         EMBEDDED)
    assert default.context["claims"] == {"fsi_score": 812, "tier": "A", "identity_verified": True}
