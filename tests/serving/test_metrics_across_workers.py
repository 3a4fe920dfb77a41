"""`/metrics` under Granian with two workers: every worker's requests in the one sum, whichever answers the
scrape, and closed to whoever lacks the token.

One server, as `make run` starts it (`--workers 2`), logging JSON: each access line names the process that
served it and the request id its answer carried, so the test counts what each worker served from the log,
then checks the scraped counter against their sum. The folder the workers share, and its cleaning when a
server starts, are shown without a server below.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.plumbing.metrics_workers import forget_dead_workers, forget_stopped_servers, start_time
from tests.support.scraping import BEARER, METRICS_TOKEN, value
from tests.support.servers import AppServer, base_env, migrate
from tests.support.waiting import wait_until

REQUESTS = 60
READYZ = {"route": "/readyz", "method": "GET", "status": "200"}


@pytest.mark.timeout(90)
def test_the_counters_add_up_every_workers_requests_and_stay_closed_without_the_token(tmp_path: Path) -> None:
    env = base_env(f"sqlite:///{tmp_path / 'app.db'}", PASSID_METRICS_TOKEN=METRICS_TOKEN, PASSID_LOG_FORMAT="json",
                   PASSID_INSTANCE_DIR=str(tmp_path / "instance"))
    migrate(env)
    server = AppServer(env, tmp_path / "app.log", workers=2).start()
    try:
        # Both workers serving (the server is healthy once one answers), so both can take requests.
        wait_until(lambda: (tmp_path / "app.log").read_text().count("Started worker-") == 2, "both workers started")
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer " + "x" * len(METRICS_TOKEN)}
        assert requests.get(f"{server.url}/metrics", headers=wrong, timeout=10).status_code == 401

        def ready(_: int) -> str:
            answer = requests.get(f"{server.url}/readyz", timeout=10)  # a connection of its own each
            assert answer.status_code == 200, answer.text
            return answer.headers["X-Request-Id"]

        with ThreadPoolExecutor(max_workers=8) as pool:
            sent = set(pool.map(ready, range(REQUESTS)))
        assert len(sent) == REQUESTS

        def scrape() -> str:
            answer = requests.get(f"{server.url}/metrics", headers=BEARER, timeout=10)
            assert answer.status_code == 200
            return answer.text

        wait_until(lambda: value(scrape(), "passid_http_requests_total", READYZ) == REQUESTS,
                   "the scraped counter reached the requests sent", every=0.1)
        served_by = Counter(line["process"] for line in access_lines(tmp_path / "app.log")
                            if line["request_id"] in sent)
        assert sum(served_by.values()) == REQUESTS
        assert len(served_by) == 2, f"one worker served every request: {served_by}"
        for _ in range(6):  # whichever worker answers the scrape, the same sum
            assert value(scrape(), "passid_http_requests_total", READYZ) == REQUESTS
        # Each worker's pool counts its own connections; the scrape adds the live workers' up.
        assert value(scrape(), "passid_db_pool_max_connections") == 2 * 20
        [folder] = (tmp_path / "instance" / "metrics").iterdir()
        assert folder.name == f"{server.process.pid}-{start_time(server.process.pid)}"  # type: ignore[union-attr]
    finally:
        server.stop()


def access_lines(log: Path) -> list[dict]:  # type: ignore[type-arg]
    """The JSON access lines of the server's log (Granian's own lines are text and are left out)."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "passid.access"]


def test_a_new_server_leaves_the_folders_of_stopped_ones_and_its_running_neighbours_alone(tmp_path: Path) -> None:
    running = f"{os.getpid()}-{start_time(os.getpid())}"
    for name in (running, f"{os.getpid()}-1", "999999999-5", "mine"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "counter_1.db").write_bytes(b"")
    forget_stopped_servers(tmp_path, keep="mine")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([running, "mine"])


def test_a_worker_drops_the_live_gauges_of_dead_workers_and_keeps_their_counts(tmp_path: Path) -> None:
    dead, alive = 999999999, os.getppid()
    for name in (f"gauge_livesum_{dead}.db", f"gauge_livesum_{alive}.db", f"gauge_livesum_{os.getpid()}.db",
                 f"counter_{dead}.db", f"histogram_{dead}.db"):
        (tmp_path / name).write_bytes(b"")
    forget_dead_workers(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"gauge_livesum_{alive}.db", f"counter_{dead}.db", f"histogram_{dead}.db"])
