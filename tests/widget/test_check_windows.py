"""When a pending poll asks PASSID: check windows anchored at the request's expiry (app/widget/polling.py).

The window arithmetic is a pure function, tested on numbers; `UpstreamChecks` is driven by a clock turned
by hand, so no test sleeps. The last test runs two whole apps in this process as two workers of one
deployment (the same secret, webhooks on), polling one request alternately as a load balancer would send a
widget's polls, with PASSID (another in-process app's sandbox) behind a pass-through that counts its calls
on the wire: PASSID is asked about once per window in all, not once per window per worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask

from app.passid import PassidClient
from app.widget import signed_handles
from app.widget.polling import ALWAYS, CHECKED_HEADER, WINDOW_SECONDS, UpstreamChecks, check_window, window_mark
from bench.counting_proxy import CountingProxy
from tests.support.widget_actions import WidgetActions
from tests.support.widget_http import HTMX
from tests.widget.test_poll_without_database import HandClock

pytestmark = pytest.mark.databases("sqlite")

P = 7.5  # PASSID_POLL_CHECK_SECONDS, the default: three polls
W = WINDOW_SECONDS  # 2.5 s and the margin
SECRET = "whsec_check_windows_0123456789"


# --- the windows, on numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds_left", "window"), [
    (600.0, None),            # 600 = 80·P: the end of window 80 is exclusive, and 600 − 79·P = 7.5 > W
    (7.5 + 0.001, 1),         # just inside window 1: [expires − P − W, expires − P)
    (7.5, None),              # expires − P itself: not in it
    (7.5 + W, 1),             # its first instant
    (7.5 + W + 0.001, None),  # just before it
    (2 * 7.5 + 1.0, 2),
    (3 * 7.5 + 2.0, 3),
    (3 * 7.5 + 4.0, None),
    (5.0, None),              # k = 0 is no window: in the last P seconds only expiry asks
    (0.0, ALWAYS),            # at expiry every poll asks
    (-30.0, ALWAYS),          # and after it
])
def test_check_window_of_a_poll(seconds_left: float, window: int | None) -> None:
    assert check_window(seconds_left, P, W) == window


@pytest.mark.parametrize("gap", [2.5, 2.7, 3.0])
def test_polls_no_further_apart_than_the_window_land_in_every_window(gap: float) -> None:
    """Polls every 2.5 s, or late by up to the margin, from any phase: each window gets at least one."""
    for phase in [i / 10 for i in range(30)]:
        times_left = [600 - phase - n * gap for n in range(int(570 / gap))]
        hit = {check_window(t, P, W) for t in times_left}
        inside = {k for k in range(1, 81) if k * P + W <= times_left[0] and k * P >= times_left[-1]}
        assert len(inside) >= 70 and inside <= hit, (gap, phase)


def test_a_check_every_poll_when_windows_cover_all_time() -> None:
    """P ≤ W (tests' 0, the browser tests' 2): the windows overlap, so every poll asks."""
    for every in (0.0, 1.0, 2.0, W):
        assert all(check_window(t / 7, every, W) is not None for t in range(1, 5000))


# --- one process, a clock turned by hand ------------------------------------------------------------------

EXPIRES = datetime(2026, 1, 1, 12, 10, tzinfo=UTC)


def checks_at(seconds_left: float, every: float = P) -> tuple[UpstreamChecks, HandClock]:
    clock = HandClock()
    clock.seconds = EXPIRES.timestamp() - seconds_left
    return UpstreamChecks(every, clock=clock), clock


def test_one_ask_per_window_per_process_and_is_due_agrees_with_should_ask() -> None:
    checks, clock = checks_at(4 * P + W)  # the first instant of window 4
    asked = []
    for _ in range(40):  # 40 polls 0.75 s apart: windows 4, 3, 2 and 1 pass
        due = checks.is_due("req_a", EXPIRES, webhooks=True)
        assert checks.is_due("req_a", EXPIRES, webhooks=True) == due  # asking is_due changes nothing
        ask = checks.should_ask("req_a", EXPIRES, webhooks=True)
        assert ask == due
        assert not checks.should_ask("req_a", EXPIRES, webhooks=True)  # another thread at once: no second ask
        if ask:
            asked.append(check_window(EXPIRES.timestamp() - clock.seconds, P, W))
        clock.seconds += 0.75
    assert asked == [4, 3, 2, 1]


def test_at_expiry_without_webhooks_and_after_a_failed_ask_the_poll_asks() -> None:
    checks, clock = checks_at(2 * P + 5)  # between windows 2 and 1
    assert not checks.is_due("req_a", EXPIRES, webhooks=True)
    assert checks.should_ask("req_a", EXPIRES, webhooks=False) and checks.is_due("req_a", EXPIRES, webhooks=False)

    checks.forget("req_a")  # PASSID was busy: the next poll asks, window or not, and only the next
    assert checks.is_due("req_a", EXPIRES, webhooks=True)
    assert checks.should_ask("req_a", EXPIRES, webhooks=True)
    assert not checks.should_ask("req_a", EXPIRES, webhooks=True)

    clock.seconds = EXPIRES.timestamp()
    assert [checks.should_ask("req_a", EXPIRES, webhooks=True) for _ in range(3)] == [True] * 3
    assert checks.is_due("req_a", EXPIRES, webhooks=True)


def test_a_request_just_created_is_not_checked_in_the_window_it_was_created_in() -> None:
    checks, _ = checks_at(3 * P + 1)  # inside window 3
    checks.seen_pending("req_a", EXPIRES)
    assert not checks.is_due("req_a", EXPIRES, webhooks=True)
    assert checks.is_due("req_b", EXPIRES, webhooks=True)  # another request's window is its own


def test_a_check_every_poll_with_a_check_interval_no_longer_than_the_window() -> None:
    checks, _ = checks_at(3 * P + 5, every=2)
    checks.seen_pending("req_a", EXPIRES)
    assert [checks.should_ask("req_a", EXPIRES, webhooks=True) for _ in range(3)] == [True] * 3


def test_a_poll_reporting_the_check_of_its_window_is_not_asked_again() -> None:
    """`PASSID-Checked`: the widget sends back the mark of the window an earlier poll of it asked in. Wherever
    that poll went, a process that did not make the check does not ask again in that window; another window's
    or another request's mark, or anything else, is not equal; after a failed ask (`forget`) the next asks."""
    checks, clock = checks_at(3 * P + 2)  # inside window 3
    mark = checks.mark("req_a", EXPIRES)
    assert mark == window_mark("req_a", EXPIRES, 3, P)
    assert mark.startswith(f"{round(EXPIRES.timestamp() * 1000) - 3 * 7500}-")  # the window's end, in ms
    assert not checks.is_due("req_a", EXPIRES, webhooks=True, reported=mark)
    assert not checks.should_ask("req_a", EXPIRES, webhooks=True, reported=mark)
    for other in (window_mark("req_a", EXPIRES, 4, P), window_mark("req_z", EXPIRES, 3, P), "nonsense", ""):
        assert checks_at(3 * P + 2)[0].should_ask("req_a", EXPIRES, webhooks=True, reported=other), other
    assert checks.should_ask("req_a", EXPIRES, webhooks=True)  # it spared the ask; it did not take it

    clock.seconds += P  # window 2: the old mark spares nothing
    assert checks.should_ask("req_a", EXPIRES, webhooks=True, reported=mark)
    checks.forget("req_c")  # PASSID was busy for req_c: its next poll asks, whatever it reports
    assert checks.should_ask("req_c", EXPIRES, webhooks=True, reported=checks.mark("req_c", EXPIRES))
    now = checks.mark("req_b", EXPIRES)
    assert not checks.should_ask("req_b", EXPIRES, webhooks=True, reported=now)
    assert checks.should_ask("req_b", EXPIRES, webhooks=False, reported=now)  # without webhooks every poll asks


def test_no_mark_between_windows_at_expiry_or_when_every_poll_asks() -> None:
    assert checks_at(2 * P + 5)[0].mark("req_a", EXPIRES) is None
    assert checks_at(0)[0].mark("req_a", EXPIRES) is None
    assert checks_at(3 * P + 2, every=2)[0].mark("req_a", EXPIRES) is None


# --- two workers, one request ------------------------------------------------------------------------------

@pytest.mark.parametrize(("first_poll", "widget_js", "asks_per_window"), [
    # 596.5 s before expiry: the polls of each 7.5 s fall 6.5, 4 and 1.5 s into it, one of them in its 3 s window
    (596.5, True, 1),
    # 595.25: 5.25, 2.75 and 0.25 s in, two in the window, sent to one worker then the other; the second
    # reports the first one's check (`PASSID-Checked`, as widget.js sends it back): one ask in all.
    (595.25, True, 1),
    # The same polls from a page without widget.js (nothing reported): each worker asks once. Over many
    # widgets, whose polls fall at every phase, a fifth of windows hold two polls: 1.2 asks a window at most.
    (595.25, False, 2),
])
def test_two_workers_polling_one_request_alternately_ask_passid_once_per_window_in_all(
    build_app: Callable[..., Flask], first_poll: float, widget_js: bool, asks_per_window: int
) -> None:
    passid_app = build_app()  # its embedded sandbox plays PASSID
    key = PassidClient(passid_app.config["PASSID_BASE_URL"]).onboard("Window Bank").sandbox_key
    proxy = CountingProxy()
    try:
        passid_url = proxy.to(passid_app.config["PASSID_BASE_URL"])
        workers = [build_app(PASSID_BASE_URL=passid_url, PASSID_API_KEY=key, PASSID_SANDBOX_ENABLED="false",
                             PASSID_WEBHOOK_SECRET=SECRET, PASSID_POLL_CHECK_SECONDS=str(P)) for _ in range(2)]
        clock = HandClock()
        for worker in workers:
            worker.extensions["passid_upstream_checks"].clock = clock
        clock.seconds = datetime.now(UTC).timestamp()
        session = WidgetActions(workers[0].test_client()).generate_qr()
        with workers[0].app_context():
            handle = re.search(r"[?&]h=([^&]+)", session.poll_url)
            assert handle is not None
            expires_at = datetime.fromisoformat(signed_handles.unsign("request", handle.group(1))["x"])
        status = f"/api/bridge/request/{session.request_id}"
        clients = [worker.test_client() for worker in workers]

        asks_by_window: dict[int | None, int] = {}
        clock.seconds = expires_at.timestamp() - first_poll
        reported: str | None = None  # what widget.js sends back: the last mark a poll was answered with
        for n in range(90):  # 225 s of a widget's polls, every 2.5 s, alternately to each worker
            before = proxy.count("GET", status)
            headers = {**HTMX, CHECKED_HEADER: reported} if widget_js and reported else HTMX
            answer = clients[n % 2].get(session.poll_url, headers=headers)
            assert answer.status_code == 204
            reported = answer.headers.get(CHECKED_HEADER, reported)
            window = check_window(expires_at.timestamp() - clock.seconds, P, W)
            asks_by_window[window] = asks_by_window.get(window, 0) + proxy.count("GET", status) - before
            clock.seconds += 2.5
    finally:
        proxy.close()

    assert asks_by_window.pop(None, 0) == 0  # between windows PASSID is never asked
    assert len(asks_by_window) == 30  # 225 s: 30 windows
    assert set(asks_by_window.values()) == {asks_per_window}, asks_by_window
