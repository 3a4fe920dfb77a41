"""How the client behaves when PASSID (or the network) misbehaves."""

from __future__ import annotations

import socket
import threading

import pytest

from app.passid import (
    ApiVersionMismatch,
    DuplicateOutcome,
    IdempotencyKeyReused,
    MalformedResponse,
    NotFound,
    PassidAPIError,
    PassidBusy,
    PassidClient,
    PassidError,
    PassidTimeout,
    PassidUnavailable,
    RateLimited,
    RequestGone,
    ServerError,
    Unauthorized,
    ValidationError,
)
from tests.support.waiting import PATIENCE, wait_until

from .conftest import API_KEY, FakePassid, Reply

# A delay no client timeout here comes near: the fake answers at teardown, so a test sees a timeout, not a race.
NEVER = 4 * PATIENCE

APPROVED = {
    "verified": True,
    "token": "KE8V-3TXY-Z72L",
    "claims": {"fsi_score": 812, "tier": "A"},
    "permissions": ["full_score"],
    "proofType": "passid.share.v1",
    "verifiedAt": "2026-11-25T22:18:00Z",
    "corridor": "KE→GB",
    "recommendation": "approve",
}


def error_body(code: str, message: str = "nope", field: str | None = None) -> dict:
    error = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


# --- transport failures --------------------------------------------------------


def test_answer_slower_than_read_timeout_is_passid_timeout(fake: FakePassid) -> None:
    """The fake holds its answer until teardown: a PassidTimeout means the client gave up without it."""
    fake.reply = Reply(body=APPROVED, delay=NEVER)
    with PassidClient(fake.url, API_KEY, timeout=0.3) as passid, pytest.raises(PassidTimeout):
        passid.verify("KE8V-3TXY-Z72L")
    assert len(fake.seen) == 1  # and did not send it again after the read timeout


def test_body_that_stalls_halfway_is_passid_timeout_not_unavailable(fake: FakePassid) -> None:
    fake.reply = Reply(body=APPROVED, stall_body=True)
    with PassidClient(fake.url, API_KEY, timeout=0.3) as passid, pytest.raises(PassidTimeout):
        passid.get_webhook()


def test_timed_out_verify_carries_the_key_to_retry_with(fake: FakePassid) -> None:
    fake.reply = Reply(body=APPROVED, delay=5)
    with PassidClient(fake.url, API_KEY, timeout=0.3) as passid, pytest.raises(PassidTimeout) as caught:
        passid.verify("KE8V-3TXY-Z72L")
    assert caught.value.idempotency_key == fake.last.headers["Idempotency-Key"]


def test_past_the_in_flight_cap_a_call_is_refused_at_once_and_the_slot_comes_back(fake: FakePassid) -> None:
    """The bulkhead: two threads share a cap of one; while the first waits on a slow PASSID the
    second is not sent; once the first has timed out, calls go through again."""
    fake.reply = Reply(body=APPROVED, delay=NEVER)
    cap = threading.BoundedSemaphore(1)
    slow = PassidClient(fake.url, API_KEY, timeout=1.0, in_flight=cap)
    other = PassidClient(fake.url, API_KEY, timeout=1.0, in_flight=cap)
    outcome: list[BaseException] = []

    def wait_on_slow_passid() -> None:
        try:
            slow.verify("KE8V-3TXY-Z72L")
        except PassidError as error:
            outcome.append(error)

    waiting = threading.Thread(target=wait_on_slow_passid)
    waiting.start()
    wait_until(lambda: fake.seen, "the first call reached PASSID", every=0.01)
    with pytest.raises(PassidBusy):
        other.get_webhook()
    assert len(fake.seen) == 1  # the second call was never sent
    waiting.join(timeout=PATIENCE)
    assert [type(error) for error in outcome] == [PassidTimeout]
    fake.reply = Reply(body={"url": None, "secretSet": False})
    assert other.get_webhook().url is None
    other.close()
    slow.close()


def test_refused_connection_is_passid_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with PassidClient(f"http://127.0.0.1:{port}", API_KEY, timeout=1) as passid, pytest.raises(PassidUnavailable):
        passid.get_webhook()


def test_connection_cut_before_the_declared_length_is_passid_unavailable(fake: FakePassid) -> None:
    fake.reply = Reply(body={"url": None, "secretSet": False}, declared_length=500)
    with pytest.raises(PassidUnavailable):
        PassidClient(fake.url, API_KEY, timeout=1).get_webhook()


def test_every_failure_is_a_passid_error() -> None:
    for cls in (PassidTimeout, PassidUnavailable, MalformedResponse, ApiVersionMismatch, PassidAPIError):
        assert issubclass(cls, PassidError)


# --- malformed answers --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>hello</html>", id="html"),
        pytest.param(b'{"verified": true, "token": "KE8V', id="truncated-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"verified": NaN}', id="nan"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
    ],
)
def test_non_json_answer_is_malformed_response(client: PassidClient, fake: FakePassid, body: bytes) -> None:
    fake.reply = Reply(body=body)
    with pytest.raises(MalformedResponse):
        client.verify("KE8V-3TXY-Z72L")


def test_json_list_instead_of_object_is_malformed_response(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body=[APPROVED])
    with pytest.raises(MalformedResponse, match="expected a JSON object"):
        client.verify("KE8V-3TXY-Z72L")


@pytest.mark.parametrize("missing", ["verified", "token", "claims", "verifiedAt", "permissions"])
def test_missing_field_is_malformed_response(client: PassidClient, fake: FakePassid, missing: str) -> None:
    fake.reply = Reply(body={k: v for k, v in APPROVED.items() if k != missing})
    with pytest.raises(MalformedResponse, match=missing):
        client.verify("KE8V-3TXY-Z72L")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("verified", "true"),  # a truthy string must never read as approval
        ("verified", 1),
        ("token", 42),
        ("claims", ["fsi_score"]),
        ("permissions", "full_score"),
        ("permissions", ["superpowers"]),
        ("verifiedAt", "yesterday"),
        ("verifiedAt", "2026-11-25T22:18:00"),  # no zone
        ("verifiedAt", 1764109080),
    ],
)
def test_wrong_type_is_malformed_response(client: PassidClient, fake: FakePassid, field: str, value: object) -> None:
    fake.reply = Reply(body={**APPROVED, field: value})
    with pytest.raises(MalformedResponse):
        client.verify("KE8V-3TXY-Z72L")


def test_unknown_deny_reason_is_malformed_response(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(body={"verified": False, "token": "TEST-0000-0000", "denyReason": "MAYBE", "message": "?"})
    with pytest.raises(MalformedResponse):
        client.verify("TEST-0000-0000")


def test_boolean_count_is_malformed_response(client: PassidClient, fake: FakePassid) -> None:
    delivery = {"eventId": "evt_1", "type": "verification.completed", "status": "failed", "attempts": True}
    fake.reply = Reply(body={"deliveries": [delivery]})
    with pytest.raises(MalformedResponse, match="attempts"):
        client.list_webhook_deliveries()


def test_completed_request_without_claims_is_malformed_response(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(
        body={
            "requestId": "req_1",
            "status": "completed",
            "code": "AB3X-7YQM",
            "expiresAt": "2026-11-25T22:18:00Z",
            "permissions": ["full_score"],
            "institutionName": "Acme",
            "verifiedAt": "2026-11-25T22:10:00Z",
            "token": "KE8V-3TXY-Z72L",
        }
    )
    with pytest.raises(MalformedResponse, match="claims"):
        client.get_request("req_1")


# --- API version header --------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "2", "", "1.1"])
def test_missing_or_wrong_version_header_is_api_version_mismatch(
    client: PassidClient, fake: FakePassid, version: str | None
) -> None:
    fake.reply = Reply(body=APPROVED, version=version)
    with pytest.raises(ApiVersionMismatch) as caught:
        client.verify("KE8V-3TXY-Z72L")
    assert caught.value.received == version


def test_error_status_without_version_header_is_api_version_mismatch(client: PassidClient, fake: FakePassid) -> None:
    # A 404 with no header usually means the base URL points at something else.
    fake.reply = Reply(status=404, body="<h1>Not Found</h1>", version=None)
    with pytest.raises(ApiVersionMismatch):
        client.get_request("req_1")


def test_error_with_another_version_is_api_version_mismatch(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=400, body=error_body("VALIDATION_ERROR"), version="2")
    with pytest.raises(ApiVersionMismatch):
        client.verify("x")


def test_gateway_5xx_without_version_header_is_server_error(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=502, body="<html>Bad Gateway</html>", version=None)
    with pytest.raises(ServerError) as caught:
        client.get_webhook()
    assert caught.value.status == 502
    assert caught.value.code is None
    assert "502" in caught.value.message


# --- error statuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "VALIDATION_ERROR", ValidationError),
        (401, "UNAUTHORIZED", Unauthorized),
        (404, "NOT_FOUND", NotFound),
        (404, "TOKEN_NOT_VERIFIED", NotFound),
        (409, "DUPLICATE_OUTCOME", DuplicateOutcome),
        (410, "REQUEST_EXPIRED", RequestGone),
        (410, "REQUEST_COMPLETED", RequestGone),
        (410, "REQUEST_DECLINED", RequestGone),
        (422, "IDEMPOTENCY_KEY_REUSED", IdempotencyKeyReused),
        (429, "RATE_LIMITED", RateLimited),
        (500, "INTERNAL", ServerError),
        (503, "UNAVAILABLE", ServerError),
    ],
)
def test_each_error_status_raises_its_exception_with_code_and_message(
    client: PassidClient, fake: FakePassid, status: int, code: str, cls: type[PassidAPIError]
) -> None:
    fake.reply = Reply(status=status, body=error_body(code, "human text"))
    with pytest.raises(cls) as caught:
        client.get_public_request("req_1")
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, "human text")
    assert caught.value.field is None


def test_validation_error_names_the_field(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=400, body=error_body("VALIDATION_ERROR", "bad token", field="token"))
    with pytest.raises(ValidationError) as caught:
        client.verify("???")
    assert caught.value.field == "token"
    assert "token" in str(caught.value)


def test_rate_limit_reads_retry_after(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=429, body=error_body("RATE_LIMITED"), headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        client.verify("KE8V-3TXY-Z72L")
    assert caught.value.retry_after == 7.0


def test_rate_limit_without_retry_after_leaves_it_none(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=429, body=error_body("RATE_LIMITED"))
    with pytest.raises(RateLimited) as caught:
        client.verify("KE8V-3TXY-Z72L")
    assert caught.value.retry_after is None


@pytest.mark.parametrize("body", [b"<html>teapot</html>", b'{"error": "bad"}', b'{"error": {"code": 7}}', b"[]", b""])
def test_error_body_off_contract_is_still_mapped_by_status(client: PassidClient, fake: FakePassid, body: bytes) -> None:
    fake.reply = Reply(status=400, body=body)
    with pytest.raises(ValidationError) as caught:
        client.create_request()
    assert caught.value.code is None
    assert caught.value.message == "HTTP 400 Bad Request"


def test_unexpected_status_is_the_base_api_error(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=418, body=error_body("TEAPOT", "short and stout"))
    with pytest.raises(PassidAPIError) as caught:
        client.get_webhook()
    assert type(caught.value) is PassidAPIError
    assert caught.value.code == "TEAPOT"


def test_redirect_is_not_followed_so_the_key_stays_home(client: PassidClient, fake: FakePassid) -> None:
    fake.reply = Reply(status=302, body=b"", headers={"Location": fake.url + "/elsewhere"})
    with pytest.raises(PassidAPIError) as caught:
        client.get_webhook()
    assert caught.value.status == 302
    assert [seen.path for seen in fake.seen] == ["/api/institution/webhook"]


def test_a_base_url_with_a_path_keeps_it_on_every_call(fake: FakePassid) -> None:
    """The embedded sandbox lives under `/sandbox`: GETs (sent past `requests`) and posts alike keep the prefix."""
    fake.reply = Reply(body={"url": None, "secretSet": False})
    with PassidClient(fake.url + "/sandbox/", API_KEY, timeout=5) as passid:
        passid.get_webhook()
        with pytest.raises(MalformedResponse):  # (not a cohort report: only the path matters here)
            passid.cohorts(from_date="2026-01-01", product_type="loan")
        fake.reply = Reply(body={"eventId": "evt_1"})
        passid.send_test_webhook()
    assert [seen.path for seen in fake.seen] == [
        "/sandbox/api/institution/webhook", "/sandbox/api/bridge/cohorts?from=2026-01-01&productType=loan",
        "/sandbox/api/institution/webhook/test"]
