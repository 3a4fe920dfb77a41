"""The institution's receiver: signatures, storage before 200, once-only handling, crash recovery."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from app.passid import sign_payload
from tests.support.servers import AppServer, base_env, migrate

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

    def verifications_of(self, token: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM verification WHERE token = :t"), {"t": token}).scalar()

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
    assert bytes(row["body"]) == body
    assert records.verifications_of("AAAA-BBBB-CCCC-DDD1") == 1


def test_the_old_secret_is_still_accepted_after_rotation(receiver: AppServer, records: Records) -> None:
    event_id, body = event(token="AAAA-BBBB-CCCC-DDD2")
    assert deliver(receiver, body, sign_payload(body, OLD), event_id).status_code == 200
    records.wait_handled(event_id)


@pytest.mark.parametrize(
    ("case", "verdict"),
    [("wrong secret", "invalid"), ("tampered byte", "invalid"), ("missing header", "missing"),
     ("not sha256", "malformed")],
)
def test_a_bad_signature_is_401_and_nothing_is_stored_or_handled(
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
    answer = deliver(receiver, body, signature, event_id)
    assert answer.status_code == 401
    time.sleep(0.5)  # give a (wrong) handler every chance to run
    [logged] = records.receipts(claimed_event_id=event_id)
    assert logged["signature_result"] == verdict and logged["handling_status"] == "rejected"
    assert logged["body"] is None and logged["event_id"] is None
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
    assert deliver(receiver, body, sign_payload(body, NEW)).status_code == 400


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
    import re

    from app.passid import PassidClient

    page = requests.get(f"{receiver.url}/verify", timeout=10).text
    fields = dict(re.findall(r'name="(o|n)" value="([^"]+)"', page))
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
                   if r["body"] and normal.encode() in bytes(r["body"]) and r["handling_status"] == "handled"]
        if handled:
            break
        time.sleep(0.2)
    assert handled, "the verify's own webhook was not handled"
    assert records.verifications_of(normal) == 1
