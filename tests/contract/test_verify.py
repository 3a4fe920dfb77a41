"""Verify: normalisation, fixed and deny tokens, real one-time tokens, idempotency."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from app.passid import DenyReason, NotFound, PassidClient, ValidationError
from tests.support.postgres import refused_before_storage

APPROVED = {
    "KE8V-3TXY-Z72L": ("A", 812, "KE→GB", "approve"),
    "NG4M-XQRS-T88W": ("B", 743, "NG→US", "approve"),
    "GH2P-ABCD-56KL": ("C", 671, "GH→EU", "review"),
}
DENIED = {
    "TEST-EXPD-0001": DenyReason.TOKEN_EXPIRED,
    "TEST-RVKD-0002": DenyReason.TOKEN_REVOKED,
    "TEST-USED-0003": DenyReason.TOKEN_ALREADY_USED,
    "TEST-MISM-0004": DenyReason.INSTITUTION_MISMATCH,
    "TEST-SANC-0005": DenyReason.HARD_DENY_SANCTIONS_MATCH,
}


@pytest.mark.parametrize("token", list(APPROVED))
def test_fixed_tokens_approve_with_their_profile_and_are_never_consumed(institution, token: str) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    tier, score, corridor, recommendation = APPROVED[token]
    for _ in range(2):
        result = client.verify(token)
        assert result.verified is True and result.deny_reason is None
        assert result.token == token
        assert result.claims["tier"] == tier and result.claims["fsi_score"] == score
        assert result.corridor == corridor and result.recommendation == recommendation
        assert result.proof_type == "passid.share.v1"
        assert len(result.permissions) == 7


def test_the_tier_c_profile_has_unverified_identity_and_medium_fraud_risk(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    claims = client.verify("GH2P-ABCD-56KL").claims
    assert claims["identity_verified"] is False and claims["fraud_risk"] == "medium"
    assert claims["income_verified"] is True and claims["sanctions_clear"] is True


@pytest.mark.parametrize("token", list(DENIED))
def test_each_deny_token_gives_its_reason(institution, token: str) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    result = client.verify(token)
    assert result.verified is False
    assert result.deny_reason is DENIED[token]
    assert result.claims is None and result.message


def test_an_unknown_well_formed_token_is_not_found(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    assert client.verify("ZZZZ-ZZZZ-ZZZZ-ZZZZ").deny_reason is DenyReason.TOKEN_NOT_FOUND


@pytest.mark.parametrize(
    "spelling",
    ["passid-ke8v 3txy z72l", "KE8V3TXYZ72L", "  PASSID-KE8V-3TXY-Z72L ", "ke8v-3txy-z72l", "KE8V 3TXY Z72L"],
)
def test_token_input_is_normalised_before_lookup(institution, spelling: str) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    result = client.verify(spelling)
    assert result.verified and result.token == "KE8V-3TXY-Z72L"


@refused_before_storage
@pytest.mark.parametrize("bad", ["", "KE8V", "KE8V-3TXY", "KE8V-3TXY-Z72L-ABCD-EFGH", "KE8V-3TX!-Z72L", "PASSID"])
def test_a_malformed_token_is_400_on_the_token_field(institution, bad: str) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    with pytest.raises(ValidationError) as error:
        client.verify(bad)
    assert error.value.field == "token"


# --- real one-time tokens ---------------------------------------------------------

def _mint(sandbox: PassidClient, institution_id: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    jwt = sandbox.sandbox_login("KE8V-3TXY-Z72L")
    share = sandbox.create_share_token(jwt, institution_id, **kwargs)
    assert share.token.startswith("PASSID-")
    return share.token


def test_a_one_time_token_approves_once_then_is_already_used(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    token = _mint(sandbox, onboarding.institution_id, permissions=["full_score", "sanctions_clear"])
    first = client.verify(token)
    assert first.verified and set(first.claims) == {
        "fsi_score", "fsi_low", "fsi_high", "tier", "confidence", "p_stable", "sanctions_clear",
    }
    assert client.verify(token).deny_reason is DenyReason.TOKEN_ALREADY_USED


def test_a_revoked_token_is_denied_as_revoked(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    jwt = sandbox.sandbox_login("KE8V-3TXY-Z72L")
    token = sandbox.create_share_token(jwt, onboarding.institution_id).token
    sandbox.revoke_share_token(jwt, token)
    assert client.verify(token).deny_reason is DenyReason.TOKEN_REVOKED


def test_revoking_someone_elses_token_is_not_found(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    onboarding, _ = institution
    token = _mint(sandbox, onboarding.institution_id)
    with pytest.raises(NotFound):
        sandbox.revoke_share_token(sandbox.sandbox_login("NG4M-XQRS-T88W"), token)


def test_an_expired_token_is_denied_as_expired(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    token = _mint(sandbox, onboarding.institution_id, ttl_seconds=1)
    time.sleep(1.3)
    assert client.verify(token).deny_reason is DenyReason.TOKEN_EXPIRED


def test_a_token_for_another_institution_is_a_mismatch(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    other = sandbox.onboard("Other Bank")
    token = _mint(sandbox, other.institution_id)
    assert client.verify(token).deny_reason is DenyReason.INSTITUTION_MISMATCH
    # ...and the mismatch did not consume it for its rightful owner.
    assert PassidClient(sandbox.base_url, other.sandbox_key).verify(token).verified


def test_minting_for_an_unknown_institution_is_refused(sandbox) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as error:
        sandbox.create_share_token(sandbox.sandbox_login("KE8V-3TXY-Z72L"), "inst_nope")
    assert error.value.field == "institutionId"


# --- idempotency --------------------------------------------------------------------------

def test_a_retried_verify_replays_the_first_answer_byte_for_byte(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    token = _mint(sandbox, onboarding.institution_id)
    key = uuid.uuid4().hex
    url = f"{sandbox.base_url}/api/bridge/verify"
    headers = {"X-Institution-Key": onboarding.sandbox_key, "Idempotency-Key": key}
    first = requests.post(url, json={"token": token}, headers=headers, timeout=10)
    time.sleep(1.1)  # a replay must not carry a fresh verifiedAt
    second = requests.post(url, json={"token": token}, headers=headers, timeout=10)
    assert first.status_code == second.status_code == 200
    assert first.json()["verified"] is True
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    # No second effect: the token was consumed once, so a new key sees it used.
    assert client.verify(token).deny_reason is DenyReason.TOKEN_ALREADY_USED


def test_the_client_replays_with_the_key_it_is_given(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    token = _mint(sandbox, onboarding.institution_id)
    first = client.verify(token, idempotency_key="order-42")
    again = client.verify(token, idempotency_key="order-42")
    assert first.verified and again.verified and again.replayed and not first.replayed
    assert again.claims == first.claims and again.verified_at == first.verified_at


def test_the_client_sends_a_fresh_key_when_none_is_given(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    first, second = client.verify("KE8V-3TXY-Z72L"), client.verify("KE8V-3TXY-Z72L")
    assert first.idempotency_key and second.idempotency_key and first.idempotency_key != second.idempotency_key
    assert not second.replayed


def test_a_reused_key_with_another_body_is_422(institution) -> None:  # type: ignore[no-untyped-def]
    from app.passid import IdempotencyKeyReused

    _, client = institution
    client.verify("KE8V-3TXY-Z72L", idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused) as error:
        client.verify("NG4M-XQRS-T88W", idempotency_key="k-1")
    assert error.value.status == 422 and error.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_keys_are_per_institution(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    other = PassidClient(sandbox.base_url, sandbox.onboard("Other").sandbox_key)
    client.verify("KE8V-3TXY-Z72L", idempotency_key="shared-key")
    result = other.verify("NG4M-XQRS-T88W", idempotency_key="shared-key")
    assert result.verified and not result.replayed


@refused_before_storage
def test_an_oversized_idempotency_key_is_refused(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    with pytest.raises(ValidationError) as error:
        client.verify("KE8V-3TXY-Z72L", idempotency_key="k" * 256)
    assert error.value.field == "Idempotency-Key"
