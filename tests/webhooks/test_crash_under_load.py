"""kill -9 under a stream of webhooks: after restarts nothing is lost and nothing is done twice.

PASSID (the sandbox in its own gunicorn, retrying a failed delivery after
1, 2, 4 and 8 s) sends one `verification.completed` per verify to our app's receiver.
While verifies stream in, first our app is killed, then PASSID while its
retries are pending. After both restart, every event is stored once, handled
once, and recorded as exactly one verification; PASSID marks every delivery
delivered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.passid import DeliveryStatus, PassidClient
from app.plumbing.encryption import Keyring
from tests.support.servers import TEST_DATA_KEY, AppServer, base_env, migrate

SECRET = "whsec_crash_under_load_0123"
# A row claimed by a process killed mid-row waits out its lease (production's 60 s) before another try;
# a short one here, with a webhook timeout short enough for it, so the test does not sit out a minute.
SHORT_LEASE = {"PASSID_JOB_LEASE_SECONDS": "5", "PASSID_WEBHOOK_TIMEOUT_SECONDS": "2"}
VERIFIES = 40
PHONE_PROFILE = "NG4M-XQRS-T88W"


@dataclass
class Pair:
    passid: AppServer
    app: AppServer
    institution: PassidClient
    institution_id: str
    app_database: str

    def receipts_stored(self) -> int:
        with create_engine(self.app_database).connect() as conn:
            return conn.execute(text("SELECT count(*) FROM webhook_receipt WHERE signature_result = 'valid'")).scalar()


@pytest.fixture
def pair(fresh_database_url: str, tmp_path: Path) -> Iterator[Pair]:
    passid_env = base_env(f"sqlite:///{tmp_path / 'upstream-passid.db'}",
                          PASSID_WEBHOOK_RETRY_SCHEDULE="0,1,2,4,8", PASSID_JOB_INTERVAL_SECONDS="0.2", **SHORT_LEASE)
    migrate(passid_env)
    passid = AppServer(passid_env, tmp_path / "passid.log").start()
    onboarding = PassidClient(passid.sandbox_url).onboard("Crash Bank")
    institution = PassidClient(passid.sandbox_url, onboarding.sandbox_key)
    app_env = base_env(fresh_database_url, PASSID_BASE_URL=passid.sandbox_url, PASSID_API_KEY=onboarding.sandbox_key,
                       PASSID_WEBHOOK_SECRET=SECRET, PASSID_SANDBOX_ENABLED="false",
                       PASSID_WEBHOOK_GRACE_SECONDS="0", PASSID_JOB_INTERVAL_SECONDS="0.2", **SHORT_LEASE)
    app = AppServer(app_env, tmp_path / "app.log")
    institution.set_webhook(f"{app.url}/webhooks/passid", SECRET)
    app.start()
    pair = Pair(passid, app, institution, onboarding.institution_id, fresh_database_url)
    yield pair
    pair.app.stop()
    pair.passid.stop()


def stream_verifies(pair: Pair, tokens: list[str]) -> threading.Thread:
    """Verify each token in turn, about 25 a second, as an institution's backend would."""
    def run() -> None:
        for token in tokens:
            pair.institution.verify(token)
            time.sleep(0.04)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_until(what: str, done, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_killing_the_receiver_and_then_passid_mid_stream_loses_nothing_and_doubles_nothing(pair: Pair) -> None:
    phone = PassidClient(pair.passid.sandbox_url)
    jwt = phone.sandbox_login(PHONE_PROFILE)
    tokens = [phone.create_share_token(jwt, pair.institution_id).token.removeprefix("PASSID-") for _ in range(VERIFIES)]
    streaming = stream_verifies(pair, tokens)

    wait_until("a first share of the events to be stored", lambda: pair.receipts_stored() >= 8, 30)
    pair.app.kill()  # kill -9 our app while events arrive and are handled
    time.sleep(0.8)  # PASSID's deliveries now fail and wait for their retries
    streaming.join(timeout=60)
    assert not streaming.is_alive()
    pair.passid.kill()  # kill -9 PASSID while those retries are pending
    pair.app = AppServer(pair.app.env, pair.app.log_path, port=pair.app.port).start()
    pair.passid = AppServer(pair.passid.env, pair.passid.log_path, port=pair.passid.port).start()

    def all_delivered() -> bool:
        deliveries = pair.institution.list_webhook_deliveries()
        return len(deliveries) == VERIFIES and all(d.status is DeliveryStatus.DELIVERED for d in deliveries)

    wait_until("PASSID to deliver every event", all_delivered, 60)
    retried = [d for d in pair.institution.list_webhook_deliveries() if d.attempts > 1]
    assert retried, "no delivery met the dead receiver: the kill proved nothing"
    # A receipt claimed when the app died waits out its lease (SHORT_LEASE) before another try.
    engine = create_engine(pair.app_database)

    def all_handled() -> bool:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM webhook_receipt WHERE signature_result = 'valid' "
                "AND handling_status = 'handled'")).scalar() == VERIFIES

    wait_until("every stored event to be handled", all_handled, 90)
    with engine.connect() as conn:
        receipts = conn.execute(text(
            "SELECT event_id, handling_status FROM webhook_receipt WHERE signature_result = 'valid'")).all()
        recorded = dict(conn.execute(text(
            "SELECT token_hash, count(*) FROM verification GROUP BY token_hash")).all())
    assert len(receipts) == VERIFIES and len({event_id for event_id, _ in receipts}) == VERIFIES
    # Tokens are stored encrypted; their keyed hashes (app/plumbing/encryption.py) tell one verify from another.
    assert recorded == dict.fromkeys((Keyring([TEST_DATA_KEY]).search_hash(token) for token in tokens), 1)
