"""Two app processes on one PostgreSQL database behind "one address": a whole QR flow and its webhook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from app.passid import PassidClient
from tests.support.servers import (
    AppServer,
    base_env,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    postgres_available,
)
from tests.support.widget_http import HTMX, open_qr_session


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_two_processes_share_one_qr_flow_and_handle_its_webhook_once(tmp_path: Path, migrated_postgres: str) -> None:
    name, url = create_postgres_database(template=migrated_postgres)  # a copy of the run's migrated database
    first_port = free_port()
    env = base_env(url, PASSID_PUBLIC_URL=f"http://127.0.0.1:{first_port}", PASSID_WEBHOOK_GRACE_SECONDS="0")
    first = AppServer(env, tmp_path / "first.log", port=first_port).start()
    second = AppServer(env, tmp_path / "second.log").start()
    try:
        # The page and the session come from one process...
        session = open_qr_session(first.url)
        poll_path, request_id = session.poll_url.removeprefix(first.url), session.request_id
        # ...and the next poll lands on the other: the signed handle works anywhere.
        assert requests.get(second.url + poll_path, headers=HTMX, timeout=10).status_code == 204

        phone = PassidClient(second.sandbox_url)
        phone.fulfill_request(request_id, phone.sandbox_login("KE8V-3TXY-Z72L"))

        engine = create_engine(url)
        deadline = time.monotonic() + 15
        handled = []
        while time.monotonic() < deadline and not handled:
            with engine.connect() as conn:
                handled = conn.execute(text(
                    "SELECT handling_status FROM webhook_receipt WHERE event_type = 'verification.completed' "
                    "AND handling_status = 'handled'")).all()
            time.sleep(0.2)
        assert len(handled) == 1, "the webhook was not handled exactly once"
        finished = requests.get(second.url + poll_path, headers=HTMX, timeout=10)
        assert 'data-view="success"' in finished.text and ">812<" in finished.text
        again = requests.get(first.url + poll_path, headers=HTMX, timeout=10)
        assert 'data-view="success"' in again.text
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM verification WHERE request_id = :r"),
                                {"r": request_id}).scalar()
            deliveries = conn.execute(text(
                "SELECT status, attempts FROM sandbox_webhook_delivery WHERE event_type = 'verification.completed'"
            )).all()
        assert rows == 1
        assert [tuple(d) for d in deliveries] == [("delivered", 1)]
        engine.dispose()
    finally:
        first.stop()
        second.stop()
        drop_postgres_database(name)
