"""Notifications to the bank's backend: delivered, signed, retried after a 500 and after a restart, sent once.

The events are queued the way the app's own code queues them (`notifications.enqueue` in a transaction,
committed, then `wake()`), here by the test in an app built on the same database; the deliveries are
made by the app's background pass, in this process or in server processes. What the database decides
runs on SQLite and PostgreSQL: one event per key, the purge, two processes claiming; what is sent and
when (signatures, the schedule, a restart) is the delivery engine's, which
tests/webhooks/test_sandbox_delivery.py also runs on PostgreSQL, so it runs here on SQLite. Tests wait
for the delivery record to reach its end and then count what arrived; none bounds how fast a delivery
comes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.config import ConfigError, install_settings, load_settings, settings_of
from app.passid import WebhookSignatureError, parse_webhook_event, verify_webhook_signature
from app.plumbing.background import start_background_jobs
from app.plumbing.database import db
from app.rules import notifications
from app.rules.notifications import NotificationDelivery
from tests.support.in_process import app_environ, serving_in_process
from tests.support.servers import AppServer, WebhookReceiver, base_env, free_port
from tests.support.waiting import PATIENCE, wait_until

NEWEST = "notify_secret_new_0123456789"
OLDER = "notify_secret_old_0123456789"
SECRETS = f"{NEWEST},{OLDER}"
ABOUT_A_SESSION = {"sessionId": "vs_abc", "reference": "loan-42", "status": "completed", "verdict": "approve",
                   "resultId": "res_abc"}


def notify_settings(url: str, schedule: str = "0,0.3,0.3,0.3,0.3", **more: str) -> dict[str, str]:
    return {"PASSID_NOTIFY_URL": url, "PASSID_NOTIFY_SECRET": SECRETS, "PASSID_WEBHOOK_RETRY_SCHEDULE": schedule,
            **more}


@pytest.fixture
def notifying(fresh_database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """The app in this process on a database of the test's own, notifying `url`, its passes running."""
    with ExitStack() as stack:
        def build(url: str, schedule: str = "0,0.3,0.3,0.3,0.3", **more: str) -> Flask:
            app = stack.enter_context(serving_in_process(fresh_database_url, tmp_path,
                                                         **notify_settings(url, schedule, **more)))
            start_background_jobs(app)
            return app

        yield build


@contextmanager
def enqueuer(database_url: str, directory: Path, url: str) -> Iterator[Flask]:
    """An app on `database_url` that only queues events, as a request of any process does: no passes run in it."""
    directory.mkdir(exist_ok=True)
    from app import create_app

    app = create_app(app_environ(database_url, directory, free_port(), PASSID_BACKGROUND_JOBS="false",
                                 **notify_settings(url)))
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()


def enqueue(app: Flask, event_type: str = "session.completed", data: dict[str, Any] | None = None,
            key: str = "session.completed:vs_abc") -> str | None:
    """Queue an event as the app's own code does: in a transaction, committed, then the pass woken."""
    with app.app_context():
        event_id = notifications.enqueue(event_type, data if data is not None else ABOUT_A_SESSION, key=key)
        db.session.commit()
        notifications.wake()
        return event_id


def deliveries(app: Flask) -> list[NotificationDelivery]:
    with app.app_context():
        found = list(db.session.execute(
            db.select(NotificationDelivery).order_by(NotificationDelivery.created_at)).scalars())
        db.session.expunge_all()
        return found


def settled(app: Flask, count: int = 1) -> list[NotificationDelivery]:
    """Wait until `count` deliveries are on record and none is pending, and return them."""
    found: list[NotificationDelivery] = []

    def all_settled() -> bool:
        found[:] = deliveries(app)
        return len(found) == count and all(d.status != "pending" for d in found)

    wait_until(all_settled, f"{count} notifications delivered or failed", every=0.1)
    return found


# --- delivered and signed --------------------------------------------------------------------------------


@pytest.mark.databases("sqlite")
def test_an_event_is_delivered_signed_over_the_raw_body_with_the_newest_secret(
    notifying: Callable[..., Flask],
) -> None:
    with WebhookReceiver() as receiver:
        app = notifying(receiver.url)
        event_id = enqueue(app)
        [delivery] = receiver.wait_for(1)
        [row] = settled(app)
    signature = delivery.headers["X-PASSID-Signature"]
    assert signature == "sha256=" + hmac.new(NEWEST.encode(), delivery.body, hashlib.sha256).hexdigest()
    verify_webhook_signature(delivery.body, signature, [OLDER, NEWEST])  # a receiver mid-rotation
    with pytest.raises(WebhookSignatureError):
        verify_webhook_signature(delivery.body, signature, [OLDER])
    event = parse_webhook_event(delivery.body, signature, NEWEST)  # PASSID's own envelope, as our client reads it
    assert event.id == event_id and event_id.startswith("evt_")
    assert event.type == "session.completed" and event.api_version == 1 and event.livemode is False
    assert event.data == ABOUT_A_SESSION
    envelope = json.loads(delivery.body)
    assert set(envelope) == {"id", "type", "createdAt", "apiVersion", "livemode", "data"}  # no "test"
    assert delivery.headers["X-PASSID-Event-Id"] == event_id
    assert delivery.headers["X-PASSID-Event-Type"] == "session.completed"
    assert delivery.headers["X-PASSID-Delivery-Attempt"] == "1"
    assert delivery.headers["Content-Type"] == "application/json"
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("delivered", 1, 200, None)


@pytest.mark.databases("sqlite")
def test_a_500_is_retried_on_the_schedule_with_the_same_body_and_signature(notifying: Callable[..., Flask]) -> None:
    with WebhookReceiver(fail_first=2) as receiver:
        app = notifying(receiver.url, schedule="0,1,2,1,1")
        enqueue(app)
        attempts = receiver.wait_for(3, timeout=PATIENCE)
        [row] = settled(app)
        assert len(receiver.received) == 3  # delivered, nothing scheduled: no fourth attempt
    assert [a.headers["X-PASSID-Delivery-Attempt"] for a in attempts] == ["1", "2", "3"]
    assert len({a.body for a in attempts}) == 1 and len({a.headers["X-PASSID-Signature"] for a in attempts}) == 1
    assert attempts[1].at - attempts[0].at >= 1.0 and attempts[2].at - attempts[1].at >= 2.0  # never early
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 200)


@pytest.mark.databases("sqlite")
def test_a_notification_fails_after_the_last_attempt_of_the_schedule(notifying: Callable[..., Flask]) -> None:
    with WebhookReceiver(fail_first=100, status_when_failing=503) as receiver:
        app = notifying(receiver.url)
        enqueue(app)
        [row] = settled(app)
        assert len(receiver.received) == 5
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("failed", 5, 503, None)


# --- one event per key; nothing personal --------------------------------------------------------------


def test_the_same_key_is_one_event_and_the_callers_own_work_stands(notifying: Callable[..., Flask]) -> None:
    """A duplicate never raises, so it never rolls back the change the caller is committing with it."""
    from app.rules import audit

    with WebhookReceiver() as receiver:
        app = notifying(receiver.url)
        first = enqueue(app)
        with app.app_context():
            again = notifications.enqueue("session.completed", ABOUT_A_SESSION, key="session.completed:vs_abc")
            audit.note(audit.Action.RETENTION_PURGED, detail="the caller's own work", actor=audit.SYSTEM_ACTOR)
            db.session.commit()
            assert db.session.scalar(db.select(db.func.count()).select_from(audit.AuditEntry).where(
                audit.AuditEntry.detail == "the caller's own work")) == 1
        assert again == first
        other = enqueue(app, "session.expired", {**ABOUT_A_SESSION, "status": "expired"}, key="session.expired:vs_x")
        assert other != first
        settled(app, 2)
        time.sleep(0.5)  # a duplicate would be a third POST: give it a moment to show
        assert Counter(r.headers["X-PASSID-Event-Id"] for r in receiver.received) == {first: 1, other: 1}


def test_the_retention_purge_may_forget_settled_notifications_never_pending_ones(
    notifying: Callable[..., Flask],
) -> None:
    from datetime import timedelta

    from app.plumbing.database import utcnow

    with WebhookReceiver() as receiver:
        app = notifying(receiver.url, schedule="0,600,600,600,600")  # a failed first attempt waits: pending
        delivered = enqueue(app)
        settled(app)
        receiver.fail_first = 100
        pending = enqueue(app, "session.expired", {**ABOUT_A_SESSION, "status": "expired"}, key="session.expired:vs_x")
        receiver.wait_for(2)
        with app.app_context():
            assert notifications.forget_settled(utcnow() - timedelta(minutes=1)) == 0  # none that old
            assert notifications.forget_settled(utcnow() + timedelta(seconds=1)) == 1
            db.session.commit()
        assert [d.event_id for d in deliveries(app)] == [pending] and pending != delivered


@pytest.mark.databases("sqlite")
def test_claims_and_tokens_are_never_queued(notifying: Callable[..., Flask]) -> None:
    with WebhookReceiver() as receiver:
        app = notifying(receiver.url)
        with app.app_context():
            for data in ({"token": "KE8V-3TXY-Z72L"}, {"session": {"claims": {"tier": "A"}}},
                         {"results": [{"tokens": []}]}):
                with pytest.raises(ValueError, match="never carries"):
                    notifications.enqueue("verification.recorded", data, key="k")
            with pytest.raises(ValueError, match="unknown notification type"):
                notifications.enqueue("verification.completed", {}, key="k")
        assert deliveries(app) == []


def test_without_a_notify_url_nothing_is_queued_or_sent(build_app: Callable[..., Flask]) -> None:
    app = build_app()
    with app.app_context():
        assert notifications.configured() is False
        assert notifications.enqueue("session.completed", ABOUT_A_SESSION, key="session.completed:vs_abc") is None
        db.session.commit()
        assert notifications.send_test_event() is None
        assert notifications.notify_url_answers() is None
        assert notifications.NOTIFY_JOB not in app.extensions["passid_jobs"]
    assert deliveries(app) == []


@pytest.mark.databases("sqlite")
def test_a_test_event_says_so_and_is_signed_like_any_other(notifying: Callable[..., Flask]) -> None:
    with WebhookReceiver() as receiver:
        app = notifying(receiver.url)
        with app.app_context():
            event_id = notifications.send_test_event()
        [delivery] = receiver.wait_for(1)
        [row] = settled(app)
    event = json.loads(delivery.body)
    assert event["id"] == event_id and event["type"] == "notification.test" and event["test"] is True
    verify_webhook_signature(delivery.body, delivery.headers["X-PASSID-Signature"], NEWEST)
    assert row.test is True and row.status == "delivered"


@pytest.mark.databases("sqlite")
def test_the_url_answers_check(notifying: Callable[..., Flask]) -> None:
    """For the go-live checklist: an HTTP answer at the URL (even 501 to a HEAD) is True; nobody home is False."""
    with WebhookReceiver() as receiver:
        app = notifying(receiver.url)
        with app.app_context():
            assert notifications.notify_url_answers() is True
            install_settings(app, replace(settings_of(app), notify_url=f"http://127.0.0.1:{free_port()}/hook"))
            assert notifications.notify_url_answers() is False
            install_settings(app, replace(settings_of(app), notify_url="http://10.0.0.1/hook"))  # refused, no connect
            assert notifications.notify_url_answers() is False
        assert receiver.received == []  # a HEAD carries nothing, and is no event


# --- a restart, and two processes ------------------------------------------------------------------------


@pytest.fixture
def start_server(fresh_database_url: str, tmp_path: Path) -> Iterator[Callable[..., AppServer]]:
    """App server processes on a database of the test's own (every process's pass works through every
    due delivery in its database: the shared server would join in)."""
    started: list[AppServer] = []

    def start(url: str, schedule: str, **env: str) -> AppServer:
        server = AppServer(base_env(fresh_database_url, **notify_settings(url, schedule, **env)),
                           tmp_path / f"app-{len(started)}.log").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.databases("sqlite")
def test_a_notification_waiting_for_retry_survives_a_restart(
    start_server: Callable[..., AppServer], fresh_database_url: str, tmp_path: Path
) -> None:
    with WebhookReceiver(fail_first=1) as receiver, enqueuer(fresh_database_url, tmp_path / "q", receiver.url) as app:
        server = start_server(receiver.url, "0,3,3,3,3")
        event_id = enqueue(app)
        receiver.wait_for(1)
        # Killed only once the failed attempt is on record (a kill before it leaves the attempt claimed
        # until its lease lapses: sent again then, which is another test's story).
        wait_until(lambda: [d.attempts for d in deliveries(app)] == [1], "the first attempt's failure recorded")
        server.kill()  # kill -9 while the notification waits for its 3 s retry
        restarted = AppServer(server.env, server.log_path, port=server.port).start()
        try:
            attempts = receiver.wait_for(2, timeout=20)
            [row] = settled(app)
        finally:
            restarted.stop()
    assert attempts[1].headers["X-PASSID-Event-Id"] == event_id
    assert attempts[1].headers["X-PASSID-Delivery-Attempt"] == "2" and attempts[1].body == attempts[0].body
    assert (row.status, row.attempts) == ("delivered", 2)


@pytest.mark.databases("sqlite")
def test_a_notification_queued_while_no_server_runs_is_sent_by_the_next_one(
    start_server: Callable[..., AppServer], fresh_database_url: str, tmp_path: Path
) -> None:
    with WebhookReceiver() as receiver, enqueuer(fresh_database_url, tmp_path / "q", receiver.url) as app:
        event_id = enqueue(app)
        assert [d.status for d in deliveries(app)] == ["pending"]
        start_server(receiver.url, "0,3,3,3,3")
        [delivery] = receiver.wait_for(1)
        [row] = settled(app)
    assert delivery.headers["X-PASSID-Event-Id"] == event_id and row.status == "delivered"


def test_two_processes_never_send_the_same_notification_twice(
    start_server: Callable[..., AppServer], fresh_database_url: str, tmp_path: Path
) -> None:
    with WebhookReceiver() as receiver, enqueuer(fresh_database_url, tmp_path / "q", receiver.url) as app:
        for _ in range(2):
            start_server(receiver.url, "0,0.5,0.5,0.5,0.5", PASSID_JOB_INTERVAL_SECONDS="0.05")
        for number in range(20):
            enqueue(app, key=f"session.completed:vs_{number}")
        receiver.wait_for(20, timeout=PATIENCE)
        assert all(d.status == "delivered" and d.attempts == 1 for d in settled(app, 20))
        # A duplicate would be a second process sending an attempt it never claimed: nothing marks its
        # absence, so give it a moment to show (a wait, not a bound on speed).
        time.sleep(1.5)
        received = list(receiver.received)
    attempts = Counter((r.headers["X-PASSID-Event-Id"], r.headers["X-PASSID-Delivery-Attempt"]) for r in received)
    assert len(attempts) == 20 and max(attempts.values()) == 1


# --- where notifications may go ---------------------------------------------------------------------------


LIVE = {"PASSID_BASE_URL": "http://127.0.0.1:9", "PASSID_API_KEY": "sk_live_" + "l" * 32}


def settings_problems(**env: str) -> list[str]:
    try:
        load_settings(app_environ("sqlite://", Path(tempfile.gettempdir()), 5000, **env))
    except ConfigError as error:
        return list(error.problems)
    return []


def test_a_live_configuration_notifies_only_https_public_addresses_with_a_secret() -> None:
    assert settings_problems(**LIVE, PASSID_NOTIFY_URL="https://hooks.bank.example/passid",
                             PASSID_NOTIFY_SECRET=SECRETS) == []
    assert settings_problems(**LIVE, PASSID_NOTIFY_URL="http://hooks.bank.example/passid",
                             PASSID_NOTIFY_SECRET=SECRETS) == [
        "PASSID_NOTIFY_URL must be an https:// address (http:// only with the embedded sandbox or "
        "PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS)"]
    for private in ("https://10.0.0.1/hook", "https://127.0.0.1/hook", "https://169.254.169.254/",
                    "https://[::ffff:192.168.0.1]/"):
        [problem] = settings_problems(**LIVE, PASSID_NOTIFY_URL=private, PASSID_NOTIFY_SECRET=SECRETS)
        assert problem.startswith("PASSID_NOTIFY_URL points at ") and "not allowed" in problem
    assert settings_problems(**LIVE, PASSID_NOTIFY_URL="https://hooks.bank.example/passid") == [
        "PASSID_NOTIFY_SECRET is required when PASSID_NOTIFY_URL is set: every notification is signed "
        "(comma-separated for rotation, newest first)"]
    problems = settings_problems(**LIVE, PASSID_NOTIFY_URL="https://hooks.bank.example/passid",
                                 PASSID_NOTIFY_SECRET=f"{NEWEST},short-secret")
    assert problems == ["PASSID_NOTIFY_SECRET entries must be at least 16 characters long: entry 2 of 2 is shorter"]
    assert "short-secret" not in problems[0]  # a sentence for a service log never quotes a secret


def test_loopback_and_http_with_the_embedded_sandbox_private_only_with_the_development_switch() -> None:
    assert settings_problems(PASSID_NOTIFY_URL="http://127.0.0.1:8000/hook", PASSID_NOTIFY_SECRET=SECRETS) == []
    [problem] = settings_problems(PASSID_NOTIFY_URL="http://192.168.1.20/hook", PASSID_NOTIFY_SECRET=SECRETS)
    assert "not allowed" in problem
    development = {"PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS": "true", "PASSID_NOTIFY_SECRET": SECRETS}
    assert settings_problems(PASSID_NOTIFY_URL="http://192.168.1.20/hook", **development) == []
    hosted_sandbox = {"PASSID_BASE_URL": "https://sandbox.passid.example", "PASSID_API_KEY": "sk_sandbox_" + "s" * 32}
    assert settings_problems(**hosted_sandbox, PASSID_NOTIFY_URL="http://10.1.2.3:8000/hook", **development) == []
    [problem] = settings_problems(PASSID_NOTIFY_URL="http://169.254.169.254/", **development)
    assert "not allowed" in problem  # link-local (cloud metadata) stays refused, even in development
    assert settings_problems(**LIVE, PASSID_NOTIFY_URL="https://hooks.bank.example/passid", **development) == [
        "PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS is for development: it cannot be on with a live PASSID_API_KEY "
        "(sk_live_…)"]


@pytest.fixture
def live_app(build_app: Callable[..., Flask]) -> Flask:
    """A live configuration (no sandbox) notifying a name that resolves, at delivery, wherever the test says;
    no pass runs by itself, and any connect beyond loopback is refused and recorded before a packet leaves."""
    return build_app(**LIVE, PASSID_BACKGROUND_JOBS="false",
                     **notify_settings("https://notify.bank.internal:8443/hook"))


@pytest.mark.parametrize("resolves_to", ["10.0.0.1", "127.0.0.1", "169.254.169.254", "::1"])
def test_in_a_live_configuration_a_private_or_loopback_address_is_refused_at_delivery_without_a_connect(
    live_app: Flask, monkeypatch: pytest.MonkeyPatch, resolves_to: str
) -> None:
    real_getaddrinfo = socket.getaddrinfo
    connects: list[object] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: real_getaddrinfo(
        resolves_to if host == "notify.bank.internal" else host, port, *a, **k))
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: connects.append(address))
    assert live_app.config["PASSID_EMBEDDED_SANDBOX"] is False
    enqueue(live_app)
    with live_app.app_context():
        assert notifications.deliver_due() == 1
        assert notifications.notify_url_answers() is False
    [row] = deliveries(live_app)
    assert connects == []
    assert row.last_error == f"refused: address not allowed ({resolves_to})" and row.last_status_code is None
    assert row.status == "pending" and row.attempts == 1  # retried on schedule, refused again
    assert json.loads(row.body)["livemode"] is True


# --- the migration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_notification_migration_matches_the_model_and_downgrades(kind: str, tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData, create_engine, inspect

    from tests.support.migrations import empty_database, flask_db

    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade", "0017_notification_deliveries")
        engine = create_engine(url)
        ours = MetaData()
        NotificationDelivery.__table__.to_metadata(ours)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), ours)
        # Only this table is compared: every other table and index of the database is "not in the model" here.
        assert [d for d in differences if "notification_delivery" in repr(d)] == []
        flask_db(env, "downgrade", "0016_verdicts_and_session_cancel")
        engine.dispose()
        assert "notification_delivery" not in inspect(engine).get_table_names()
        flask_db(env, "upgrade")
        engine.dispose()
        assert "notification_delivery" in inspect(engine).get_table_names()
