"""The sandbox's webhook delivery: signatures, the retry schedule, restarts, two processes.

Tests wait for PASSID's own delivery record to reach its end (delivered or failed: nothing more is
scheduled) and then count what arrived; no test bounds how fast a delivery comes. A restart and two
processes run on SQLite and PostgreSQL (claims and leases are the database's work); what is sent and
when, on SQLite only (the database just stores it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from app.passid import DeliveryStatus, PassidClient, WebhookDelivery, parse_webhook_event, verify_webhook_signature
from tests.support.in_process import serving_in_process
from tests.support.servers import AppServer, WebhookReceiver, base_env
from tests.support.waiting import PATIENCE, wait_until

SECRET = "whsec_test_secret_0123456789"


@pytest.fixture
def start_server(fresh_database_url: str, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Start app processes on a database of the test's own with a given retry schedule.

    Its own database, because every process's delivery pass works through
    every due delivery in its database: the shared server would join in.
    """
    started: list[AppServer] = []

    def start(schedule: str, **env: str) -> AppServer:
        server = AppServer(
            base_env(fresh_database_url, PASSID_WEBHOOK_RETRY_SCHEDULE=schedule, **env),
            tmp_path / f"app-{len(started)}.log",
        ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sandbox_with_schedule(fresh_database_url: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """The app in this process on a database of the test's own, with a given retry schedule; returns its
    sandbox's URL. For tests of what the delivery pass does, where no process is stopped or doubled: the
    same pass, scheduled the same way, without a server process to start."""
    with ExitStack() as stack:
        def start(schedule: str) -> str:
            app = stack.enter_context(serving_in_process(
                fresh_database_url, tmp_path, PASSID_WEBHOOK_RETRY_SCHEDULE=schedule))
            return str(app.config["PASSID_BASE_URL"])

        yield start


def _settled(client: PassidClient, count: int = 1) -> list[WebhookDelivery]:
    """Wait until PASSID has `count` deliveries and none is still pending, and return them."""
    deliveries: list[WebhookDelivery] = []

    def all_settled() -> bool:
        deliveries[:] = client.list_webhook_deliveries()
        return len(deliveries) == count and all(d.status is not DeliveryStatus.PENDING for d in deliveries)

    wait_until(all_settled, f"{count} deliveries delivered or failed", every=0.1)
    return deliveries


def _institution_on(server: AppServer | str, receiver: WebhookReceiver) -> tuple[str, PassidClient]:
    """Onboard an institution whose webhooks go to `receiver` (on a server, or a sandbox URL); returns
    (sandbox key, client)."""
    sandbox_url = server if isinstance(server, str) else server.sandbox_url
    onboarding = PassidClient(sandbox_url).onboard("Hooked Bank")
    client = PassidClient(sandbox_url, onboarding.sandbox_key)
    client.set_webhook(receiver.url, SECRET)
    return onboarding.sandbox_key, client


@pytest.mark.databases("sqlite")
def test_each_event_is_signed_with_hmac_sha256_over_the_raw_body(app_server: AppServer) -> None:
    with WebhookReceiver() as receiver:
        _, client = _institution_on(app_server, receiver)
        client.verify("KE8V-3TXY-Z72L")
        delivery = receiver.wait_for(1)[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-PASSID-Signature"] == expected
    verify_webhook_signature(delivery.body, delivery.headers["X-PASSID-Signature"], ["old-secret", SECRET])
    event = parse_webhook_event(delivery.body, delivery.headers["X-PASSID-Signature"], SECRET)
    assert event.type == "verification.completed" and event.api_version == 1 and event.livemode is False
    assert delivery.headers["X-PASSID-Event-Id"] == event.id
    assert delivery.headers["X-PASSID-Event-Type"] == "verification.completed"
    assert delivery.headers["X-PASSID-Delivery-Attempt"] == "1"
    assert event.data["token"] == "KE8V-3TXY-Z72L" and event.data["claims"]["tier"] == "A"
    assert event.data["recommendation"] == "approve" and event.data["proofType"] == "passid.share.v1"


@pytest.mark.databases("sqlite")
def test_every_kind_of_event_is_sent(app_server: AppServer) -> None:
    with WebhookReceiver() as receiver:
        _, client = _institution_on(app_server, receiver)
        sandbox = PassidClient(app_server.sandbox_url)
        client.verify("TEST-SANC-0005")
        request = client.create_request(permissions=["full_score"])
        sandbox.fulfill_request(request.request_id, sandbox.sandbox_login("GH2P-ABCD-56KL"))
        client.verify("NG4M-XQRS-T88W")
        client.report_outcome("NG4M-XQRS-T88W", "other", "loan", 10, notes="moved away")
        test_event_id = client.send_test_webhook()
        events = [json.loads(r.body) for r in receiver.wait_for(5)]
    by_type = Counter(event["type"] for event in events)
    assert by_type == {"verification.denied": 1, "verification.completed": 3, "outcome.reported": 1}
    denied = next(e for e in events if e["type"] == "verification.denied")["data"]
    assert denied == {
        "token": "TEST-SANC-0005",
        "deny_reason": "HARD_DENY_SANCTIONS_MATCH",
        "message": denied["message"],
    }
    from_qr = next(e for e in events if e["data"].get("requestId"))["data"]
    assert from_qr["requestId"] == request.request_id and set(from_qr["claims"]) >= {"fsi_score", "tier"}
    outcome = next(e for e in events if e["type"] == "outcome.reported")["data"]
    assert outcome["fsiScoreAtDecision"] == 743 and outcome["notes"] == "moved away"
    test_event = next(e for e in events if e["id"] == test_event_id)
    assert test_event["test"] is True and test_event["type"] == "verification.completed"


@pytest.mark.databases("sqlite")
def test_failed_deliveries_follow_the_retry_schedule_with_the_same_body(
    sandbox_with_schedule: Callable[[str], str],
) -> None:
    sandbox_url = sandbox_with_schedule("0,1,2,1,1")
    with WebhookReceiver(fail_first=2) as receiver:
        _, client = _institution_on(sandbox_url, receiver)
        client.verify("KE8V-3TXY-Z72L")
        attempts = receiver.wait_for(3, timeout=PATIENCE)
        [delivery] = _settled(client)
        assert len(receiver.received) == 3  # delivered, nothing scheduled: no fourth attempt
    assert [a.headers["X-PASSID-Delivery-Attempt"] for a in attempts] == ["1", "2", "3"]
    assert len({a.body for a in attempts}) == 1
    assert len({a.headers["X-PASSID-Signature"] for a in attempts}) == 1
    # Never before its time (a busy machine can only make a retry later, so this cannot flake);
    # how soon after its time it comes is for bench/ to measure, not for a test to bound.
    assert attempts[1].at - attempts[0].at >= 1.0
    assert attempts[2].at - attempts[1].at >= 2.0
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 3
    assert delivery.last_status_code == 200 and delivery.next_attempt_at is None


@pytest.mark.databases("sqlite")
def test_a_delivery_fails_after_the_fifth_failed_attempt(sandbox_with_schedule: Callable[[str], str]) -> None:
    sandbox_url = sandbox_with_schedule("0,0.3,0.3,0.3,0.3")
    with WebhookReceiver(fail_first=100, status_when_failing=503) as receiver:
        _, client = _institution_on(sandbox_url, receiver)
        client.verify("KE8V-3TXY-Z72L")
        receiver.wait_for(5, timeout=PATIENCE)
        [delivery] = _settled(client)
        assert len(receiver.received) == 5  # failed for good, nothing scheduled: no sixth attempt
    assert delivery.status is DeliveryStatus.FAILED and delivery.attempts == 5
    assert delivery.last_status_code == 503


@pytest.mark.databases("sqlite")
def test_a_refused_connection_is_retried(sandbox_with_schedule: Callable[[str], str]) -> None:
    from tests.support.servers import free_port

    sandbox_url = sandbox_with_schedule("0,0.3,0.3,0.3,0.3")
    onboarding = PassidClient(sandbox_url).onboard("Down Bank")
    client = PassidClient(sandbox_url, onboarding.sandbox_key)
    client.set_webhook(f"http://127.0.0.1:{free_port()}/nobody-home", SECRET)
    client.verify("KE8V-3TXY-Z72L")
    [delivery] = _settled(client)
    assert delivery.status is DeliveryStatus.FAILED and delivery.attempts == 5
    assert delivery.last_status_code is None


def test_a_delivery_waiting_for_retry_survives_a_restart(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server("0,3,3,3,3")
    with WebhookReceiver(fail_first=1) as receiver:
        key, client = _institution_on(server, receiver)
        client.verify("KE8V-3TXY-Z72L")
        receiver.wait_for(1)
        # Killed only once the failed attempt is on record: a kill between the receiver's answer and that
        # record is another story (the attempt is still claimed, and is sent again when its lease ends).
        wait_until(lambda: [d.attempts for d in client.list_webhook_deliveries()] == [1],
                   "the first attempt's failure recorded")
        server.kill()  # kill -9 while the delivery waits for its 3 s retry
        restarted = AppServer(server.env, server.log_path, port=server.port).start()
        try:
            attempts = receiver.wait_for(2, timeout=20)
            # The sender records the 200 only after the receiver has answered it: wait for that record.
            [delivery] = _settled(PassidClient(restarted.sandbox_url, key))
        finally:
            restarted.stop()
    assert attempts[1].headers["X-PASSID-Delivery-Attempt"] == "2"
    assert attempts[1].body == attempts[0].body
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 2


def test_two_processes_never_deliver_the_same_attempt_twice(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server("0,0.5,0.5,0.5,0.5", PASSID_JOB_INTERVAL_SECONDS="0.05")
    second = start_server("0,0.5,0.5,0.5,0.5", PASSID_JOB_INTERVAL_SECONDS="0.05")
    with WebhookReceiver() as receiver:
        key, client_a = _institution_on(first, receiver)
        client_b = PassidClient(second.sandbox_url, key)
        for i in range(20):
            (client_a if i % 2 else client_b).verify("KE8V-3TXY-Z72L")
        receiver.wait_for(20, timeout=PATIENCE)
        assert all(d.status is DeliveryStatus.DELIVERED and d.attempts == 1 for d in _settled(client_a, 20))
        # A duplicate would be a second process sending an attempt it never claimed, at the same moment as
        # the first: nothing marks its absence, so give it a moment to show (a wait, not a bound on speed).
        time.sleep(1.5)
        received = list(receiver.received)
    attempts = Counter(
        (r.headers["X-PASSID-Event-Id"], r.headers["X-PASSID-Delivery-Attempt"]) for r in received
    )
    assert len(attempts) == 20
    assert max(attempts.values()) == 1
