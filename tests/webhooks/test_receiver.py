"""The institution's receiver: signatures, storage before 200, once-only handling, crash recovery."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from app.passid import sign_payload
from app.plumbing.encryption import Keyring
from app.webhooks.routes import delivery_attempt
from tests.conftest import provisioned_database
from tests.support.migrations import empty_database, flask_db
from tests.support.servers import (
    TEST_DATA_KEY,
    AppServer,
    base_env,
    migrate,
)

NEW, OLD = "whsec_new_secret_0123456789", "whsec_old_secret_0123456789"


def event(event_type: str = "verification.completed", **data: object) -> tuple[str, bytes]:
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = {
        "token": "KE8V-3TXY-Z72L",
        "claims": {"fsi_score": 812, "tier": "A"},
        "permissions": ["full_score"],
        "proofType": "passid.share.v1",
        "verifiedAt": "2026-11-25T22:18:00Z",
        "corridor": "KE→GB",
        "recommendation": "approve",
        **data,
    }
    envelope = {"id": event_id, "type": event_type, "createdAt": "2026-11-25T22:18:00Z",
                "apiVersion": 1, "livemode": False, "data": payload}
    # Deliberately odd spacing: the signature is over these bytes, not a re-serialisation.
    return event_id, json.dumps(envelope, indent=1, ensure_ascii=False).encode()


def deliver(server: AppServer, body: bytes, signature: str | None, event_id: str = "") -> requests.Response:
    headers = {"Content-Type": "application/json", "X-PASSID-Event-Id": event_id,
               "X-PASSID-Event-Type": "verification.completed", "X-PASSID-Delivery-Attempt": "1"}
    if signature is not None:
        headers["X-PASSID-Signature"] = signature
    return requests.post(f"{server.url}/webhooks/passid", data=body, headers=headers, timeout=10)


class Records:
    """Reads the receiver's tables straight from the database."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def receipts(self, **where: str) -> list[dict]:
        clause = " AND ".join(f"{k} = :{k}" for k in where) or "1=1"
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT * FROM webhook_receipt WHERE {clause} ORDER BY id"), where)
            return [dict(row._mapping) for row in rows]

    def rejections(self) -> list[dict]:
        """The aggregate of rejected calls: one row per (hour, verdict, claimed type)."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM webhook_rejection ORDER BY id"))
            return [dict(row._mapping) for row in rows]

    def rejected_calls(self, verdict: str) -> int:
        return sum(row["calls"] for row in self.rejections() if row["signature_result"] == verdict)

    def verifications_of(self, token: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM verification WHERE token_hash = :h"),
                                {"h": Keyring([TEST_DATA_KEY]).search_hash(token)}).scalar()

    def wait_handled(self, event_id: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            [row] = self.receipts(event_id=event_id) or [None]
            if row and row["handling_status"] == "handled":
                return row
            time.sleep(0.1)
        raise AssertionError(f"{event_id} not handled: {self.receipts(event_id=event_id)}")


@pytest.fixture(scope="module")
def receiver_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('receiver') / 'passid.db'}"
    migrate(base_env(url))
    return url


@pytest.fixture(scope="module")
def receiver(receiver_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = base_env(receiver_db, PASSID_WEBHOOK_SECRET=f"{NEW},{OLD}", PASSID_WEBHOOK_GRACE_SECONDS="1")
    server = AppServer(env, tmp_path_factory.mktemp("receiver-log") / "app.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def records(receiver_db: str) -> Records:
    return Records(receiver_db)


def test_a_correctly_signed_event_is_stored_acknowledged_and_handled(receiver: AppServer, records: Records) -> None:
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD1")
    answer = deliver(receiver, body, sign_payload(body, NEW), event_id)
    assert answer.status_code == 200
    row = records.wait_handled(event_id)
    assert row["signature_result"] == "valid" and row["event_type"] == "verification.completed"
    # Stored exactly as signed, encrypted at rest (app/plumbing/encryption.py), with what it is about beside it.
    assert bytes(row["body"]) != body and Keyring([TEST_DATA_KEY]).decrypt(bytes(row["body"])) == body
    assert row["token_hash"] == Keyring([TEST_DATA_KEY]).search_hash("AAAA-BBBB-CCCC-DDD1")
    assert records.verifications_of("AAAA-BBBB-CCCC-DDD1") == 1


def test_a_stored_event_keeps_its_typed_fields(receiver: AppServer, records: Records) -> None:
    event_id, body = event(token="AAAA-BBBB-CCCC-DDE0")
    headers = {"Content-Type": "application/json", "X-PASSID-Signature": sign_payload(body, NEW),
               "X-PASSID-Event-Id": event_id, "X-PASSID-Event-Type": "verification.completed",
               "X-PASSID-Delivery-Attempt": "3"}
    answer = requests.post(f"{receiver.url}/webhooks/passid", data=body, headers=headers, timeout=10)
    assert answer.status_code == 200
    [row] = records.receipts(event_id=event_id)
    assert (row["event_type"], row["delivery_attempt"], bool(row["test"])) == ("verification.completed", 3, False)
    assert row["answered_ms"] is None  # only test events pay the second write that times the answer


def test_a_test_event_keeps_how_long_its_answer_took(receiver: AppServer, records: Records) -> None:
    """What the go-live check "answers 200 within 10 seconds" reads: arrival to commit, as PASSID waited."""
    event_id, body = event(token="AAAA-BBBB-CCCC-DDE1")
    envelope = json.loads(body)
    body = json.dumps({**envelope, "test": True}).encode()
    headers = {"Content-Type": "application/json", "X-PASSID-Signature": sign_payload(body, NEW),
               "X-PASSID-Event-Id": event_id, "X-PASSID-Event-Type": "verification.completed",
               "X-PASSID-Delivery-Attempt": "3"}
    started = time.monotonic()
    answer = requests.post(f"{receiver.url}/webhooks/passid", data=body, headers=headers, timeout=10)
    took_ms = (time.monotonic() - started) * 1000
    assert answer.status_code == 200
    [row] = records.receipts(event_id=event_id)
    assert (row["event_type"], row["delivery_attempt"], bool(row["test"])) == ("verification.completed", 3, True)
    assert row["answered_ms"] is not None and 0 <= row["answered_ms"] <= took_ms + 1


@pytest.mark.parametrize(("header", "attempt"), [("1", 1), ("5", 5), (None, None), ("", None), ("-1", None),
                                                 ("1234", None), ("²", None), ("١", None)])
def test_the_delivery_attempt_header_is_kept_only_as_a_small_number(header: str | None, attempt: int | None) -> None:
    """Headers arrive as Latin-1: "²" (0xB2) passes str.isdigit but is no number int() reads."""
    assert delivery_attempt(header) == attempt


def test_a_rejected_call_is_logged_with_the_signing_module_reason(receiver: AppServer) -> None:
    _, body = event(token="AAAA-BBBB-CCCC-DDE2")
    for signature, reason in ((sign_payload(body, "whsec_somebody_else_000000"), "mismatch"),
                              (None, "missing"), ("sha1=" + "0" * 40, "malformed")):
        claimed = f"evt_logged_{uuid.uuid4().hex}"
        assert deliver(receiver, body, signature, claimed).status_code == 401
        deadline = time.monotonic() + 5
        while not (lines := [line for line in receiver.log_path.read_text().splitlines() if claimed in line]):
            assert time.monotonic() < deadline, f"no log line names {claimed}"
            time.sleep(0.05)
        assert f"reason={reason}" in lines[0], lines


def test_the_old_secret_is_still_accepted_after_rotation(receiver: AppServer, records: Records) -> None:
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD2")
    assert deliver(receiver, body, sign_payload(body, OLD), event_id).status_code == 200
    records.wait_handled(event_id)


@pytest.mark.parametrize(
    ("case", "verdict"),
    [("wrong secret", "invalid"), ("tampered byte", "invalid"), ("missing header", "missing"),
     ("not sha256", "malformed")],
)
def test_a_bad_signature_is_401_counted_and_nothing_is_stored_or_handled(
    receiver: AppServer, records: Records, case: str, verdict: str
) -> None:
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD3")
    signature: str | None = sign_payload(body, NEW)
    if case == "wrong secret":
        signature = sign_payload(body, "whsec_somebody_else_000000")
    elif case == "tampered byte":
        body = body.replace(b"812", b"813")
    elif case == "missing header":
        signature = None
    else:
        signature = "sha1=" + "0" * 40
    before = records.rejected_calls(verdict)
    answer = deliver(receiver, body, signature, event_id)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "INVALID_SIGNATURE"
    time.sleep(0.5)  # give a (wrong) handler every chance to run
    # Counted under the signing module's verdict, with the claimed id kept only as "the latest".
    assert records.rejected_calls(verdict) == before + 1
    assert any(row["last_claimed_event_id"] == event_id for row in records.rejections())
    assert records.receipts(claimed_event_id=event_id) == []
    assert records.verifications_of("AAAA-BBBB-CCCC-DDD3") == 0


def test_the_same_event_delivered_twice_is_acknowledged_and_handled_once(
    receiver: AppServer, records: Records
) -> None:
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD4")
    signature = sign_payload(body, NEW)
    assert deliver(receiver, body, signature, event_id).status_code == 200
    records.wait_handled(event_id)
    again = deliver(receiver, body, signature, event_id)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(records.receipts(event_id=event_id)) == 1
    assert records.verifications_of("AAAA-BBBB-CCCC-DDD4") == 1


def test_a_signed_body_that_is_not_an_event_is_400(receiver: AppServer) -> None:
    body = b'{"hello": "world"}'
    answer = deliver(receiver, body, sign_payload(body, NEW))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "VALIDATION_ERROR"


def nested_event(depth: int) -> bytes:
    """A well-formed envelope whose `data` nests `depth` objects deep."""
    data = '{"a":' * depth + "1" + "}" * depth
    return (f'{{"id":"evt_{uuid.uuid4().hex}","type":"verification.completed","createdAt":"2026-11-25T22:18:00Z",'
            f'"apiVersion":1,"livemode":false,"data":{data}}}').encode()


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, nested_event(5_000), nested_event(200)],
    ids=["100k open brackets", "data 5000 deep", "data 200 deep"],
)
def test_a_signed_deeply_nested_body_is_400_and_not_stored(
    receiver: AppServer, records: Records, body: bytes
) -> None:
    """Deep nesting made json.loads raise RecursionError (a 500); 200 deep parsed, was stored, and
    would have been parsed again by the handler and by every page showing its claims."""
    stored = len(records.receipts())
    answer = deliver(receiver, body, sign_payload(body, NEW))
    assert answer.status_code == 400, answer.text[:300]
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and "nest" in error["message"]
    assert len(records.receipts()) == stored


def padded_event(size: int) -> tuple[str, bytes]:
    """A real event padded with a note until its body is `size` bytes."""
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD6", note="")
    return event_id, body.replace(b'"note": ""', b'"note": "' + b"x" * (size - len(body)) + b'"')


def test_a_signed_body_over_256_kib_is_413_and_not_stored(receiver: AppServer, records: Records) -> None:
    event_id, body = padded_event(500 * 1024)
    answer = deliver(receiver, body, sign_payload(body, NEW), event_id)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert records.receipts(event_id=event_id) == []


def test_a_chunked_body_over_256_kib_is_413_and_not_stored(receiver: AppServer, records: Records) -> None:
    """No Content-Length to check first: the receiver reads at most the limit and refuses past it."""
    event_id, body = padded_event(300 * 1024)
    chunks = (body[i:i + 8192] for i in range(0, len(body), 8192))  # a generator: requests sends it chunked
    answer = requests.post(f"{receiver.url}/webhooks/passid", data=chunks, timeout=10, headers={
        "Content-Type": "application/json", "X-PASSID-Signature": sign_payload(body, NEW)})
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert records.receipts(event_id=event_id) == []


def test_an_announced_oversized_body_is_refused_before_it_is_sent(receiver: AppServer) -> None:
    """Content-Length over the limit is answered at once: the receiver never waits for the body."""
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as connection:
        connection.sendall(b"POST /webhooks/passid HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Type: application/json\r\nX-PASSID-Signature: sha256=" + b"0" * 64 +
                           b"\r\nContent-Length: 512000\r\n\r\n")
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


def test_a_signed_event_just_under_the_limit_is_accepted(receiver: AppServer, records: Records) -> None:
    event_id, body = padded_event(256 * 1024 - 16)
    answer = deliver(receiver, body, sign_payload(body, NEW), event_id)
    assert answer.status_code == 200, answer.text[:300]
    records.wait_handled(event_id)


def test_a_crash_between_storing_and_handling_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'passid.db'}"
    migrate(base_env(url))
    records = Records(url)
    # Handling off: the event is stored and acknowledged, then the process dies.
    stopped = AppServer(base_env(url, PASSID_WEBHOOK_SECRET=NEW, PASSID_BACKGROUND_JOBS="false",
                                 PASSID_WEBHOOK_GRACE_SECONDS="0"), tmp_path / "a.log").start()
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD5")
    assert deliver(stopped, body, sign_payload(body, NEW), event_id).status_code == 200
    stopped.kill()
    [row] = records.receipts(event_id=event_id)
    assert row["handling_status"] == "pending"
    assert records.verifications_of("AAAA-BBBB-CCCC-DDD5") == 0
    restarted = AppServer(base_env(url, PASSID_WEBHOOK_SECRET=NEW, PASSID_WEBHOOK_GRACE_SECONDS="0"),
                          tmp_path / "b.log").start()
    try:
        records.wait_handled(event_id)
    finally:
        restarted.stop()
    assert records.verifications_of("AAAA-BBBB-CCCC-DDD5") == 1


def test_a_widget_verify_and_its_own_webhook_make_one_history_row(receiver: AppServer, records: Records) -> None:
    """The demo institution's webhooks come back to this app: the widget records the verify
    at once, the webhook waits its grace period, sees the row, and adds nothing."""
    from app.passid import PassidClient
    from tests.support.html_fields import widget_fields_in

    fields = widget_fields_in(requests.get(f"{receiver.url}/verify", timeout=10).text)
    sandbox = PassidClient(receiver.sandbox_url)
    # The demo institution is onboarded on the app's first call to PASSID.
    requests.post(f"{receiver.url}/verify/qr/session", data={"o": fields["o"]}, timeout=10)
    with records.engine.connect() as conn:
        institution_id = conn.execute(text("SELECT id FROM sandbox_institution WHERE demo_slot = 'demo'")).scalar()
    token = sandbox.create_share_token(sandbox.sandbox_login("KE8V-3TXY-Z72L"), institution_id).token
    done = requests.post(f"{receiver.url}/verify/token/check", data={**fields, "token": token}, timeout=10)
    assert 'data-view="success"' in done.text
    normal = token.removeprefix("PASSID-")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        handled = [r for r in records.receipts(event_type="verification.completed")
                   if r["token_hash"] == Keyring([TEST_DATA_KEY]).search_hash(normal)
                   and r["handling_status"] == "handled"]
        if handled:
            break
        time.sleep(0.2)
    assert handled, "the verify's own webhook was not handled"
    assert records.verifications_of(normal) == 1


def test_a_stored_body_that_cannot_be_parsed_fails_once_and_does_not_block_the_queue(
    receiver: AppServer, records: Records
) -> None:
    """A row stored before the receiver bounded nesting (or written by hand) is marked failed on its
    first pass, without retries, and the events behind it are handled as usual."""
    poisoned = f"evt_poisoned_{uuid.uuid4().hex[:8]}"
    with records.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO webhook_receipt (event_id, event_type, received_at, signature_result, test, body, "
                 "handling_status, handling_attempts) VALUES (:id, 'verification.completed', :at, 'valid', "
                 ":test, :body, 'pending', 0)"),
            {"id": poisoned, "at": datetime(2026, 1, 1), "test": False,
             "body": Keyring([TEST_DATA_KEY]).encrypt(b"[" * 100_000)},  # stored as the app stores bodies
        )
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD7")
    assert deliver(receiver, body, sign_payload(body, NEW), event_id).status_code == 200
    records.wait_handled(event_id)
    deadline = time.monotonic() + 10
    while (row := records.receipts(event_id=poisoned)[0])["handling_status"] == "pending":
        assert time.monotonic() < deadline, row
        time.sleep(0.1)
    assert row["handling_status"] == "failed" and row["handling_attempts"] == 1
    assert "nest" in row["handling_error"]


FLOOD_LIMIT = 10


@pytest.fixture
def limited_receiver(
    database_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[AppServer, Records]]:
    """A receiver of its own, so its low failure limit cannot touch the other tests' calls;
    on SQLite and PostgreSQL, whose counting statements differ."""
    with provisioned_database(database_kind, tmp_path, request) as url:
        env = base_env(url, PASSID_WEBHOOK_SECRET=NEW, PASSID_WEBHOOK_GRACE_SECONDS="0",
                       PASSID_RATE_LIMIT_WEBHOOK_FAILURES=f"{FLOOD_LIMIT} per minute")
        server = AppServer(env, tmp_path / "app.log").start()
        records = Records(url)
        try:
            yield server, records
        finally:
            server.stop()
            records.engine.dispose()


def junk_call(server: AppServer, number: int) -> requests.Response:
    """One forged call: its signature fails three ways in turn, and it claims a new type and id each time."""
    _, body = event(token="AAAA-BBBB-CCCC-DDD8")
    headers = {"Content-Type": "application/json", "X-PASSID-Event-Id": f"evt_junk_{number}",
               "X-PASSID-Event-Type": f"junk.type.{number}"}
    signature = ["sha256=" + "0" * 64, "not-a-signature", None][number % 3]
    if signature:
        headers["X-PASSID-Signature"] = signature
    return requests.post(f"{server.url}/webhooks/passid", data=body, headers=headers, timeout=10)


def test_a_flood_of_junk_is_counted_in_a_few_rows_limited_and_valid_events_still_get_through(
    limited_receiver: tuple[AppServer, Records],
) -> None:
    server, records = limited_receiver
    flood = 60
    answers = [junk_call(server, number) for number in range(flood)]
    # Valid deliveries from the same address, while it is being limited, are never refused.
    delivered = []
    for _ in range(5):
        event_id, body = event(token="AAAA-BBBB-CCCC-DDD9")
        assert deliver(server, body, sign_payload(body, NEW), event_id).status_code == 200
        delivered.append(event_id)
    assert junk_call(server, flood).status_code == 429  # still limited after the valid ones

    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) == FLOOD_LIMIT and statuses.count(429) == flood - FLOOD_LIMIT
    assert all(answer.json()["error"]["code"] in ("INVALID_SIGNATURE", "RATE_LIMITED") for answer in answers)
    assert answers[-1].headers.get("Retry-After")
    for event_id in delivered:
        records.wait_handled(event_id)

    rejections = records.rejections()
    # Every call counted, refused or not, in a bounded number of rows: three verdicts, one "other" type
    # (an hour boundary during the test may double that), never one row per call.
    assert sum(row["calls"] for row in rejections) == flood + 1
    assert sum(row["refused"] for row in rejections) == flood + 1 - FLOOD_LIMIT
    assert len(rejections) <= 6
    assert {row["signature_result"] for row in rejections} == {"invalid", "malformed", "missing"}
    assert {row["event_type"] for row in rejections} == {"other"}
    assert records.receipts(handling_status="rejected") == []
    assert len(records.receipts()) == len(delivered)




@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_folds_rejected_rows_into_hourly_counts(kind: str, tmp_path: Path) -> None:
    """Rows logged one per rejected call before this change become counts, and are gone."""
    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade", "0004_staff_sessions")
        engine = create_engine(url)
        calls = [(datetime(2026, 11, 20, 14, 5), "invalid", "verification.completed", "evt_a"),
                 (datetime(2026, 11, 20, 14, 50), "invalid", "verification.completed", "evt_b"),
                 (datetime(2026, 11, 20, 15, 1), "missing", "junk.type", "evt_c"),
                 (datetime(2026, 11, 20, 15, 2), "malformed", None, None)]
        with engine.begin() as conn:
            for at, result, event_type, claimed in calls:
                conn.execute(text(
                    "INSERT INTO webhook_receipt (claimed_event_id, event_type, received_at, signature_result, test, "
                    "handling_status, handling_attempts) VALUES (:claimed, :type, :at, :result, :no, 'rejected', 0)"),
                    {"claimed": claimed, "type": event_type, "at": at, "result": result, "no": False})
            conn.execute(text(
                "INSERT INTO webhook_receipt (event_id, event_type, received_at, signature_result, test, body, "
                "handling_status, handling_attempts) VALUES ('evt_valid', 'verification.completed', :at, 'valid', "
                ":no, :body, 'handled', 1)"), {"at": datetime(2026, 11, 20, 14, 6), "no": False, "body": b"{}"})
        flask_db(env, "upgrade")
        records = Records(url)
        # str(): a datetime from PostgreSQL, text from SQLite; both read "2026-11-20 14:00:00…".
        counts = {(str(row["hour"])[:16], row["signature_result"], row["event_type"]):
                  (row["calls"], row["last_claimed_event_id"]) for row in records.rejections()}
        assert counts == {("2026-11-20 14:00", "invalid", "verification.completed"): (2, "evt_b"),
                          ("2026-11-20 15:00", "missing", "other"): (1, "evt_c"),
                          ("2026-11-20 15:00", "malformed", "other"): (1, None)}
        assert [row["event_id"] for row in records.receipts()] == ["evt_valid"]
        flask_db(env, "downgrade", "0004_staff_sessions")  # and back: the table goes, the valid event stays
        assert [row["event_id"] for row in records.receipts()] == ["evt_valid"]
        records.engine.dispose()
        engine.dispose()
