"""A poll handle is a bearer credential: it stays out of the log, and shows a result only briefly.

The widget's poll URL carries its signed handle (`h=`); whoever
replays that URL sees what the widget sees. So the app writes its own access log
(path without the query string) and, once a request has finished, its handle shows
the result for PASSID_RESULT_VIEW_SECONDS only.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from app.passid import PassidClient
from app.plumbing.access_log import ACCESS_LOGGER, masked_path
from app.plumbing.passid_connection import passid_connection
from tests.support.servers import AppServer, base_env, migrate
from tests.support.waiting import wait_until
from tests.support.widget_http import HTMX, open_qr_session, poll, poll_until_final, wait_recorded, widget_fields

VIEW_SECONDS = 2
TOKEN = "NG4M-XQRS-T88W"


@pytest.fixture(scope="module")
def short_view(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppServer, str]]:
    """The app with a result view window of VIEW_SECONDS; yields the server and its database URL."""
    directory: Path = tmp_path_factory.mktemp("short-view")
    database_url = f"sqlite:///{directory / 'passid.db'}"
    env = base_env(database_url, PASSID_RESULT_VIEW_SECONDS=str(VIEW_SECONDS), PASSID_POLL_CHECK_SECONDS="1")
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server, database_url
    server.stop()


def _approve(server: AppServer, request_id: str) -> None:
    """Share & Verify on the sandbox, through its API, as the phone page does."""
    sandbox = PassidClient(server.sandbox_url)
    sandbox.fulfill_request(request_id, sandbox.sandbox_login("KE8V-3TXY-Z72L"))


def _handle(poll_url: str) -> str:
    return parse_qs(urlsplit(poll_url).query)["h"][0]


def test_the_access_log_has_every_poll_but_no_handle_token_or_query(short_view: tuple[AppServer, str]) -> None:
    server, _ = short_view
    session = open_qr_session(server.url)
    handle = _handle(session.poll_url)
    for _ in range(3):
        assert poll(session).status_code == 204
    _approve(server, session.request_id)
    assert poll_until_final(session).status_code == 200
    requests.get(f"{server.url}/verify/qr/resume", params={"h": handle}, headers=HTMX, timeout=10)
    fields = widget_fields(server.url)
    manual = requests.post(f"{server.url}/verify/token/check", data={**fields, "token": TOKEN}, timeout=10)
    assert 'data-view="success"' in manual.text

    # The server writes a request's line once its response is closed, a moment after the client has it: wait
    # for the line of one last request, and for every line asserted below, rather than for time to pass.
    marker = f"/access-log-marker-{secrets.token_hex(4)}"
    assert requests.get(f"{server.url}{marker}", timeout=10).status_code == 404
    wait_until(lambda: all(_logged(server.log_path.read_text(), marker).values()), "every request's log line")
    log = server.log_path.read_text()
    assert all(_logged(log, marker).values()), _logged(log, marker)
    lines = [line for line in log.splitlines() if "/verify/qr/status" in line]
    assert handle not in log and handle[:24] not in log
    assert fields["o"] not in log
    assert "h=" not in log and "?" not in "\n".join(lines)
    assert TOKEN not in log and TOKEN.replace("-", "") not in log
    assert session.code not in log


def _logged(log: str, marker: str) -> dict[str, bool]:
    """Which of the requests the access-log test makes have their line in `log`."""
    return {
        "three waiting polls": len(re.findall(r'"GET /verify/qr/status" 204 ', log)) >= 3,
        "the final poll": re.search(r'"GET /verify/qr/status" 200 ', log) is not None,
        "the resume": re.search(r'"GET /verify/qr/resume" 200 ', log) is not None,
        "the manual check": re.search(r'"POST /verify/token/check" 200 ', log) is not None,
        "the last request": f'"GET {marker}" 404 ' in log,
    }


def test_after_the_view_window_a_handle_shows_no_result(short_view: tuple[AppServer, str]) -> None:
    server, database_url = short_view
    session = open_qr_session(server.url)
    _approve(server, session.request_id)
    shown = poll_until_final(session)
    assert shown.status_code == 200 and 'data-view="success"' in shown.text and "812" in shown.text
    wait_recorded(database_url, session.request_id)

    time.sleep(VIEW_SECONDS + 1)
    handle = _handle(session.poll_url)
    answers = {
        "poll": poll(session),
        "poll without htmx": requests.get(session.poll_url, timeout=10),
        "resume": requests.get(f"{server.url}/verify/qr/resume", params={"h": handle}, headers=HTMX, timeout=10),
        "resume without htmx": requests.get(f"{server.url}/verify/qr/resume", params={"h": handle}, timeout=10),
    }
    for name, answer in answers.items():
        assert answer.status_code == 410, name
        assert 'data-view="idle"' in answer.text, name
        assert "This verification has finished. Start again to verify." in answer.text, name
        assert "812" not in answer.text and "res_" not in answer.text and "passid-event" not in answer.text, name


def test_a_declined_request_ends_the_same_way(short_view: tuple[AppServer, str]) -> None:
    server, _ = short_view
    session = open_qr_session(server.url)
    sandbox = PassidClient(server.sandbox_url)
    sandbox.decline_request(session.request_id, sandbox.sandbox_login("KE8V-3TXY-Z72L"))
    assert 'data-view="declined"' in poll_until_final(session).text
    time.sleep(VIEW_SECONDS + 1)
    assert poll(session).status_code == 410


def test_the_development_server_logs_no_query_string_either(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`flask run` (Werkzeug's server) writes its own request lines; the handle is cut from them."""
    import threading

    from werkzeug.serving import make_server

    from app import create_app

    app = create_app({"SECRET_KEY": "test-secret", "DATABASE_URL": f"sqlite:///{tmp_path / 'passid.db'}",
                      "PASSID_BACKGROUND_JOBS": "false"})
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level("INFO", logger="werkzeug"):
            url = f"http://127.0.0.1:{server.server_port}/verify/qr/status"
            assert requests.get(url, params={"h": "secret-handle-value"}, timeout=10).status_code == 404
            # Whatever it answers (this app has no database tables), the line must not hold the id.
            requests.get(f"http://127.0.0.1:{server.server_port}/api/sessions/vs_secret-session-id", timeout=10)
    finally:
        server.shutdown()
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("/verify/qr/status" in line and "404" in line for line in lines), lines
    assert not any("secret-handle-value" in line or "h=" in line for line in lines), lines
    assert any("/api/sessions/<session-id>" in line for line in lines), lines
    assert not any("secret-session-id" in line for line in lines), lines


class _Lines(logging.Handler):
    """Every line the access logger writes while attached."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines() -> Iterator[list[str]]:
    handler = _Lines()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def test_the_access_log_masks_a_session_or_result_id_in_a_path(app: Flask, access_lines: list[str]) -> None:
    """A session id opens its hosted page, so a log reader could verify into an open session; a result id is
    the other half of what reads a person's result. Neither reaches the log; the kind of id and the status do."""
    with app.app_context():
        key = passid_connection().api_key
    client = app.test_client()
    created = client.post("/api/sessions", json={"reference": "loan-1"}, headers={"X-Institution-Key": key})
    session_id = created.get_json()["id"]
    assert client.get(f"/api/sessions/{session_id}", headers={"X-Institution-Key": key}).status_code == 200
    assert client.get("/api/results/res_not-a-real-one", headers={"X-Institution-Key": key}).status_code == 404
    assert client.get(f"/api/sessions/{session_id}/", headers={"X-Institution-Key": key}).status_code == 404

    log = "\n".join(access_lines)
    assert session_id not in log and session_id[3:] not in log and "res_not-a-real-one" not in log, log
    assert '"GET /api/sessions/<session-id>" 200 ' in log, log
    assert '"GET /api/results/<result-id>" 404 ' in log, log
    assert '"POST /api/sessions" 201 ' in log, log


def test_masking_keeps_every_other_path_as_it_was() -> None:
    assert masked_path("/verify/qr/status") == "/verify/qr/status"
    assert masked_path("/console/verifications/res_abc") == "/console/verifications/res_abc"
    assert masked_path("/api/sessions") == "/api/sessions"
    assert masked_path("//api//sessions/vs_1") == "/api/sessions/<session-id>"
    assert masked_path("/sandbox/api/bridge/share/KE8V-3TXY-Z72L") == "/sandbox/api/bridge/share/<token>"
    assert masked_path("/sandbox/api/bridge/request/req_1/fulfill") == \
        "/sandbox/api/bridge/request/<request-id>/fulfill"
    assert masked_path("/sandbox/api/bridge/request/code/AB12CD34") == "/sandbox/api/bridge/request/code/<code>"
    assert masked_path("/sandbox/phone/request/req_1") == "/sandbox/phone/request/<request-id>"
