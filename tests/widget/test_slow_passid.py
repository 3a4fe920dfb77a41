"""A PASSID that stops answering holds a few threads, never the whole app, and the app recovers.

Our app (one worker, 8 threads, at most 2 calls to PASSID in flight, every
poll asking PASSID) reaches the sandbox through a proxy that can hang. While
it hangs, a burst of polls from many widgets comes in at once.

The proxy holds a hung call until the test releases it, so each test asserts
on what happened while calls were held (how many reached PASSID, which polls
answered, what they said), never on how long anything took. The speed of
these answers is bench/'s to measure.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import requests

from tests.support.proxied_app import app_behind_proxy
from tests.support.servers import AppServer
from tests.support.waiting import PATIENCE, wait_until
from tests.support.widget_http import HTMX, QrSession, open_qr_session, poll

WIDGETS = 10
# Longer than any wait below: a held call ends when the test releases it, not by a timeout racing the test.
HELD = {"PASSID_TIMEOUT_SECONDS": "60"}


def patient_poll(session: QrSession) -> requests.Response:
    """The widget's poll, with a client that waits as long as the app may be held."""
    return requests.get(session.poll_url, headers=HTMX, timeout=2 * PATIENCE)


def done(polls: list[Future[requests.Response]]) -> list[requests.Response]:
    return [future.result() for future in polls if future.done()]


def test_a_hanging_passid_holds_two_threads_and_the_rest_keep_answering(
    widget_server: AppServer, tmp_path: Path
) -> None:
    with app_behind_proxy(widget_server, tmp_path, server=True, PASSID_POLL_CHECK_SECONDS="0",
                          PASSID_MAX_CALLS_IN_FLIGHT="2", **HELD) as wired:
        proxy = wired.proxy
        sessions = [open_qr_session(wired.app.url) for _ in range(WIDGETS)]
        proxy.hang_seconds = 2 * PATIENCE
        proxy.mode = "hang"
        calls = proxy.calls
        with ThreadPoolExecutor(WIDGETS) as pool:
            polls = [pool.submit(patient_poll, session) for session in sessions]
            wait_until(lambda: proxy.held == 2 and len(done(polls)) == WIDGETS - 2,
                       "two polls held by PASSID and the others answered")
            # Only two calls were sent: past the cap a poll is not sent to a PASSID already slow for
            # others; it answers "still pending" and asks again at the next poll.
            assert proxy.calls == calls + 2
            assert [answer.status_code for answer in done(polls)] == [204] * (WIDGETS - 2)
            # The app answers while both threads are still held.
            assert requests.get(f"{wired.app.url}/healthz", timeout=PATIENCE).status_code == 200
            held = [future for future in polls if not future.done()]
            assert len(held) == 2 and proxy.held == 2

            # PASSID recovers: the held polls are answered (the client resends the dropped GET once).
            proxy.mode = "forward"
            proxy.release()
            assert [future.result().status_code for future in held] == [204, 204]

        calls = proxy.calls
        assert [poll(session).status_code for session in sessions] == [204] * WIDGETS
        assert proxy.calls == calls + WIDGETS  # every slot came back: each poll asked PASSID again


def test_an_expired_request_is_never_called_pending_while_passid_is_busy(
    widget_server: AppServer, tmp_path: Path
) -> None:
    """Past its expiry a widget must move on; if PASSID cannot be asked, it shows the error state."""
    with app_behind_proxy(widget_server, tmp_path, server=True, PASSID_MAX_CALLS_IN_FLIGHT="1",
                          PASSID_REQUEST_TTL_SECONDS="1", **HELD) as wired:
        proxy = wired.proxy
        holding, expired = open_qr_session(wired.app.url), open_qr_session(wired.app.url)
        time.sleep(1.5)  # past both requests' expiry (a wait for the clock, not an assertion on speed)
        proxy.hang_seconds = 2 * PATIENCE
        proxy.mode = "hang"
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(patient_poll, holding)  # takes the one slot, waits on PASSID
            wait_until(lambda: proxy.held == 1, "the first poll held by PASSID")
            calls = proxy.calls
            answer = patient_poll(expired)
            assert answer.status_code == 502 and 'data-view="error"' in answer.text and "Try again" in answer.text
            assert proxy.calls == calls  # not sent: the slot is taken, and it did not wait for it
            assert not held.done() and proxy.held == 1

            proxy.mode = "forward"
            proxy.release()
            recovered = held.result()
        assert recovered.status_code == 200 and 'data-view="declined"' in recovered.text
        assert "Generate new code" in recovered.text
