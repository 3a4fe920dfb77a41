"""The QR flow's requests: create, read, public, by code, fulfil, decline, expiry."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from app.passid import (
    NotFound,
    PassidClient,
    Permission,
    RequestGone,
    RequestStatus,
    Unauthorized,
    ValidationError,
)
from tests.support.postgres import refused_before_storage

CODE = re.compile(r"^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{4}-[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{4}$")


def test_a_request_has_a_readable_code_a_deep_link_and_a_ten_minute_default_ttl(institution) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    created = client.create_request()
    assert created.request_id.startswith("req_") and len(created.request_id) >= 4 + 16
    assert CODE.match(created.code)
    assert created.deep_link == f"passid://verify-request?r={created.request_id}&i={onboarding.institution_id}"
    assert created.status is RequestStatus.PENDING
    assert set(created.permissions) == set(Permission)
    details = client.get_request(created.request_id)
    ttl = (details.expires_at - datetime.now(UTC)).total_seconds()
    assert 590 <= ttl <= 600
    assert details.institution_name == "Test Lender" and details.claims is None


def test_a_request_can_ask_for_some_permissions_and_another_name(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(
        institution_name="Acme Branch 7", permissions=["fraud_risk", "full_score"], ttl_seconds=120
    )
    assert created.permissions == (Permission.FULL_SCORE, Permission.FRAUD_RISK)
    assert client.get_request(created.request_id).institution_name == "Acme Branch 7"


@refused_before_storage
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"permissions": ["full_score", "shoe_size"]}, "permissions"),
        ({"permissions": []}, "permissions"),
        ({"ttl_seconds": 3601}, "ttlSeconds"),
        ({"ttl_seconds": 0}, "ttlSeconds"),
        ({"institution_name": "x" * 81}, "institutionName"),
    ],
)
def test_bad_request_fields_are_400_naming_the_field(institution, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    with pytest.raises(ValidationError) as error:
        client.create_request(**kwargs)
    assert error.value.field == field


def test_another_institutions_request_is_not_found(institution, sandbox: PassidClient) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request()
    other = sandbox.onboard("Other Bank")
    with pytest.raises(NotFound):
        PassidClient(sandbox.base_url, other.sandbox_key).get_request(created.request_id)


def test_the_public_view_and_the_code_lookup_agree_and_carry_no_claims(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(permissions=["full_score"])
    public = sandbox.get_public_request(created.request_id)
    assert public.status is RequestStatus.PENDING
    assert public.institution_name == "Test Lender"
    assert 0 < public.seconds_remaining <= 600
    for spelling in (created.code, created.code.replace("-", ""), created.code.lower()):
        assert sandbox.get_request_by_code(spelling).request_id == created.request_id
    with pytest.raises(NotFound):
        sandbox.get_public_request("req_doesnotexist")


def test_fulfilling_completes_the_request_with_the_profiles_claims(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(permissions=["full_score", "identity_verified", "fraud_risk"])
    jwt = sandbox.sandbox_login("NG4M-XQRS-T88W")
    answer = sandbox.fulfill_request(created.request_id, jwt, permissions=["full_score", "fraud_risk"])
    assert answer.status is RequestStatus.COMPLETED
    details = client.get_request(created.request_id)
    assert details.status is RequestStatus.COMPLETED
    assert details.claims == {
        "fsi_score": 743, "fsi_low": 719, "fsi_high": 767, "tier": "B", "confidence": 0.88, "p_stable": 0.9,
        "fraud_risk": "low",
    }
    assert details.verified_at is not None
    assert details.token and re.match(r"^([A-Z0-9]{4}-){3}[A-Z0-9]{4}$", details.token)
    with pytest.raises(RequestGone) as gone:
        sandbox.get_public_request(created.request_id)
    assert gone.value.code == "REQUEST_COMPLETED"
    with pytest.raises(RequestGone):
        sandbox.fulfill_request(created.request_id, jwt)


def test_fulfilling_with_permissions_not_requested_is_refused(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(permissions=["full_score"])
    jwt = sandbox.sandbox_login("KE8V-3TXY-Z72L")
    with pytest.raises(ValidationError) as error:
        sandbox.fulfill_request(created.request_id, jwt, permissions=["income_verified"])
    assert error.value.field == "permissions"


def test_fulfil_and_decline_need_a_valid_user_jwt(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request()
    for bad in ("", "not-a-jwt", _forged_jwt()):
        with pytest.raises(Unauthorized):
            sandbox.fulfill_request(created.request_id, bad)
        with pytest.raises(Unauthorized):
            sandbox.decline_request(created.request_id, bad)


def test_declining_records_the_reason(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request()
    jwt = sandbox.sandbox_login("GH2P-ABCD-56KL")
    assert sandbox.decline_request(created.request_id, jwt, reason="Not now").status is RequestStatus.DECLINED
    details = client.get_request(created.request_id)
    assert details.status is RequestStatus.DECLINED and details.decline_reason == "Not now"
    assert details.claims is None
    with pytest.raises(RequestGone) as gone:
        sandbox.get_request_by_code(created.code)
    assert gone.value.code == "REQUEST_DECLINED"


def test_a_pending_request_past_its_expiry_reads_expired(institution, sandbox) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    created = client.create_request(ttl_seconds=1)
    time.sleep(1.3)
    assert client.get_request(created.request_id).status is RequestStatus.EXPIRED
    with pytest.raises(RequestGone) as gone:
        sandbox.get_public_request(created.request_id)
    assert gone.value.code == "REQUEST_EXPIRED"
    with pytest.raises(RequestGone):
        sandbox.fulfill_request(created.request_id, sandbox.sandbox_login("KE8V-3TXY-Z72L"))


@refused_before_storage
def test_sandbox_login_accepts_only_the_three_profiles(sandbox: PassidClient) -> None:
    assert sandbox.sandbox_login("passid-ke8v-3txy-z72l").count(".") == 2
    with pytest.raises(ValidationError) as error:
        sandbox.sandbox_login("TEST-SANC-0005")
    assert error.value.field == "profile"


def _forged_jwt() -> str:
    import jwt

    claims = {"sub": "KE8V-3TXY-Z72L", "aud": "passid-app", "iss": "passid-sandbox"}
    return jwt.encode(claims, "guessed-by-an-attacker-who-has-no-secret", "HS256")

