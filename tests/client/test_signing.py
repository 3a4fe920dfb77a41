"""Webhook signatures, checked against an HMAC computed independently here."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from app.passid import (
    MalformedResponse,
    SignatureFailure,
    WebhookSignatureError,
    parse_webhook_event,
    read_webhook_event,
    sign_payload,
    verify_webhook_signature,
)

SECRET = "whsec_0123456789abcdef"
BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "verification.completed",
        "createdAt": "2026-11-25T22:18:00Z",
        "apiVersion": 1,
        "livemode": False,
        "data": {"token": "KE8V-3TXY-Z72L", "claims": {"tier": "A"}},
        "test": True,
    },
    separators=(",", ":"),
).encode()


def reference_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_sign_payload_matches_an_independent_hmac() -> None:
    assert sign_payload(BODY, SECRET) == reference_signature(BODY, SECRET)
    # Fixed vector, so the test does not only compare the code with itself.
    assert sign_payload(b"hello", "secret") == (
        "sha256=88aab3ede8d3adf94d26ab90d3bafd4a2083070c3bcce9c014ee04a443847c0b"
    )


def test_correct_signature_is_accepted() -> None:
    verify_webhook_signature(BODY, reference_signature(BODY, SECRET), [SECRET])


def test_upper_case_hex_is_accepted() -> None:
    digest = reference_signature(BODY, SECRET).removeprefix("sha256=").upper()
    verify_webhook_signature(BODY, "sha256=" + digest, SECRET)


def test_tampered_byte_is_rejected() -> None:
    header = reference_signature(BODY, SECRET)
    tampered = BODY.replace(b'"tier":"A"', b'"tier":"B"')
    assert tampered != BODY
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook_signature(tampered, header, SECRET)


def test_reserialised_json_is_rejected() -> None:
    header = reference_signature(BODY, SECRET)
    with pytest.raises(WebhookSignatureError):
        verify_webhook_signature(json.dumps(json.loads(BODY)).encode(), header, SECRET)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_rejected(header: str | None) -> None:
    with pytest.raises(WebhookSignatureError, match="missing") as error:
        verify_webhook_signature(BODY, header, SECRET)
    assert error.value.reason == "missing"


@pytest.mark.parametrize(
    "header",
    [
        "sha1=" + hashlib.sha1(BODY).hexdigest(),  # noqa: S324 - a deliberately wrong algorithm
        hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),  # no prefix
        "sha256=" + "z" * 64,  # not hex
        "sha256=" + "ab" * 16,  # too short
        "sha256=",
    ],
    ids=["sha1", "no-prefix", "non-hex", "short", "empty-digest"],
)
def test_malformed_header_is_rejected(header: str) -> None:
    with pytest.raises(WebhookSignatureError, match="malformed") as error:
        verify_webhook_signature(BODY, header, SECRET)
    assert error.value.reason == "malformed"


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError) as error:
        verify_webhook_signature(BODY, reference_signature(BODY, "another-secret-value"), SECRET)
    assert error.value.reason == "mismatch"


def test_second_secret_of_a_rotation_list_is_accepted() -> None:
    verify_webhook_signature(BODY, reference_signature(BODY, SECRET), ["old-secret-value-1234", SECRET])


def test_comma_separated_secret_string_is_accepted() -> None:
    header = reference_signature(BODY, SECRET)
    verify_webhook_signature(BODY, header, f"old-secret-value-1234, {SECRET}")


def test_no_configured_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        verify_webhook_signature(BODY, reference_signature(BODY, SECRET), " , ")


def test_text_body_is_refused_because_it_may_have_been_reencoded() -> None:
    with pytest.raises(TypeError):
        verify_webhook_signature(BODY.decode(), reference_signature(BODY, SECRET), SECRET)  # type: ignore[arg-type]


def test_parse_webhook_event_verifies_then_parses_the_envelope() -> None:
    event = parse_webhook_event(BODY, reference_signature(BODY, SECRET), SECRET)
    assert (event.id, event.type, event.api_version, event.livemode, event.test) == (
        "evt_1",
        "verification.completed",
        1,
        False,
        True,
    )
    assert event.created_at == datetime(2026, 11, 25, 22, 18, tzinfo=UTC)
    assert event.data["token"] == "KE8V-3TXY-Z72L"


@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, SignatureFailure.MISSING), ("sha256=" + "z" * 64, SignatureFailure.MALFORMED),
     (reference_signature(BODY, "another-secret-value"), SignatureFailure.MISMATCH)],
)
def test_the_one_call_a_receiver_makes_raises_with_a_typed_reason(header: str | None, reason: SignatureFailure) -> None:
    with pytest.raises(WebhookSignatureError) as error:
        parse_webhook_event(BODY, header, [SECRET])
    assert error.value.reason is reason and error.value.reason == reason.value


def test_parse_webhook_event_checks_the_signature_first() -> None:
    with pytest.raises(WebhookSignatureError):
        parse_webhook_event(b"not json at all", reference_signature(BODY, SECRET), SECRET)


def test_signed_but_malformed_envelope_is_malformed_response() -> None:
    body = json.dumps({"id": "evt_1", "type": "outcome.reported"}).encode()
    with pytest.raises(MalformedResponse, match="createdAt"):
        parse_webhook_event(body, reference_signature(body, SECRET), SECRET)


def test_event_without_test_flag_is_not_a_test() -> None:
    envelope = json.loads(BODY)
    del envelope["test"]
    body = json.dumps(envelope).encode()
    assert parse_webhook_event(body, reference_signature(body, SECRET), SECRET).test is False


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"id": "evt_1", "data": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001, b"[" * 40 + b"]" * 40],
    ids=["100k open brackets", "5000 deep", "40 deep"],
)
def test_a_signed_body_nested_too_deep_is_malformed_not_a_recursion_error(body: bytes) -> None:
    with pytest.raises(MalformedResponse, match="nest"):
        parse_webhook_event(body, reference_signature(body, SECRET), SECRET)


def test_read_webhook_event_parses_an_already_verified_body_the_same_way() -> None:
    assert read_webhook_event(BODY) == parse_webhook_event(BODY, reference_signature(BODY, SECRET), SECRET)
    with pytest.raises(MalformedResponse, match="nest"):
        read_webhook_event(b"[" * 100_000)
