"""Slow clients must not stop the service.

Forty connections that trickle one header line every 5 s and never finish
their request stopped gunicorn's threaded workers from answering anything:
each held a thread while it read headers. The app as `make run` starts it
(AppServer runs the same server with the same flags) must keep answering
`/healthz` meanwhile.

Granian reads headers without holding a thread but has no timeout for bodies,
so the same trick one step later (whole headers, then one body byte every 5 s)
held every thread until the app capped the requests reading a body
(app/plumbing/request_guards.py), in pools per class of request so one class cannot take every slot.

These tests prove the behaviour, answered and not starved, with a bound generous enough for a busy
machine: a starved server answers nothing until the slow clients let go, so a probe left waiting for
half the hold shows it. How fast the answers come (probe p50/p99/max, how many took over 2 s) is a
figure, measured by `make bench-load` (bench/serving.py), not asserted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.servers import AppServer, base_env, migrate
from tests.support.slow_clients import SlowClients, probing

SLOW_CONNECTIONS = 40
LINE_EVERY_SECONDS = 2.5
HOLD_SECONDS = 6.0  # two trickled lines each, and some 30 probes
PROBE_EVERY_SECONDS = 0.2
# A bound on starvation, not a speed. The probes stop (the last one answered or out of patience) before the
# slow clients let go, so a probe the server never takes up while they hold its threads counts as unanswered
# whatever the hold.
ANSWER_WITHIN_SECONDS = 6.0


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """`make run`'s server with 2 workers, or as many as the test's `workers` mark says."""
    workers = request.node.get_closest_marker("workers")
    env = base_env(f"sqlite:///{tmp_path / 'app.db'}")
    migrate(env)
    server = AppServer(env, tmp_path / "app.log", workers=workers.args[0] if workers else 2).start()
    yield server
    server.stop()


@pytest.mark.timeout(60)
def test_healthz_is_answered_while_40_slow_clients_trickle_headers(server: AppServer) -> None:
    with (
        SlowClients("127.0.0.1", server.port, SLOW_CONNECTIONS, LINE_EVERY_SECONDS) as slow,
        probing(f"{server.url}/healthz", PROBE_EVERY_SECONDS, ANSWER_WITHIN_SECONDS) as probes,
    ):
        time.sleep(HOLD_SECONDS)
    assert slow.opened == SLOW_CONNECTIONS
    # Enough probes ran to cover the whole hold (a server that stalls them makes few, all late).
    assert len(probes.latencies) >= HOLD_SECONDS / (PROBE_EVERY_SECONDS + ANSWER_WITHIN_SECONDS)
    assert probes.unanswered == 0, (
        f"{probes.unanswered} of {len(probes.latencies)} probes got no answer within {ANSWER_WITHIN_SECONDS} s"
    )


@pytest.mark.timeout(60)
# One worker, so which process a request lands on is no matter of chance: its 2 webhook body slots are
# all that the slow clients (webhook posts with a well-formed signature header) can take.
@pytest.mark.workers(1)
def test_healthz_and_pages_answer_while_40_slow_clients_trickle_request_bodies(server: AppServer) -> None:
    with (
        SlowClients("127.0.0.1", server.port, SLOW_CONNECTIONS, LINE_EVERY_SECONDS, slow_body=True) as slow,
        probing(f"{server.url}/healthz", PROBE_EVERY_SECONDS, ANSWER_WITHIN_SECONDS) as probes,
    ):
        time.sleep(HOLD_SECONDS / 2)
        widget_page = requests.get(f"{server.url}/verify", timeout=ANSWER_WITHIN_SECONDS)
        # A webhook post that finds its class's slots taken waits a moment, then is told to come back.
        busy = _forged_webhook(server.url)
        # A customer's form has slots of its own: the slow webhook bodies cannot starve it.
        customer_post = requests.post(f"{server.url}/verify/qr", data={"o": ""}, timeout=ANSWER_WITHIN_SECONDS)
        time.sleep(HOLD_SECONDS / 2)
    assert slow.opened == SLOW_CONNECTIONS
    # Past the 2 slots each slow body was answered 503 unread and its connection closed.
    assert slow.closed_by_server >= SLOW_CONNECTIONS - 2
    assert widget_page.status_code == 200
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert customer_post.status_code == 200
    assert probes.unanswered == 0, (
        f"{probes.unanswered} of {len(probes.latencies)} probes got no answer within {ANSWER_WITHIN_SECONDS} s"
    )
    # Once the slow clients hang up, their slots come back and webhook posts are read again (401: forged).
    assert _served_within(seconds=10, post=lambda: _forged_webhook(server.url), status=401)


def _forged_webhook(url: str) -> requests.Response:
    """A webhook post whose signature header is well formed, so it takes a slot, but signs nothing."""
    return requests.post(f"{url}/webhooks/passid", data=b"{}", timeout=ANSWER_WITHIN_SECONDS,
                         headers={"Content-Type": "application/json", "X-PASSID-Signature": "sha256=" + "0" * 64})


def _served_within(seconds: float, post: Callable[[], requests.Response], status: int) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if post().status_code == status:
            return True
        time.sleep(0.2)
    return False
