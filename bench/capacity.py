"""Capacity: how many awaiting widgets, each polling every 2.5 s, one machine holds.

1. Our app (pointed at the sandbox as PASSID) opens one real QR session per
   widget, through `POST /verify/qr/session`; their poll URLs go to a file.
   Sessions are opened as the steps need them; these two servers idle meanwhile.
2. PASSID's status answer for a pending request is captured from the sandbox.
   From here a small asyncio stand-in
   (bench/passid_stub.py) answers the status calls with that body, so the
   machine's cores go to our app, not to a second Flask app playing PASSID.
3. For each database our app starts under Granian (as `make run` does) pointed at the
   stand-in, and wrk (bench/capacity.lua) sends widgets ÷ 2.5 requests per
   second on a fixed schedule, rotating over the poll URLs, for each step of
   widgets. A step passes with no errors, p99 < 250 ms and the arrival rate
   held (≥ 97 % of the target: a server that falls behind lowers it).
   Stepping stops at the first failing step, and no step starts once the
   time budget (--budget-minutes, default 20) is spent.

Per step it reports latency, errors, peak resident memory per worker
(/proc), and CPU per process group, including what other processes on the
machine used meanwhile, so a busy machine shows in the figures.

wrk holds keep-alive connections (about one per 8 widgets) as a reverse
proxy in front of the app would, rather than one per browser. bench/serving.py reuses
this machinery to compare servers (`--config sqlite:2x8@gunicorn-gthread` picks one here).

Run: `make bench-load` (or `.venv/bin/python -m bench.capacity [--steps 250,500 --seconds 5]`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from itsdangerous import URLSafeTimedSerializer

from app.widget.polling import WINDOW_SECONDS, window_mark
from bench.support import (
    PRODUCTION_LIKE,
    WEBHOOK_SECRET,
    BenchServer,
    Wiring,
    machine_note,
    open_qr_session,
    passid_and_app,
    print_table,
    widget_options,
)
from tests.support.scraping import value
from tests.support.servers import (
    BIN,
    DEFAULT_SERVER,
    ROOT,
    SERVERS,
    base_env,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    migrate,
    postgres_available,
)

INTERVAL = 2.5
P99_LIMIT_MS = 250.0
RATE_HELD = 0.97
MEMORY_LIMIT_MB = 120
LUA = Path(__file__).with_name("capacity.lua")
CHECK_SECONDS = 7.5  # PASSID_POLL_CHECK_SECONDS, its default; capacity.lua works out the same windows
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The app that opens the sessions idles during the load: no background passes.
QUIET = {"PASSID_BACKGROUND_JOBS": "false"}
# SQLite with one worker (as the brief's baseline) and with one per core; PostgreSQL with one per core and more.
DEFAULT_CONFIGS = ["sqlite:1x8", "sqlite:2x8", "postgres:2x8", "postgres:3x8"]
# /metrics opened for the run, to count the polls that asked PASSID (a check each: the share no cheap path takes).
METRICS_TOKEN = "bench-capacity-metrics-0123456789"
# Up past the product's target (8,000 widgets on 2 cores), so the step that fails shows how far off it is.
DEFAULT_STEPS = "1000,3000,5000,7000,8000,9000"
TARGET_WIDGETS = 8000


@dataclass(frozen=True)
class Config:
    database: str  # "sqlite" | "postgres"
    workers: int
    threads: int
    server: str = DEFAULT_SERVER  # one of tests.support.servers.SERVERS

    @classmethod
    def parse(cls, text: str) -> Config:
        """`database:WORKERSxTHREADS`, optionally `@server` (production's server when left out)."""
        text, _, server = text.partition("@")
        database, _, shape = text.partition(":")
        workers, _, threads = shape.partition("x")
        if database not in ("sqlite", "postgres") or server not in ("", *SERVERS):
            raise SystemExit(f"bad --config {text!r}: database:WORKERSxTHREADS[@{'|'.join(SERVERS)}]")
        return cls(database, int(workers), int(threads), server or DEFAULT_SERVER)

    def __str__(self) -> str:
        name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[self.database]
        if self.server == "waitress":
            return f"{name}, 1 process × {self.threads} threads (waitress)"
        if self.server == "gunicorn-gevent":
            return f"{name}, {self.workers} worker{'s' if self.workers > 1 else ''} (gunicorn gevent)"
        server = {"granian": "Granian", "gunicorn-gthread": "gunicorn gthread"}[self.server]
        return f"{name}, {self.workers} worker{'s' if self.workers > 1 else ''} × {self.threads} threads ({server})"


# --- preparing the widgets -----------------------------------------------------------------

class Widgets:
    """Real QR sessions opened through our app (pointed at the sandbox), topped up as steps need them.

    The sandbox and that app stay up, idle, only to open more sessions for a larger step.
    """

    def __init__(self, wiring: Wiring, tmp: Path) -> None:
        self.wiring = wiring
        self.tmp = tmp
        self.browser = requests.Session()
        self.options = widget_options(self.browser, wiring.app.url)
        self.paths: list[str] = []

    def template(self) -> Path:
        """PASSID's answer for a pending request, its id written as {request_id}, for the stand-in."""
        request_id = open_qr_session(self.browser, self.wiring.app.url, self.options).request_id
        answer = requests.get(f"{self.wiring.passid.sandbox_url}/api/bridge/request/{request_id}",
                              headers={"X-Institution-Key": self.wiring.api_key}, timeout=10)
        answer.raise_for_status()
        assert answer.json()["status"] == "pending"
        template = self.tmp / "pending.json"
        template.write_bytes(answer.content.replace(request_id.encode(), b"{request_id}"))
        return template

    def file_for(self, count: int) -> Path:
        """A file of `count` poll paths (one per widget), opening sessions first if needed."""
        missing = count - len(self.paths)
        if missing > 0:
            started = time.monotonic()
            lock = threading.Lock()

            def opener(n: int) -> None:
                http = requests.Session()
                for _ in range(n):
                    session = open_qr_session(http, self.wiring.app.url, self.options)
                    path = session.poll_url.removeprefix(self.wiring.app.url)
                    with lock:
                        self.paths.append(f"{path} {window_naming(path)}")

            openers = [threading.Thread(target=opener, args=(missing // 4 + (i < missing % 4),)) for i in range(4)]
            for thread in openers:
                thread.start()
            for thread in openers:
                thread.join()
            print(f"  (opened {missing} more QR sessions in {time.monotonic() - started:.0f} s)", flush=True)
        path = self.tmp / f"polls-{count}.txt"
        path.write_text("\n".join(self.paths[:count]) + "\n")
        return path


def start_stub(template: Path, delay_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    """The stand-in on a free port whose neighbour (its control port, for bench/faults.py) is free too."""
    port = free_port()
    while not _port_free(port + 1):
        port = free_port()
    process = subprocess.Popen(
        [str(BIN / "python"), "-m", "bench.passid_stub", str(port), str(template), str(delay_ms)],
        cwd=ROOT, start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the PASSID stand-in did not start")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- measuring ----------------------------------------------------------------------------------

def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def resident_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def database_pids(database_name: str | None) -> list[int]:
    """PostgreSQL's backend processes serving our database (their command line names it)."""
    if not database_name:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if database_name.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, ours or not)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # less idle and iowait


def require_wrk() -> None:
    """Stop with a sentence, not a traceback, when the load generator is missing."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench-load` installs it (apt-get install wrk)")


def checks_so_far(server: BenchServer) -> float | None:
    """PASSID status calls the server made so far (all workers), or None where /metrics is closed."""
    try:
        answer = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                              timeout=10)
    except requests.RequestException:
        return None
    if answer.status_code != 200:
        return None
    return value(answer.text, "passid_upstream_calls_total", {"endpoint": "get_request"})


def window_naming(poll_path: str) -> str:
    """What capacity.lua needs to name the request's check windows as the app does (`polling.window_mark`): its
    expiry in epoch ms and the checksum part, read from the poll's handle (`r`, `x`; its signature is the app's
    business)."""
    handle = parse_qs(urlsplit(poll_path).query)["h"][0]
    _, payload = URLSafeTimedSerializer("").loads_unsafe(handle)
    expires_at = datetime.fromisoformat(payload["x"])
    expires_ms = round(expires_at.timestamp() * 1000)
    checksum = window_mark(payload["r"], expires_at, 0, 0).partition("-")[2]
    return f"{expires_ms} {checksum}"


def run_step(server: BenchServer, stub_pid: int, widgets: Widgets, count: int, seconds: int,
             database_name: str | None = None, timeout: float = 2.0) -> dict:
    paths_file = widgets.file_for(count)
    rate = count / INTERVAL
    connections = max(16, math.ceil(count / 8))
    workers = server.worker_pids()
    assert server.process is not None
    ours = sorted({server.process.pid, *workers})  # waitress serves from its one process
    checks_before = checks_so_far(server)
    backends = {pid: cpu_seconds([pid]) for pid in database_pids(database_name)}
    before = (cpu_seconds(ours), cpu_seconds([stub_pid]), machine_busy_seconds())
    _child_cpu_since_last()
    wrk = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", f"{timeout:g}s", "-s", str(LUA), server.url,
         "--", str(paths_file), f"{rate:.3f}", "1", str(round(CHECK_SECONDS * 1000)),
         str(round(WINDOW_SECONDS * 1000))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    peak: dict[int, float] = dict.fromkeys(workers, 0.0)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            for pid in peak:
                peak[pid] = max(peak[pid], resident_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    sampler.start()
    output, _ = wrk.communicate(timeout=seconds + timeout + 60)
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    cpu_wrk = _child_cpu_since_last()
    cpu_app = cpu_seconds(ours) - before[0]
    cpu_stub = cpu_seconds([stub_pid]) - before[1]
    # Backends come and go with the connection pool: count each from its start or the step's.
    cpu_db = sum(cpu_seconds([pid]) - backends.get(pid, 0.0) for pid in database_pids(database_name))
    cpu_machine = machine_busy_seconds() - before[2]
    checks_after = checks_so_far(server)
    line = next((ln for ln in output.decode().splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{output.decode()[-2000:]}")
    result = json.loads(line.removeprefix("BENCH "))
    achieved = result["requests"] / (result["duration_us"] / 1e6)
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    passed = errors == 0 and result["p99_us"] / 1000 < P99_LIMIT_MS and achieved >= RATE_HELD * rate
    return {
        "widgets": count, "rate": rate, "achieved": achieved, "connections": connections,
        "p50": result["p50_us"] / 1000, "p90": result["p90_us"] / 1000, "p99": result["p99_us"] / 1000,
        "max": result["max_us"] / 1000, "errors": errors, "late": result["late"],
        "error_detail": {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]},
        "statuses": {k: result[k] for k in ("s204", "s200", "s502", "sother")},
        "rss": max(peak.values(), default=0.0),
        "cpu_per_poll": cpu_app / max(1, result["requests"]),
        "checked": (None if checks_before is None or checks_after is None
                    else (checks_after - checks_before) / max(1, result["requests"])),
        "reported": result["reported"] / max(1, result["requests"]),  # polls sent with PASSID-Checked
        "cpu_app": cpu_app / wall, "cpu_db": cpu_db / wall, "cpu_stub": cpu_stub / wall, "cpu_wrk": cpu_wrk / wall,
        "cpu_other": max(0.0, cpu_machine - cpu_app - cpu_db - cpu_stub - cpu_wrk) / wall,
        "passed": passed,
    }


_children_seen = 0.0


def _child_cpu_since_last() -> float:
    """CPU seconds used by waited-for children (wrk) since the last call."""
    global _children_seen
    times = os.times()
    total = times.children_user + times.children_system
    used, _children_seen = total - _children_seen, total
    return used


def run_config(config: Config, tmp: Path, widgets: Widgets, stub: str, stub_pid: int,
               steps: list[int], seconds: int, deadline: float) -> list[dict]:
    name = None
    if config.database == "postgres":
        name, url = create_postgres_database()
    else:
        url = f"sqlite:///{tmp / f'capacity-{config.workers}x{config.threads}.db'}"
    try:
        env = base_env(url, PASSID_BASE_URL=stub, PASSID_API_KEY=widgets.wiring.api_key,
                       PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET, PASSID_SANDBOX_ENABLED="false",
                       PASSID_METRICS_TOKEN=METRICS_TOKEN, PASSID_POLL_CHECK_SECONDS=str(CHECK_SECONDS),
                       **PRODUCTION_LIKE)
        migrate(env)
        server = BenchServer(env, tmp / f"{config.database}-{config.server}.log", workers=config.workers,
                             threads=config.threads, server=config.server).start()
        try:
            run_step(server, stub_pid, widgets, min(steps), 3)  # warm-up: connections, imports, caches
            results = []
            for count in steps:
                if time.monotonic() > deadline:
                    print(f"  {config}: time budget spent, steps from {count} widgets skipped", flush=True)
                    break
                result = run_step(server, stub_pid, widgets, count, seconds, name)
                results.append(result)
                print(f"  {config}: {count} widgets → p99 {result['p99']:.1f} ms, "
                      f"{result['achieved']:.0f}/{result['rate']:.0f} req/s, errors {result['errors']}, "
                      f"app CPU {result['cpu_per_poll'] * 1000:.3f} ms/poll, {share(result['checked'])} asked PASSID "
                      f"({result['reported']:.0%} sent PASSID-Checked), RSS {result['rss']:.0f} MB/worker"
                      f"{errors_told(result) if result['errors'] else ''}", flush=True)
                if not result["passed"]:
                    break
            return results
        finally:
            server.stop()
    finally:
        if name:
            drop_postgres_database(name)


def errors_told(result: dict) -> str:
    """The kinds of error and the answers by status, for a step with errors."""
    return f" {result['error_detail']} {result['statuses']}"


def share(fraction: float | None) -> str:
    """The share of polls that asked PASSID (each a check, through Flask), or "?" where it was not counted."""
    return "?" if fraction is None else f"{fraction * 100:.0f}%"


def report(config: Config, results: list[dict], upstream_ms: float) -> None:
    def pct(value: float) -> str:
        return f"{value * 100:.0f}%"

    rows = [
        [r["widgets"], f"{r['rate']:.0f}", f"{r['achieved']:.0f}", r["connections"], f"{r['p50']:.1f}",
         f"{r['p99']:.1f}", r["errors"], r["late"], f"{r['rss']:.0f}", f"{r['cpu_per_poll'] * 1000:.2f}",
         share(r.get("checked")),
         pct(r["cpu_app"]), pct(r["cpu_db"]), pct(r["cpu_stub"]), pct(r["cpu_wrk"]), pct(r["cpu_other"]),
         "pass" if r["passed"] else "FAIL"]
        for r in results
    ]
    print_table(
        f"{config}; PASSID stand-in answering in {upstream_ms:g} ms; CPU as % of one core (the machine has "
        f"{os.cpu_count()}), 'other' = processes not in this benchmark",
        ["widgets", "req/s target", "req/s done", "conns", "p50 ms", "p99 ms", "errors", "late sends",
         "RSS/worker MB", "app CPU ms/poll", "asked PASSID", "app", "db", "stub", "wrk", "other", "verdict"],
        rows,
    )
    passing = [r["widgets"] for r in results if r["passed"]]
    memory = max((r["rss"] for r in results), default=0.0)
    print(f"largest passing: {max(passing) if passing else 'none'} widgets "
          f"(target ≥ {TARGET_WIDGETS:,} with p99 < {P99_LIMIT_MS:.0f} ms and no errors); "
          f"peak resident memory per worker {memory:.0f} MB (target ≤ {MEMORY_LIMIT_MB} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=DEFAULT_STEPS, help=f"widget counts, ascending (default {DEFAULT_STEPS})")
    parser.add_argument("--seconds", type=int, default=20, help="seconds per step (default 20)")
    parser.add_argument("--config", action="append",
                        help="database:WORKERSxTHREADS, repeatable "
                             "(default sqlite:1x8, sqlite:2x8, postgres:2x8, postgres:3x8)")
    parser.add_argument("--budget-minutes", type=float, default=20.0,
                        help="no new step starts after this long (default 20)")
    parser.add_argument("--upstream-ms", type=float, default=0.0,
                        help="the stand-in's answer delay, standing for the network to PASSID (default 0)")
    args = parser.parse_args()
    require_wrk()
    steps = sorted(int(s) for s in args.steps.split(","))
    configs = [Config.parse(c) for c in (args.config or DEFAULT_CONFIGS)]
    if any(c.database == "postgres" for c in configs) and not postgres_available():
        print("(PostgreSQL not reachable: its runs are skipped)")
        configs = [c for c in configs if c.database != "postgres"]
    deadline = time.monotonic() + args.budget_minutes * 60
    print(f"Capacity of awaiting widgets polling every {INTERVAL} s ({machine_note()})")
    with tempfile.TemporaryDirectory() as tmp_name, passid_and_app(Path(tmp_name), **QUIET) as wiring:
        tmp = Path(tmp_name)
        widgets = Widgets(wiring, tmp)
        stub, stub_url = start_stub(widgets.template(), args.upstream_ms)
        try:
            outcomes = [(config, run_config(config, tmp, widgets, stub_url, stub.pid, steps, args.seconds,
                                              deadline))
                        for config in configs]
        finally:
            stub.terminate()
            stub.wait(timeout=10)
    for config, results in outcomes:
        report(config, results, args.upstream_ms)
    print("Load from wrk on loopback: a fixed arrival rate of widgets ÷ 2.5 s over keep-alive connections, "
          "rotating over one real poll URL per widget; every poll is a pending one. With webhooks on, a widget's "
          "poll asks PASSID only in the request's check windows, one per PASSID_POLL_CHECK_SECONDS (7.5 s) and the "
          "same on every worker (app/widget/polling.py); the polls between are answered from our records, most "
          "before Flask (app/widget/pending_polls.py), which makes the due checks too. 'asked PASSID' is the share of "
          "polls at a due check: about 1 in 3 (capacity.lua sends back PASSID-Checked as widget.js does, so a window's "
          "second poll reaching the other worker does not ask again).")


if __name__ == "__main__":
    main()
