"""When the widget's poll asks PASSID, and when our records (filled by webhooks) answer it.

Our app reaches PASSID through a counting proxy, so each test sees exactly
how many calls a run of polls made.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from app.passid import PassidClient
from tests.support.proxied_app import app_behind_proxy
from tests.support.servers import AppServer
from tests.support.waiting import wait_until
from tests.support.widget_http import open_qr_session, poll, poll_until_final, wait_recorded


def phone(widget_server: AppServer) -> tuple[PassidClient, str]:
    sandbox = PassidClient(widget_server.sandbox_url)
    return sandbox, sandbox.sandbox_login("NG4M-XQRS-T88W")


def test_the_poll_finishes_from_the_webhook_without_asking_passid(widget_server: AppServer, tmp_path: Path) -> None:
    with app_behind_proxy(widget_server, tmp_path) as wired:
        session = open_qr_session(wired.app.url)
        request_id = session.request_id
        assert poll(session).status_code == 204

        sandbox, jwt = phone(widget_server)
        sandbox.fulfill_request(request_id, jwt)
        assert wait_recorded(wired.database, request_id) == "completed"

        wired.proxy.mode = "error500"  # PASSID is now unusable: any call would show the error state
        calls = wired.proxy.calls
        finished = poll(session)
        assert finished.status_code == 200
        assert 'data-view="success"' in finished.text and ">743<" in finished.text
        assert wired.proxy.calls == calls


def test_pending_polls_between_checks_are_answered_without_asking_passid(
    widget_server: AppServer, tmp_path: Path
) -> None:
    with app_behind_proxy(widget_server, tmp_path, PASSID_POLL_CHECK_SECONDS="60") as wired:
        session = open_qr_session(wired.app.url)
        calls = wired.proxy.calls
        assert [poll(session).status_code for _ in range(5)] == [204] * 5
        assert wired.proxy.calls == calls  # creating the request told us it is pending

        # Completion still arrives at once: through the webhook, not a check.
        sandbox, jwt = phone(widget_server)
        sandbox.fulfill_request(session.request_id, jwt)
        finished = poll_until_final(session, timeout=10)
        assert 'data-view="success"' in finished.text
        assert wired.proxy.calls == calls


def test_a_decline_no_webhook_reports_is_seen_at_the_next_check(widget_server: AppServer, tmp_path: Path) -> None:
    """Counted, not timed: the polls before the check ask nothing, and the one check finds the decline."""
    with app_behind_proxy(widget_server, tmp_path, PASSID_POLL_CHECK_SECONDS="1") as wired:
        session = open_qr_session(wired.app.url)
        sandbox, jwt = phone(widget_server)
        sandbox.decline_request(session.request_id, jwt)
        calls = wired.proxy.calls
        answers: list[requests.Response] = []

        def polled_to_the_end() -> bool:
            answers.append(poll(session))
            return answers[-1].status_code != 204

        wait_until(polled_to_the_end, "the widget's poll ended", every=0.2)
        assert 'data-view="declined"' in answers[-1].text
        assert wired.proxy.calls == calls + 1  # one check, the one that found the decline


def test_without_webhooks_every_poll_asks_passid(widget_server: AppServer, tmp_path: Path) -> None:
    with app_behind_proxy(widget_server, tmp_path, webhooks=False, PASSID_POLL_CHECK_SECONDS="60") as wired:
        session = open_qr_session(wired.app.url)
        calls = wired.proxy.calls
        assert [poll(session).status_code for _ in range(3)] == [204] * 3
        assert wired.proxy.calls == calls + 3


def test_at_expiry_the_poll_asks_passid_whatever_the_check_interval(
    widget_server: AppServer, tmp_path: Path
) -> None:
    """The shared sandbox lets a request live one second; "Generate new code" must not wait for a check."""
    with app_behind_proxy(widget_server, tmp_path, PASSID_POLL_CHECK_SECONDS="60",
                          PASSID_REQUEST_TTL_SECONDS="1") as wired:
        session = open_qr_session(wired.app.url)
        time.sleep(1.5)
        finished = poll(session)
        assert finished.status_code == 200 and 'data-view="declined"' in finished.text
        assert "Generate new code" in finished.text
