"""A pending poll between upstream checks asks neither PASSID nor the database.

Every waiting widget polls every 2.5 s. Between checks the poll's only question is "did any process
record this request?", and asking the database that on each poll was what held PostgreSQL below
SQLite. Now each process keeps the ids recorded lately (`app.rules.finished_requests`), refreshed by one
query every 50 ms at most, and a row written by another process (the webhook handled by another
worker or host) still reaches the next poll after that refresh.

The statement count is a request-level check (Flask's test client, the refresh clock driven by
hand); the other process is real in the second half: two Granian workers, a real webhook, and a row
inserted straight into the database.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, event, text

from app import create_app
from app.passid import PassidClient
from app.plumbing.database import db, utcnow
from app.rules import verifications
from app.rules.finished_requests import EXTENSION, FinishedRequests
from app.widget import signed_handles
from tests.support.servers import TEST_DATA_KEY, AppServer, base_env
from tests.support.widget_http import HTMX, open_qr_session, poll, poll_until_final, wait_recorded


class HandClock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


# As the app stores claims: encrypted under the data key every test process shares (app/plumbing/encryption.py).
CLAIMS = json.dumps({"financialStabilityTier": "A"})
STORED_CLAIMS = Fernet(TEST_DATA_KEY).encrypt(CLAIMS.encode()).decode()


def insert_finished_row(database_url: str, request_id: str, *, created_at: datetime) -> None:
    """A final record written by someone else: not this process, not through `verifications.record`."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO verification (id, source, status, request_id, claims_json, created_at) "
                     "VALUES (:id, 'qr', 'completed', :request_id, :claims, :created_at)"),
                {"id": f"res_{secrets.token_urlsafe(16)}", "request_id": request_id,
                 "claims": STORED_CLAIMS, "created_at": created_at},
            )
    finally:
        engine.dispose()


@pytest.fixture
def widget_app(fresh_database_url: str) -> Flask:
    """The app in this process with webhooks on, so polls between checks may answer alone."""
    return create_app({
        "SECRET_KEY": "test-secret", "DATABASE_URL": fresh_database_url, "PASSID_BACKGROUND_JOBS": "false",
        "PASSID_DATA_KEY": TEST_DATA_KEY,
        "PASSID_WEBHOOK_SECRET": "whsec_poll_without_database_0123", "PASSID_POLL_CHECK_SECONDS": "60",
    })


@pytest.fixture
def statements(widget_app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends, from now on."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    with widget_app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    yield sent
    event.remove(engine, "before_cursor_execute", count)


def test_a_pending_poll_between_checks_sends_no_statement_and_sees_another_process_row_after_the_refresh(
    widget_app: Flask, statements: list[str], fresh_database_url: str
) -> None:
    clock = HandClock()
    request_id = f"req_{secrets.token_hex(8)}"
    with widget_app.app_context():
        widget_app.extensions[EXTENSION] = FinishedRequests(verifications.request_ids_created_since, clock=clock)
        expires_at = datetime.now(UTC) + timedelta(minutes=10)
        widget_app.extensions["passid_upstream_checks"].seen_pending(request_id, expires_at)  # as opening it does
        handle = signed_handles.sign("request", {"r": request_id, "c": "ABCD-EFGH", "x": expires_at.isoformat()})
    client = widget_app.test_client()
    url = f"/verify/qr/status?h={handle}"

    assert client.get(url, headers=HTMX).status_code == 204  # the process's first poll refreshes
    statements.clear()
    assert [client.get(url, headers=HTMX).status_code for _ in range(20)] == [204] * 20
    assert statements == []

    # Another process records it (a late commit: stamped 5 s ago). Inside the refresh interval this
    # process does not know yet; the first poll after the interval refreshes and shows the result.
    insert_finished_row(fresh_database_url, request_id, created_at=utcnow() - timedelta(seconds=5))
    assert client.get(url, headers=HTMX).status_code == 204
    assert statements == []
    clock.seconds += 0.06
    finished = client.get(url, headers=HTMX)
    assert finished.status_code == 200 and 'data-view="success"' in finished.text
    assert sum("created_at >=" in statement for statement in statements) == 1  # the one refresh query


# --- the same through real processes -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app as `make run` starts it, with two worker processes, on its embedded sandbox (webhooks on).

    Checks are a minute apart, so a result shown within seconds came from our records, not from PASSID.
    One for the module's tests (each follows a request of its own), on each database.
    """
    env = base_env(module_database_url, PASSID_POLL_CHECK_SECONDS="60", PASSID_WEBHOOK_GRACE_SECONDS="0")
    server = AppServer(env, tmp_path_factory.mktemp("two-workers") / "app.log", workers=2).start()
    yield server
    server.stop()


def test_a_webhook_handled_by_either_worker_shows_at_every_poll_to_both(
    two_workers: AppServer, module_database_url: str
) -> None:
    session = open_qr_session(two_workers.url)
    assert poll(session).status_code == 204

    phone = PassidClient(two_workers.sandbox_url)
    phone.fulfill_request(session.request_id, phone.sandbox_login("NG4M-XQRS-T88W"))
    assert wait_recorded(module_database_url, session.request_id) == "completed"
    time.sleep(0.2)  # past the refresh interval (50 ms) of whichever worker did not record it

    # A new connection per poll, so the polls land on both workers.
    answers = [requests.get(session.poll_url, headers={**HTMX, "Connection": "close"}, timeout=10)
               for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 8
    assert all('data-view="success"' in a.text for a in answers)


def test_a_row_another_process_inserted_shows_at_the_next_poll_after_the_refresh(
    two_workers: AppServer, module_database_url: str
) -> None:
    session = open_qr_session(two_workers.url)
    assert poll(session).status_code == 204
    insert_finished_row(module_database_url, session.request_id, created_at=utcnow() - timedelta(seconds=5))
    time.sleep(0.2)
    answers = [requests.get(session.poll_url, headers={**HTMX, "Connection": "close"}, timeout=10)
               for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 8
    assert all('data-view="success"' in a.text for a in answers)


def test_a_row_the_set_missed_is_found_when_the_check_asks_passid(fresh_database_url: str, tmp_path: Path) -> None:
    """A due check asks PASSID with no lookup first; a final answer for a row we hold returns that row."""
    env = base_env(fresh_database_url, PASSID_POLL_CHECK_SECONDS="1", PASSID_WEBHOOK_GRACE_SECONDS="0")
    server = AppServer(env, tmp_path / "app.log").start()
    try:
        session = open_qr_session(server.url)
        assert poll(session).status_code == 204  # this worker's set is now refreshed
        # Stamped by a host whose clock runs a minute behind: older than the refresh's overlap looks back.
        insert_finished_row(fresh_database_url, session.request_id, created_at=utcnow() - timedelta(minutes=1))
        phone = PassidClient(server.sandbox_url)
        phone.fulfill_request(session.request_id, phone.sandbox_login("NG4M-XQRS-T88W"))

        finished = poll_until_final(session, timeout=10)
        assert finished.status_code == 200 and 'data-view="success"' in finished.text
        engine = create_engine(fresh_database_url)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT claims_json FROM verification WHERE request_id = :r"),
                                      {"r": session.request_id}).scalars().all()
        engine.dispose()
        assert rows == [STORED_CLAIMS]  # our row, not a second one
    finally:
        server.stop()
