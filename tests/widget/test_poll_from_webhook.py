"""Once a webhook has completed a request, the widget's poll finishes from our records."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, text

from app.passid import PassidClient
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.servers import AppServer, base_env, migrate
from tests.support.widget_http import open_qr_session, poll

SECRET = "whsec_poll_from_webhook_0123"


def test_the_poll_finishes_from_the_webhook_without_asking_passid(widget_server: AppServer, tmp_path: Path) -> None:
    onboarding = PassidClient(widget_server.sandbox_url).onboard("Webhook Bank")
    institution = PassidClient(widget_server.sandbox_url, onboarding.sandbox_key)
    proxy = FaultyUpstream(widget_server.sandbox_url)
    database = f"sqlite:///{tmp_path / 'passid.db'}"
    env = base_env(database, PASSID_BASE_URL=proxy.url, PASSID_API_KEY=onboarding.sandbox_key,
                   PASSID_WEBHOOK_SECRET=SECRET, PASSID_TIMEOUT_SECONDS="2")
    migrate(env)
    app = AppServer(env, tmp_path / "app.log")
    institution.set_webhook(f"{app.url}/webhooks/passid", SECRET)
    app.start()
    try:
        session = open_qr_session(app.url)
        request_id = session.request_id
        assert poll(session).status_code == 204

        sandbox = PassidClient(widget_server.sandbox_url)
        sandbox.fulfill_request(request_id, sandbox.sandbox_login("NG4M-XQRS-T88W"))
        engine = create_engine(database)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT status FROM verification WHERE request_id = :r"),
                                     {"r": request_id}).scalar()
            if found:
                break
            time.sleep(0.1)
        assert found == "completed"

        proxy.mode = "error500"  # PASSID is now unusable: any call would show the error state
        calls = proxy.calls
        finished = poll(session)
        assert finished.status_code == 200
        assert 'data-view="success"' in finished.text and ">743<" in finished.text
        assert proxy.calls == calls
    finally:
        app.stop()
        proxy.close()
