"""Upstream faults under load: PASSID hangs, refuses, cuts, 500s or answers nonsense while widgets poll.

The capacity setup (bench/capacity.py): real QR sessions opened through our
app, then our app under Granian with production settings (10 s timeout to
PASSID, a check every 7 s per widget with webhooks on, at most 4 calls in
flight per process) pointed at the PASSID stand-in, and wrk polling for
every widget every 2.5 s. For each fault the stand-in answers normally, then
fails that way, then answers normally again; each phase is one wrk run
(whose timeout, 15 s, outlasts ours to PASSID).
Meanwhile a prober asks our /healthz and delivers a signed webhook every
100 ms, to show whether the app as a whole stays responsive.

What a well-behaved app shows: during a fault the polls that ask PASSID get
the widget's error state (502 with "Try again"), the others stay pending
(204) and fast; no poll goes unanswered (wrk's connect, read and timeout
errors stay 0), /healthz and the webhook receiver keep answering quickly;
after it, every poll is a 204 again within the timeout.

Run: `make bench-load` (or `.venv/bin/python -m bench.faults [--widgets 1000 --modes hang,refuse]`).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.capacity import QUIET, Config, Widgets, run_step, start_stub
from bench.support import (
    PRODUCTION_LIKE,
    WEBHOOK_SECRET,
    BenchServer,
    machine_note,
    passid_and_app,
    percentile,
    print_table,
)
from bench.webhook_ack import post_signed_event, signed_event
from tests.support.servers import base_env, create_postgres_database, drop_postgres_database, migrate

# Longer than the app's 10 s timeout to PASSID: a poll held that long is measured, not dropped.
WRK_TIMEOUT = 15.0
ALL_CPU = ("cpu_app", "cpu_db", "cpu_stub", "cpu_wrk", "cpu_other")
MODES = ("hang", "refuse", "reset", "error500", "garbage", "wrong_shape")


def switch(stub_url: str, mode: str) -> None:
    host, port = stub_url.rsplit(":", 1)
    requests.get(f"{host}:{int(port) + 1}/mode/{mode}", timeout=5).raise_for_status()


class Prober:
    """Asks /healthz and delivers one signed webhook every 100 ms, timing both."""

    def __init__(self, app_url: str) -> None:
        self.app_url = app_url
        self.health: list[float] = []
        self.webhook: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        http = requests.Session()
        while not self._stop.wait(0.1):
            started = time.perf_counter()
            try:
                ok = http.get(f"{self.app_url}/healthz", timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            self.health.append(time.perf_counter() - started)
            started = time.perf_counter()
            status, _ = post_signed_event(http, f"{self.app_url}/webhooks/passid", signed_event())
            self.webhook.append(time.perf_counter() - started)
            self.failures += (not ok) + (status != 200)


def phase(server: BenchServer, stub_pid: int, widgets: Widgets, count: int, seconds: int) -> dict:
    with Prober(server.url) as prober:
        result = run_step(server, stub_pid, widgets, count, seconds, timeout=WRK_TIMEOUT)
    result.update(health_p99=percentile(prober.health, 99) * 1000, webhook_p99=percentile(prober.webhook, 99) * 1000,
                  probe_failures=prober.failures)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widgets", type=int, default=1000, help="awaiting widgets polling (default 1000)")
    parser.add_argument("--config", default="sqlite:2x8", help="database:WORKERSxTHREADS (default sqlite:2x8)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"faults to play (default {','.join(MODES)})")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of each fault (default 15)")
    args = parser.parse_args()
    config = Config.parse(args.config)
    modes = [m for m in args.modes.split(",") if m]
    print(f"Upstream faults under load, {args.widgets} widgets, {config} ({machine_note()})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name, passid_and_app(Path(tmp_name), **QUIET) as wiring:
        tmp = Path(tmp_name)
        widgets = Widgets(wiring, tmp)
        stub, stub_url = start_stub(widgets.template(), 0.0)
        name = None
        if config.database == "postgres":
            name, url = create_postgres_database()
        else:
            url = f"sqlite:///{tmp / 'faults.db'}"
        try:
            env = base_env(url, PASSID_BASE_URL=stub_url, PASSID_API_KEY=wiring.api_key,
                           PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET, PASSID_SANDBOX_ENABLED="false",
                           PASSID_TIMEOUT_SECONDS="10", **PRODUCTION_LIKE)
            migrate(env)
            server = BenchServer(env, tmp / "app.log", workers=config.workers, threads=config.threads).start()
            try:
                run_step(server, stub.pid, widgets, args.widgets, 3)  # warm-up
                for mode in modes:
                    for label, current, seconds in (("before", "ok", 5), (mode, mode, args.seconds),
                                                    ("after", "ok", args.seconds)):
                        switch(stub_url, current)
                        result = phase(server, stub.pid, widgets, args.widgets, seconds)
                        lost = {k: v for k, v in result["error_detail"].items() if k != "status"}
                        statuses = result["statuses"]
                        rows.append([mode if label != "after" else "", label, f"{result['achieved']:.0f}",
                                     f"{result['p50']:.1f}", f"{result['p99']:.1f}", statuses["s204"],
                                     statuses["s502"], statuses["s200"] + statuses["sother"],
                                     sum(lost.values()), f"{result['health_p99']:.1f}",
                                     f"{result['webhook_p99']:.1f}", result["probe_failures"],
                                     f"{result['cpu_app'] * 100:.0f}%",
                                     f"{sum(result[k] for k in ALL_CPU) * 100:.0f}%"])
                        print(f"  {mode} / {label}: p90 {result['p90']:.1f} p99 {result['p99']:.1f} "
                              f"max {result['max']:.0f} ms, 204 {statuses['s204']}, 502 {statuses['s502']}, "
                              f"unanswered {lost or 0}", flush=True)
            finally:
                server.stop()
        finally:
            stub.terminate()
            stub.wait(timeout=10)
            if name:
                drop_postgres_database(name)
    print_table(
        f"Polls of {args.widgets} widgets ({args.widgets / 2.5:.0f} req/s) through each fault; "
        "probes = /healthz and a signed webhook every 100 ms",
        ["fault", "phase", "req/s", "p50 ms", "p99 ms*", "204 pending", "502 error state", "other",
         "unanswered", "healthz p99 ms", "webhook p99 ms", "probe failures", "app CPU", "all CPU"],
        rows,
    )
    print("CPU as % of one core (the machine has 2); 'all' adds wrk, the stand-in and every other process.")
    print("* wrk's p99 counts a poll held for seconds once per slot its connection missed meanwhile "
          "(coordinated-omission correction), so a handful of polls held to the 10 s timeout lift it to seconds; "
          "the 502 column says how many there were.")
    print(f"'unanswered' counts wrk's connect, read and timeout ({WRK_TIMEOUT:g} s) errors: polls the app never "
          "answered.")


if __name__ == "__main__":
    main()
