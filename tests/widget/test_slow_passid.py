"""A PASSID that stops answering holds a few threads, never the whole app, and the app recovers.

Our app (one worker, 8 threads, at most 2 calls to PASSID in flight, every
poll asking PASSID) reaches the sandbox through a proxy that can hang. While
it hangs, a burst of polls from many widgets comes in at once.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.support.proxied_app import app_behind_proxy
from tests.support.servers import AppServer
from tests.support.widget_http import open_qr_session, poll

WIDGETS = 10


def timed_poll(session) -> tuple[int, str, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    answer = poll(session)
    return answer.status_code, answer.text, time.monotonic() - started


def test_a_hanging_passid_holds_two_threads_and_the_rest_keep_answering(
    widget_server: AppServer, tmp_path: Path
) -> None:
    with app_behind_proxy(widget_server, tmp_path, PASSID_POLL_CHECK_SECONDS="0", PASSID_MAX_CALLS_IN_FLIGHT="2",
                          PASSID_TIMEOUT_SECONDS="3") as wired:
        sessions = [open_qr_session(wired.app.url) for _ in range(WIDGETS)]
        wired.proxy.mode = "hang"
        with ThreadPoolExecutor(WIDGETS + 1) as pool:
            polls = [pool.submit(timed_poll, session) for session in sessions]
            time.sleep(0.5)  # the burst is in: two polls wait on PASSID, the others have answered
            started = time.monotonic()
            health = requests.get(f"{wired.app.url}/healthz", timeout=10)
            health_seconds = time.monotonic() - started
            results = [future.result() for future in polls]

        assert health.status_code == 200 and health_seconds < 1.0
        waited = [r for r in results if r[2] >= 2.5]
        quick = [r for r in results if r[2] < 1.0]
        assert len(waited) == 2, [round(r[2], 2) for r in results]
        assert all(status == 502 and 'data-view="error"' in text and "Try again" in text
                   for status, text, _ in waited)
        # Not sent to a PASSID already slow for others: still pending, asked again at the next poll.
        assert len(quick) == WIDGETS - 2 and all(status == 204 for status, _, _ in quick)

        wired.proxy.mode = "forward"
        calls = wired.proxy.calls
        assert [poll(session).status_code for session in sessions] == [204] * WIDGETS
        assert wired.proxy.calls == calls + WIDGETS  # every slot came back: each poll asked PASSID again


def test_an_expired_request_is_never_called_pending_while_passid_is_busy(
    widget_server: AppServer, tmp_path: Path
) -> None:
    """Past its expiry a widget must move on; if PASSID cannot be asked, it shows the error state."""
    with app_behind_proxy(widget_server, tmp_path, PASSID_MAX_CALLS_IN_FLIGHT="1", PASSID_TIMEOUT_SECONDS="3",
                          PASSID_REQUEST_TTL_SECONDS="1") as wired:
        holding, expired = open_qr_session(wired.app.url), open_qr_session(wired.app.url)
        time.sleep(1.5)
        wired.proxy.mode = "hang"
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(timed_poll, holding)  # takes the one slot, waits on PASSID
            time.sleep(0.5)
            status, text, seconds = timed_poll(expired)
            assert held.result()[0] == 502
        assert status == 502 and 'data-view="error"' in text and seconds < 1.0
