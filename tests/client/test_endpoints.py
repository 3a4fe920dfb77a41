"""What each method sends and how it reads the answer, against canned contract answers."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import app.passid
from app.passid import (
    DeliveryStatus,
    DenyReason,
    Outcome,
    PassidClient,
    Permission,
    RequestStatus,
    Unauthorized,
)

from .conftest import API_KEY, FakePassid, Reply

WHEN = "2026-11-25T22:18:00Z"
WHEN_DT = datetime(2026, 11, 25, 22, 18, tzinfo=UTC)
ALL_PERMISSIONS = [p.value for p in Permission]
PUBLIC = {
    "requestId": "req_abc",
    "status": "pending",
    "institutionName": "Acme Lending",
    "permissions": ["full_score", "fraud_risk"],
    "expiresAt": WHEN,
    "secondsRemaining": 512,
}


# --- verify ---------------------------------------------------------------------------


def test_verify_sends_a_fresh_idempotency_key_each_call(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body={"verified": False, "token": "AAAA-BBBB-CCCC", "denyReason": "TOKEN_NOT_FOUND"})
    first = client.verify("AAAA-BBBB-CCCC")
    second = client.verify("AAAA-BBBB-CCCC")
    sent = [seen.headers["Idempotency-Key"] for seen in fake.seen]
    assert len(sent[0]) == 32 and int(sent[0], 16) >= 0
    assert sent[0] != sent[1]
    assert (first.idempotency_key, second.idempotency_key) == tuple(sent)
    assert fake.last.json == {"token": "AAAA-BBBB-CCCC"}
    assert fake.last.headers["X-Institution-Key"] == API_KEY
    assert (fake.last.method, fake.last.path) == ("POST", "/api/bridge/verify")


def test_verify_reuses_the_callers_idempotency_key(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body={"verified": False, "token": "AAAA-BBBB-CCCC", "denyReason": "TOKEN_NOT_FOUND"})
    result = client.verify("AAAA-BBBB-CCCC", idempotency_key="order-42-attempt")
    assert fake.last.headers["Idempotency-Key"] == "order-42-attempt"
    assert result.idempotency_key == "order-42-attempt"
    assert result.replayed is False


def test_verify_reads_the_replay_header(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(
        body={"verified": False, "token": "AAAA-BBBB-CCCC", "denyReason": "TOKEN_NOT_FOUND"},
        headers={"Idempotent-Replayed": "true"},
    )
    assert client.verify("AAAA-BBBB-CCCC").replayed is True


def test_approved_verify_is_fully_typed(client: PassidClient, fake: FakePassid) -> None:
    claims = {"fsi_score": 812, "tier": "A", "sanctions_clear": True}
    fake.reply = Reply(
        body={
            "verified": True,
            "token": "KE8V-3TXY-Z72L",
            "claims": claims,
            "permissions": ["full_score", "sanctions_clear"],
            "proofType": "passid.share.v1",
            "verifiedAt": "2026-11-25T23:18:00+01:00",
            "corridor": "KE→GB",
            "recommendation": "approve",
        }
    )
    result = client.verify("passid-ke8v-3txy-z72l")
    assert result.verified is True
    assert result.claims == claims
    assert result.permissions == (Permission.FULL_SCORE, Permission.SANCTIONS_CLEAR)
    assert result.verified_at == WHEN_DT and result.verified_at.tzinfo is UTC
    assert (result.corridor, result.recommendation, result.deny_reason) == ("KE→GB", "approve", None)


def test_deny_is_a_result_not_an_exception(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(
        body={
            "verified": False,
            "token": "TEST-SANC-0005",
            "denyReason": "HARD_DENY_SANCTIONS_MATCH",
            "message": "Do not proceed",
        }
    )
    result = client.verify("TEST-SANC-0005")
    assert result.verified is False
    assert result.deny_reason is DenyReason.HARD_DENY_SANCTIONS_MATCH
    assert result.message == "Do not proceed"
    assert result.claims is None and result.permissions == ()


# --- request bodies: only what the caller set ---------------------------------------------


def test_create_request_without_options_sends_an_empty_body(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(
        status=201,
        body={
            "requestId": "req_abc",
            "code": "AB3X-7YQM",
            "deepLink": "passid://verify-request?r=req_abc&i=inst_1",
            "expiresAt": WHEN,
            "permissions": ALL_PERMISSIONS,
            "status": "pending",
        },
    )
    created = client.create_request()
    assert fake.last.json == {}
    assert created.permissions == tuple(Permission)
    assert created.status is RequestStatus.PENDING
    assert created.expires_at == WHEN_DT


def test_create_request_sends_permission_values_and_ttl(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=400, body={"error": {"code": "VALIDATION_ERROR", "message": "x"}})
    with pytest.raises(app.passid.ValidationError):
        client.create_request(
            institution_name="Acme", permissions=[Permission.FULL_SCORE, "fraud_risk"], ttl_seconds=60
        )
    assert fake.last.json == {"institutionName": "Acme", "permissions": ["full_score", "fraud_risk"], "ttlSeconds": 60}


def test_a_single_permission_string_is_refused_before_sending(client: PassidClient, fake: FakePassid) -> None:
    with pytest.raises(TypeError):
        client.create_request(permissions="full_score")  # type: ignore[arg-type]
    assert fake.seen == []


def test_report_outcome_omits_unset_currency_and_notes(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(
        status=201,
        body={
            "outcomeId": "out_1",
            "token": "KE8V-3TXY-Z72L",
            "outcome": "repaid",
            "productType": "personal_loan",
            "amount": 2500,
            "currency": "USD",
            "fsiScoreAtDecision": 812,
            "tier": "A",
            "reportedAt": WHEN,
        },
    )
    receipt = client.report_outcome("KE8V-3TXY-Z72L", Outcome.REPAID, "personal_loan", 2500)
    assert fake.last.json == {
        "token": "KE8V-3TXY-Z72L",
        "outcome": "repaid",
        "productType": "personal_loan",
        "amount": 2500,
    }
    assert receipt.outcome is Outcome.REPAID
    assert receipt.fsi_score_at_decision == 812


def test_path_segments_are_url_quoted(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body=PUBLIC)
    client.get_request_by_code("AB3X/7YQM ?")
    assert fake.last.path == "/api/bridge/request/code/AB3X%2F7YQM%20%3F"


def test_dot_segments_are_refused_rather_than_resolved(client: PassidClient, fake: FakePassid) -> None:
    with pytest.raises(ValueError):
        client.get_request("..")
    assert fake.seen == []


# --- auth per endpoint ----------------------------------------------------------------------


def test_public_calls_send_no_institution_key(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body=PUBLIC)
    public = client.get_public_request("req_abc")
    assert fake.last.path == "/api/bridge/request/req_abc/public"
    assert "X-Institution-Key" not in fake.last.headers
    assert public.seconds_remaining == 512
    assert public.permissions == (Permission.FULL_SCORE, Permission.FRAUD_RISK)


def test_customer_calls_send_the_user_jwt_not_the_key(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body={"requestId": "req_abc", "status": "completed"})
    update = client.fulfill_request("req_abc", "jwt.abc.def", permissions=["full_score"])
    assert fake.last.headers["Authorization"] == "Bearer jwt.abc.def"
    assert "X-Institution-Key" not in fake.last.headers
    assert fake.last.json == {"permissions": ["full_score"]}
    assert update.status is RequestStatus.COMPLETED

    fake.reply = Reply(body={"requestId": "req_abc", "status": "declined"})
    client.decline_request("req_abc", "jwt.abc.def")
    assert (fake.last.path, fake.last.json) == ("/api/bridge/request/req_abc/decline", {})


def test_keyed_call_without_a_key_is_sent_so_the_server_answers_401(fake: FakePassid) -> None:
    fake.reply = Reply(status=401, body={"error": {"code": "UNAUTHORIZED", "message": "missing key"}})
    with PassidClient(fake.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.get_webhook()
    assert "X-Institution-Key" not in fake.last.headers


def test_share_token_lifecycle_requests(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body={"jwt": "user.jwt.sig"})
    jwt = client.sandbox_login("KE8V-3TXY-Z72L")
    assert (jwt, fake.last.json) == ("user.jwt.sig", {"profile": "KE8V-3TXY-Z72L"})

    fake.reply = Reply(status=201, body={"token": "PASSID-AAAA-BBBB-CCCC-DDDD", "expiresAt": WHEN})
    share = client.create_share_token(jwt, "inst_1", ttl_seconds=120)
    assert fake.last.json == {"institutionId": "inst_1", "ttlSeconds": 120}
    assert share.token == "PASSID-AAAA-BBBB-CCCC-DDDD"

    fake.reply = Reply(status=204, body=b"")
    assert client.revoke_share_token(jwt, share.token) is None
    assert (fake.last.method, fake.last.path) == ("DELETE", "/api/bridge/share/PASSID-AAAA-BBBB-CCCC-DDDD")


# --- workspace and reporting ------------------------------------------------------------------


def test_onboard_keeps_keys_out_of_repr(fake: FakePassid) -> None:
    fake.reply = Reply(
        status=201,
        body={
            "institutionId": "inst_1",
            "institutionName": "Acme",
            "sandboxKey": API_KEY,
            "liveKey": "sk_live_" + "z" * 32,
        },
    )
    with PassidClient(fake.url) as anonymous:
        result = anonymous.onboard("Acme")
    assert fake.last.json == {"institutionName": "Acme"}
    assert result.sandbox_key == API_KEY
    assert API_KEY not in repr(result)


def test_webhook_settings_and_deliveries(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body={"url": "https://acme.test/hook", "secretSet": True})
    config = client.set_webhook("https://acme.test/hook", "s" * 16)
    assert (fake.last.method, fake.last.json) == ("PUT", {"url": "https://acme.test/hook", "secret": "s" * 16})
    assert config.secret_set is True

    fake.reply = Reply(body={"url": None, "secretSet": False})
    assert client.get_webhook().url is None

    fake.reply = Reply(status=202, body={"eventId": "evt_1"})
    assert client.send_test_webhook() == "evt_1"

    fake.reply = Reply(
        body={
            "deliveries": [
                {
                    "eventId": "evt_2",
                    "type": "outcome.reported",
                    "status": "pending",
                    "attempts": 1,
                    "lastStatusCode": 500,
                    "nextAttemptAt": WHEN,
                },
                {
                    "eventId": "evt_1",
                    "type": "verification.completed",
                    "status": "delivered",
                    "attempts": 1,
                    "lastStatusCode": 200,
                    "nextAttemptAt": None,
                },
            ]
        }
    )
    pending, delivered = client.list_webhook_deliveries()
    assert pending.status is DeliveryStatus.PENDING and pending.next_attempt_at == WHEN_DT
    assert delivered.next_attempt_at is None


def test_cohorts_sends_only_given_filters(client: PassidClient, fake: FakePassid) -> None:
    row = {
        "tier": "A",
        "verifications": 3,
        "outcomesReported": 0,
        "byOutcome": {},
        "observedDefaultRate": None,
        "expectedDefaultRate": 0.02,
    }
    fake.reply = Reply(body={"generatedAt": WHEN, "tiers": [row]})
    report = client.cohorts(from_date=date(2026, 1, 1), product_type="card")
    assert fake.last.path == "/api/bridge/cohorts?from=2026-01-01&productType=card"
    assert report.tiers[0].observed_default_rate is None
    assert report.tiers[0].expected_default_rate == 0.02


def test_completed_request_details_carry_claims_and_token(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(
        body={
            "requestId": "req_abc",
            "status": "completed",
            "code": "AB3X-7YQM",
            "expiresAt": WHEN,
            "permissions": ["identity_verified"],
            "institutionName": "Acme",
            "claims": {"identity_verified": True},
            "verifiedAt": WHEN,
            "token": "KE8V-3TXY-Z72L",
        }
    )
    details = client.get_request("req_abc")
    assert details.claims == {"identity_verified": True}
    assert details.token == "KE8V-3TXY-Z72L"
    assert details.decline_reason is None


# --- isolation ---------------------------------------------------------------------------------


def test_package_imports_neither_flask_nor_the_rest_of_the_app() -> None:
    package_dir = Path(app.passid.__file__).parent
    for source in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{source.name} reaches outside app.passid"
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(("flask", "app")), f"{source.name} imports {name}"
