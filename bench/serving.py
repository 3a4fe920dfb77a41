"""Which server `make run` uses, by measurement with our app: capacity and slow clients, side by side.

For each candidate server serving `wsgi:app` (SQLite, the default store, with
production settings; PASSID is bench/passid_stub.py, as in bench/capacity.py):

1. Slow clients: 40 connections each send a request line and then one header
   line every 5 s, never finishing, for --slow-seconds (default 30), while a
   prober asks `/healthz` every 200 ms on a new connection. Reported: probe
   p50 / p99 / max and how many got no answer within 2 s. Target: none.
2. Slow bodies (the same attack one step later): 40 webhook POSTs with whole
   headers announcing 60 KB, then one body byte every 5 s, for --slow-seconds,
   with the same prober. Shown for the choice; the issue's target is item 1.
3. Capacity: waiting widgets polling every 2.5 s, as bench/capacity.py
   measures them (its wrk script, its pass rule: no errors, p99 < 250 ms, the
   arrival rate held), stepping up until a step fails or the candidate's share
   of --budget-minutes is spent.

Candidates: Granian (WSGI, 2 workers × 8 blocking threads: production's
flags, tests/support/servers.py `serve_command`), gunicorn gthread (2 × 8, the
previous default), gunicorn gevent (2 workers; psycopg 3 cooperates with
gevent, APScheduler's threads become greenlets), waitress (one process,
8 threads: it has no worker processes). Everything runs on this machine, so
other load moves the figures: the machine's load is printed, and the CPU
that processes outside the benchmark used during each capacity step.

Run: `make bench-load` (or `.venv/bin/python -m bench.serving [--steps 1000,2000 --seconds 8 --slow-seconds 15]`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.capacity import P99_LIMIT_MS, QUIET, RATE_HELD, Widgets, require_wrk, run_step, start_stub
from bench.support import (
    PRODUCTION_LIKE,
    WEBHOOK_SECRET,
    BenchServer,
    machine_note,
    passid_and_app,
    percentile,
    print_table,
)
from tests.support.servers import SERVERS, base_env, migrate
from tests.support.slow_clients import SlowClients, probing

SLOW_CONNECTIONS = 40
LINE_EVERY_SECONDS = 5.0
PROBE_EVERY_SECONDS = 0.2
ANSWER_WITHIN_SECONDS = 2.0
# server: (workers, threads per worker)
SHAPES = {"granian": (2, 8), "gunicorn-gthread": (2, 8), "gunicorn-gevent": (2, 8), "waitress": (1, 8)}


@dataclass
class SlowFigures:
    probes: int
    unanswered: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def cells(self) -> list[str]:
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}"

        return [f"{fmt(self.p50_ms)} / {fmt(self.p99_ms)} / {fmt(self.max_ms)}", f"{self.unanswered}/{self.probes}"]


@dataclass
class Outcome:
    server: str
    workers: int
    threads: int
    slow_headers: SlowFigures | None = None
    slow_bodies: SlowFigures | None = None
    steps: list[dict] = field(default_factory=list)
    note: str = ""

    @property
    def label(self) -> str:
        if self.server == "waitress":
            return f"waitress, 1 process × {self.threads} threads"
        if self.server == "gunicorn-gevent":
            return f"gunicorn gevent, {self.workers} workers"
        name = {"granian": "Granian WSGI", "gunicorn-gthread": "gunicorn gthread"}[self.server]
        return f"{name}, {self.workers} workers × {self.threads} threads"


def slow_case(server: BenchServer, seconds: float, *, slow_body: bool) -> SlowFigures:
    """Hold 40 slow connections open for `seconds` while probing /healthz."""
    with (
        SlowClients("127.0.0.1", server.port, SLOW_CONNECTIONS, LINE_EVERY_SECONDS, slow_body=slow_body),
        probing(f"{server.url}/healthz", PROBE_EVERY_SECONDS, ANSWER_WITHIN_SECONDS) as probes,
    ):
        time.sleep(seconds)
    answered = [latency * 1000 for latency in probes.answered]
    return SlowFigures(
        probes=len(probes.latencies),
        unanswered=probes.unanswered,
        p50_ms=percentile(answered, 50) if answered else None,
        p99_ms=percentile(answered, 99) if answered else None,
        max_ms=max(answered) if answered else None,
    )


def measure(outcome: Outcome, tmp: Path, widgets: Widgets, stub_url: str, stub_pid: int, steps: list[int],
            seconds: int, slow_seconds: float, deadline: float) -> None:
    url = f"sqlite:///{tmp / f'serving-{outcome.server}.db'}"
    env = base_env(url, PASSID_BASE_URL=stub_url, PASSID_API_KEY=widgets.wiring.api_key,
                   PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET, PASSID_SANDBOX_ENABLED="false", **PRODUCTION_LIKE)
    migrate(env)
    server = BenchServer(env, tmp / f"serving-{outcome.server}.log", workers=outcome.workers,
                         threads=outcome.threads, server=outcome.server)
    try:
        server.start()
    except RuntimeError as error:
        outcome.note = f"did not start: {str(error).splitlines()[0]}"
        return
    try:
        outcome.slow_headers = slow_case(server, slow_seconds, slow_body=False)
        print(f"  {outcome.label}: slow headers → {outcome.slow_headers}", flush=True)
        outcome.slow_bodies = slow_case(server, slow_seconds, slow_body=True)
        print(f"  {outcome.label}: slow bodies → {outcome.slow_bodies}", flush=True)
        time.sleep(LINE_EVERY_SECONDS)  # let the server drop what the slow clients left behind
        run_step(server, stub_pid, widgets, min(steps), 3)  # warm-up: connections, imports, caches
        for count in steps:
            if time.monotonic() > deadline:
                outcome.note = f"time budget spent before {count} widgets"
                break
            result = run_step(server, stub_pid, widgets, count, seconds)
            outcome.steps.append(result)
            print(f"  {outcome.label}: {count} widgets → p99 {result['p99']:.1f} ms, "
                  f"{result['achieved']:.0f}/{result['rate']:.0f} req/s, errors {result['errors']}, "
                  f"other processes {result['cpu_other'] * 100:.0f}% of a core", flush=True)
            if not result["passed"]:
                break
    finally:
        server.stop()


def next_step(failed: dict) -> str:
    errors = f", {failed['errors']} errors" if failed["errors"] else ""
    held = failed["achieved"] >= RATE_HELD * failed["rate"]
    rate = "" if held else f", {failed['achieved']:.0f}/{failed['rate']:.0f} req/s"
    return f"{failed['widgets']}: p99 {failed['p99']:.0f}{errors}{rate}"


def report(outcomes: list[Outcome], seconds: int, slow_seconds: float) -> None:
    rows = []
    for outcome in outcomes:
        passing = [step for step in outcome.steps if step["passed"]]
        best = max(passing, key=lambda step: step["widgets"]) if passing else None
        failed = next((step for step in outcome.steps if not step["passed"]), None)
        rows.append([
            outcome.label,
            best["widgets"] if best else "none",
            f"{best['p99']:.0f}" if best else "-",
            next_step(failed) if failed else (outcome.note or "-"),
            f"{best['cpu_per_poll'] * 1000:.2f}" if best else "-",
            f"{max((step['cpu_other'] for step in outcome.steps), default=0) * 100:.0f}%",
            *(outcome.slow_headers.cells() if outcome.slow_headers else ["-", "-"]),
            *(outcome.slow_bodies.cells() if outcome.slow_bodies else ["-", "-"]),
        ])
    print_table(
        f"Serving wsgi:app, SQLite, production settings. Capacity: waiting widgets polling every 2.5 s, {seconds} s "
        f"per step, pass = no errors, p99 < {P99_LIMIT_MS:.0f} ms, rate held. Slow clients: {SLOW_CONNECTIONS} "
        f"connections trickling every {LINE_EVERY_SECONDS:g} s for {slow_seconds:g} s while /healthz is probed every "
        f"{PROBE_EVERY_SECONDS * 1000:.0f} ms ('no answer' = none within {ANSWER_WITHIN_SECONDS:g} s)",
        ["server", "widgets held", "p99 ms there", "next step", "app CPU ms/poll", "other load",
         "slow headers: probe p50/p99/max ms", "no answer", "slow bodies: probe p50/p99/max ms", "no answer"],
        rows,
    )
    print("'other load' is the most CPU that processes outside this benchmark used during a capacity step, "
          "in % of one core (the machine has 2): figures taken on a busy machine are low.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="1000,2000,3000,4000", help="widget counts, ascending")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per capacity step (default 10)")
    parser.add_argument("--slow-seconds", type=float, default=30.0,
                        help="how long each slow-client case lasts (default 30)")
    parser.add_argument("--server", action="append", choices=SERVERS,
                        help="candidate, repeatable (default: all of them)")
    parser.add_argument("--budget-minutes", type=float, default=9.0,
                        help="no new capacity step starts after this long (default 9), shared fairly")
    args = parser.parse_args()
    require_wrk()
    steps = sorted(int(s) for s in args.steps.split(","))
    servers = args.server or list(SERVERS)
    outcomes = [Outcome(server, *SHAPES[server]) for server in servers]
    started = time.monotonic()
    print(f"Serving setups compared with our app ({machine_note()})", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name, passid_and_app(Path(tmp_name), **QUIET) as wiring:
        tmp = Path(tmp_name)
        widgets = Widgets(wiring, tmp)
        stub, stub_url = start_stub(widgets.template(), 0.0)
        try:
            widgets.file_for(max(steps[: 2]))  # open the common sessions before any clock starts
            for index, outcome in enumerate(outcomes):
                # Each candidate may use its share of what is left, so one slow candidate cannot starve the rest.
                left = args.budget_minutes * 60 - (time.monotonic() - started)
                deadline = time.monotonic() + max(0.0, left) / (len(outcomes) - index)
                measure(outcome, tmp, widgets, stub_url, stub.pid, steps, args.seconds, args.slow_seconds, deadline)
        finally:
            stub.terminate()
            stub.wait(timeout=10)
    report(outcomes, args.seconds, args.slow_seconds)


if __name__ == "__main__":
    main()
