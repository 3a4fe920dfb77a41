"""What the latency benchmarks share: servers, a QR session driven over plain HTTP, percentiles.

A benchmark here starts PASSID (the sandbox, in its own Granian) and our
app pointed at it with an institution key and a webhook secret, the way
production is wired, then drives them over loopback HTTP like a browser or
an integration would. Figures are printed, never asserted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from app.passid import PassidClient
from tests.support.servers import DEFAULT_SERVER, THREADS, AppServer, base_env, migrate, serve_command
from tests.support.widget_http import QrSession, widget_fields
from tests.support.widget_http import open_qr_session as open_widget_session

WEBHOOK_SECRET = "whsec_bench_0123456789abcdef"
PHONE_PROFILE = "NG4M-XQRS-T88W"  # the sandbox profile the phone page signs in as
HTMX = {"HX-Request": "true"}
# Production's pace for background passes, not the tests' faster one.
PRODUCTION_LIKE = {"PASSID_JOB_INTERVAL_SECONDS": "1"}


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 300 samples is the 297th smallest)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float, digits: int = 2) -> str:
    return f"{seconds * 1000:.{digits}f}"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                    for i, (cell, width) in enumerate(zip(header, widths, strict=True))))
    for row in rows:
        print("  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                        for i, (cell, width) in enumerate(zip(row, widths, strict=True))))


def machine_note() -> str:
    """Load average at the start: other work on the machine moves the figures."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min) at start"


@dataclass
class BenchServer(AppServer):
    """AppServer with the knobs a load test turns: which server (production's by default) and its threads."""

    threads: int = THREADS
    server: str = DEFAULT_SERVER

    def start(self) -> BenchServer:
        self._launch(serve_command(self.server, "127.0.0.1", self.port, self.workers, self.threads))
        return self

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server's children, or itself when it has none (waitress)."""
        assert self.process is not None
        pid = self.process.pid
        try:
            children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            children = []
        return children or [pid]


@dataclass
class Wiring:
    """PASSID (the sandbox app) and our app pointed at it, as production is wired."""

    passid: AppServer
    app: AppServer
    api_key: str
    app_database: str
    jwt: str = field(default="", repr=False)

    def passid_client(self, with_key: bool = True) -> PassidClient:
        return PassidClient(self.passid.sandbox_url, self.api_key if with_key else None)

    def phone_login(self) -> str:
        """A customer's JWT, as the PASSID app holds once signed in."""
        if not self.jwt:
            self.jwt = self.passid_client(with_key=False).sandbox_login(PHONE_PROFILE)
        return self.jwt


@contextmanager
def passid_and_app(tmp: Path, *, app_workers: int = 1, via: Callable[[str], str] | None = None,
                   **app_env: str) -> Iterator[Wiring]:
    """Start the sandbox as PASSID, onboard an institution, start our app with its key and webhook secret.

    `via` puts something between our app and PASSID (a counting proxy): given PASSID's URL, it
    returns the one our app is to call.
    """
    passid_env = base_env(f"sqlite:///{tmp}/passid.db", **PRODUCTION_LIKE)
    migrate(passid_env)
    passid = AppServer(passid_env, tmp / "passid.log").start()
    try:
        key = PassidClient(passid.sandbox_url).onboard("Bench Bank").sandbox_key
        database = f"sqlite:///{tmp}/app.db"
        env = base_env(
            database,
            PASSID_BASE_URL=via(passid.sandbox_url) if via else passid.sandbox_url,
            PASSID_API_KEY=key,
            PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET,
            PASSID_SANDBOX_ENABLED="false",
            **{**PRODUCTION_LIKE, **app_env},
        )
        migrate(env)
        app = AppServer(env, tmp / "app.log", workers=app_workers)
        PassidClient(passid.sandbox_url, key).set_webhook(f"{app.url}/webhooks/passid", WEBHOOK_SECRET)
        app.start()
        try:
            yield Wiring(passid, app, key, database)
        finally:
            app.stop()
    finally:
        passid.stop()


def widget_options(http: requests.Session, app_url: str) -> str:
    return widget_fields(app_url, http)["o"]


def open_qr_session(http: requests.Session, app_url: str, options: str) -> QrSession:
    """The QR button ("Verify with the PASSID app"), as the widget does (the same helper the tests use)."""
    return open_widget_session(app_url, http, options)
