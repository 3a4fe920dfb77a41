"""App CPU per pending poll: the whole WSGI app called in this process, no server, no network.

Every waiting widget polls `GET /verify/qr/status` every 2.5 s, and nearly every poll is a pending one
answered with an empty 204, so the CPU one pending poll costs decides how many widgets a core holds
(bench/capacity.py measures that through a real server). This measures the app's own share of it, with
nothing else on the path: `app.wsgi_app` (access log, request guards, everything the server calls)
is called directly for pending polls between upstream checks, as a browser sends them (htmx, a
browser's Accept-Encoding and Accept-Language, a Host the app serves), over many pending requests in
turn, with the access log written (to /dev/null) as production writes it.

Two paths, interleaved in rounds so machine load drifts over both alike:

  Flask         the poll answered by the Flask view (`widget.poll`): the handle's signature checked,
                the options unsigned, Flask's request, Talisman's headers, the metrics
  pending layer the same poll answered by `app/widget/pending_polls.py` before Flask, from a handle
                Flask already found pending
  at a check    the same poll when its upstream check is due (the first poll in one of the request's
                check windows, one per PASSID_POLL_CHECK_SECONDS): PASSID asked (by the layer, which
                answers "still pending" itself; by Flask in an older checkout); PASSID is
                bench/passid_stub.py in a process of its own (its CPU not counted), answering "pending"

CPU is this process's (`time.process_time`), so other work on the machine moves it little; the
load average is printed anyway. Without the layer (an older checkout) only the Flask path is measured.

Run: `make bench` (or `.venv/bin/python -m bench.poll_cpu [--polls 20000 --rounds 5]`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from app import create_app
from app.plumbing.access_log import ACCESS_LOGGER
from app.widget import signed_handles
from app.widget.pending_polls import EXTENSION as LAYER  # where the widget keeps its layer
from app.widget.polling import UpstreamChecks, check_window
from bench.capacity import start_stub
from bench.support import machine_note, print_table
from tests.support.in_process import app_environ, migrated_sqlite_url

REQUESTS = 500  # pending requests the polls go round, as many widgets' would
BROWSER = {
    "HX-Request": "true",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "de-DE,de;q=0.9,en;q=0.8",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
}
REQUEST_ID = "bench.request_id"  # the poll's request id, kept in its environ (the app ignores the key)


PENDING_BODY = json.dumps({  # PASSID's answer for a pending request, as bench/passid_stub.py serves it
    "requestId": "{request_id}", "status": "pending", "code": "ABCD-EFGH", "expiresAt": "2099-01-01T00:00:00Z",
    "permissions": ["identity_verified"], "institutionName": "Bench Bank",
})


def build_app(tmp: Path, passid_url: str) -> Flask:
    """The app as production runs it for this question: webhooks on, checks a minute apart, no sandbox."""
    access = logging.getLogger(ACCESS_LOGGER)  # written, as in production, but not to the terminal
    access.handlers[:] = [logging.StreamHandler(open(os.devnull, "w"))]  # noqa: SIM115 (the process's life)
    access.propagate = False
    access.setLevel(logging.INFO)
    return create_app(app_environ(
        migrated_sqlite_url(tmp), tmp, 8000,
        PASSID_API_KEY="sk_live_bench_0123456789", PASSID_BASE_URL=passid_url,
        PASSID_SANDBOX_ENABLED="false", PASSID_WEBHOOK_SECRET="whsec_bench_0123456789abcdef",
        PASSID_POLL_CHECK_SECONDS="60", PASSID_BACKGROUND_JOBS="false",
    ))


EXPIRES_IN = timedelta(minutes=30)  # every bench request's, from when the bench starts
EXPIRES_AT = datetime.now(UTC) + EXPIRES_IN


def between_windows(checks: UpstreamChecks) -> Callable[[], float]:
    """A clock stopped halfway between two of the requests' check windows (app/widget/polling.py)."""
    every = checks.every_seconds
    stopped = EXPIRES_AT.timestamp() - (EXPIRES_IN.total_seconds() // every - 0.5) * every
    assert check_window(EXPIRES_AT.timestamp() - stopped, every, checks.window_seconds) is None
    return lambda: stopped


def pending_polls(app: Flask, count: int) -> list[dict[str, Any]]:
    """One poll environ per pending request."""
    environs = []
    expires = EXPIRES_AT.isoformat()
    with app.app_context():
        options = signed_handles.sign("options", {"locale": "de", "institution_name": "Bench Bank"})
        for _ in range(count):
            request_id = f"req_{secrets.token_hex(12)}"
            handle = signed_handles.sign("request", {"r": request_id, "c": "ABCD-EFGH", "d": "passid://r",
                                                     "x": expires})
            builder = EnvironBuilder(path="/verify/qr/status", query_string={"h": handle, "o": options},
                                     headers=BROWSER, base_url="http://127.0.0.1:8000",
                                     environ_base={"REMOTE_ADDR": "127.0.0.1"})
            environs.append({**builder.get_environ(), REQUEST_ID: request_id})
    return environs


def call(wsgi: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> str:
    """One request as a server makes it: the app called, its body read and closed."""
    status: list[str] = []

    def start_response(line: str, _headers: list[tuple[str, str]], *_exc: Any) -> None:
        status.append(line)

    body = wsgi(dict(environ), start_response)
    try:
        for _chunk in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return status[0]


def cpu_per_poll(app: Flask, environs: list[dict[str, Any]], polls: int, *, layer_on: bool,
                 checking: bool = False) -> float:
    """CPU seconds per poll over `polls` pending polls, going round the requests (`checking`: each one's
    upstream check due, so PASSID is asked every time)."""
    layer = app.extensions.get(LAYER)
    if layer is not None:
        layer.answering = layer_on
    wsgi = app.wsgi_app
    checks = app.extensions["passid_upstream_checks"]
    checks.clock = between_windows(checks)  # no check window opens during the run: only `forget` makes one due
    for environ in environs:  # each handle through Flask once: what the layer may answer from then on
        assert call(wsgi, environ).startswith("204"), "a pending poll did not answer 204"
    started = time.process_time()
    for n in range(polls):
        environ = environs[n % len(environs)]
        if checking:
            checks.forget(environ[REQUEST_ID])  # its next poll asks, as the first poll in a check window does
        status = call(wsgi, environ)
        if not status.startswith("204"):
            raise RuntimeError(f"a pending poll answered {status}")
    return (time.process_time() - started) / polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=20_000, help="polls per path per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the paths interleaved (default 5)")
    args = parser.parse_args()
    note = machine_note()
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "pending.json"
        template.write_text(PENDING_BODY)
        stub, stub_url = start_stub(template, 0.0)
        try:
            app = build_app(Path(tmp), stub_url)
            environs = pending_polls(app, REQUESTS)
            paths = {"Flask": (False, False), "pending layer": (True, False)}
            if LAYER not in app.extensions:
                del paths["pending layer"]
            paths["at a check"] = (True, True)
            figures: dict[str, list[float]] = {name: [] for name in paths}
            cpu_per_poll(app, environs, 2_000, layer_on=False)  # warm-up: imports, caches, the first refresh
            for _ in range(args.rounds):
                for name, (layer_on, checking) in paths.items():
                    polls = args.polls // 4 if checking else args.polls
                    figures[name].append(cpu_per_poll(app, environs, polls, layer_on=layer_on, checking=checking))
        finally:
            stub.terminate()
            stub.wait(timeout=10)
    rows = [[name, f"{statistics.median(values) * 1e6:.1f}", f"{min(values) * 1e6:.1f}",
             f"{max(values) * 1e6:.1f}", f"{1 / statistics.median(values):,.0f}"]
            for name, values in figures.items()]
    print_table(f"App CPU per pending poll, {args.rounds} rounds × {args.polls} polls over {REQUESTS} requests "
                f"(µs; {note})", ["path", "median µs", "best µs", "worst µs", "polls per CPU second"], rows)
    if "pending layer" in figures:
        ratio = statistics.median(figures["Flask"]) / statistics.median(figures["pending layer"])
        print(f"the layer answers a pending poll for 1/{ratio:.1f} of the Flask path's CPU")
    print("8,000 widgets polling every 2.5 s are 3,200 polls a second: at the layer's figure that is "
          "that many × its µs of CPU, before the server's own share (see bench/capacity.py).")


if __name__ == "__main__":
    main()
