"""Real processes for tests: the app under its production server, its databases, a webhook receiver.

The app is started exactly as production starts it (Granian serving
`wsgi:app` with `make run`'s flags, migrations applied by `flask db upgrade`),
so the tests cover the real start-up path and can stop, kill and restart it.
`serve_command` also builds the other servers bench/serving.py compares.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from tests.support.postgres import POSTGRES_ADMIN_URL, postgres_available  # noqa: F401  (re-exported)

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


# How often a test's own HTTP server (in-process app, webhook receiver, proxy, scripted PASSID) looks for its
# shutdown: `shutdown()` waits for the next look, so socketserver's 0.5 s default cost up to half a second
# at the end of every test that used one (about a thousand a run).
SHUTDOWN_POLL = 0.01


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_postgres_database(template: str | None = None) -> tuple[str, str]:
    """A fresh database for this run, a copy of `template` if given; returns (name, SQLAlchemy URL)."""
    import psycopg

    name = f"passid_test_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# A fixed Fernet key (base64 of 32 bytes that say what they are), never a production one.
TEST_DATA_KEY = "cGFzc2lkLXZlcmlmeS10ZXN0LWRhdGEta2V5LTAwMDE="

# What every app under test runs with, in a process of its own or in the test's: a fixed secret
# and rate limits no test reaches by accident (every test client is 127.0.0.1; the rate-limit
# tests set their own low limits), background passes every 0.2 s so waits stay short.
TEST_SETTINGS: dict[str, str] = {
    "SECRET_KEY": "test-secret-key-not-for-production",
    # One data key for every process of a test: servers, CLI commands and in-process apps share databases.
    "PASSID_DATA_KEY": TEST_DATA_KEY,
    "PASSID_JOB_INTERVAL_SECONDS": "0.2",
    # Staff passwords hashed in microseconds, not scrypt's tens of milliseconds: tests make hundreds of
    # accounts. tests/console/test_staff_sessions.py proves production's default hashes with scrypt.
    "PASSID_PASSWORD_HASH": "pbkdf2:sha256:1",
    "PASSID_RATE_LIMIT_SESSIONS": "10000 per minute",
    "PASSID_RATE_LIMIT_TOKENS": "10000 per minute",
    "PASSID_RATE_LIMIT_SIGN_IN": "10000 per minute",
    "PASSID_RATE_LIMIT_SECOND_FACTOR": "10000 per minute",
    "PASSID_RATE_LIMIT_WEBHOOK_FAILURES": "10000 per minute",
    "PASSID_SANDBOX_RATE_LIMIT_ONBOARD": "10000 per minute",
    # Staff sign in with a password alone unless a test says otherwise: most tests are about what a signed-in
    # account sees, not how it signed in. tests/console/test_second_factor.py (in-process, PASSID_STAFF_MFA=admin
    # and all) and tests/browser/test_passkeys.py prove the second factor; production's default is `admin`.
    "PASSID_STAFF_MFA": "off",
    # `?locale=en-XA`: every string accented and 40% longer, for the layout tests (app/pseudo_locale.py).
    "PASSID_PSEUDO_LOCALE": "true",
}


def base_env(database_url: str, **overrides: str) -> dict[str, str]:
    """A server process's environment: ours without any PASSID_ setting of the developer's, plus TEST_SETTINGS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSID_")}
    env.update(TEST_SETTINGS, DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def migrate(env: dict[str, str], *, run_alembic: bool = False) -> None:
    """`flask db upgrade` for env's database; a new SQLite file is a copy of one this process migrated.

    Many tests start from an empty database, and Alembic takes about a second each time; copying a
    file migrated once by the same command gives the same schema in milliseconds. `run_alembic` for
    a test about what the command itself does to a new file (its mode, say).
    """
    target = None if run_alembic else new_sqlite_file(env["DATABASE_URL"])
    if target is not None:
        shutil.copyfile(_migrated_sqlite_template(env), target)
        target.chmod(0o600)
        return
    _flask_db_upgrade(env)


def _flask_db_upgrade(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", "db", "upgrade"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=120,
    )


def new_sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL that names a file not there yet; None for anything else."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or "?" in database_url:
        return None
    path = Path(database_url[len(prefix):])
    return None if path.exists() or path.name in ("", ":memory:") else path


_TEMPLATE: dict[str, Path] = {}  # this process's migrated SQLite file, made on first use


def _migrated_sqlite_template(env: dict[str, str]) -> Path:
    if "path" not in _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="passid-migrated-")) / "template.db"
        _flask_db_upgrade({**env, "DATABASE_URL": f"sqlite:///{path}"})
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


# The server `make run` starts (chosen by bench/serving.py) and its threads per worker process.
DEFAULT_SERVER = "granian"
THREADS = 16
SERVERS = ("granian", "gunicorn-gthread", "gunicorn-gevent", "waitress")


def serve_command(server: str, host: str, port: int, workers: int, threads: int) -> list[str]:
    """The command line that serves `wsgi:app` under `server`, with no access log of the server's own.

    "granian" is production's (the Makefile's `run` target passes the same flags; a test compares
    them). Why these flags: `--http 1` (TLS and HTTP/2 end at a proxy, if any); a blocking thread per
    request, `threads` of them per worker, enough for the PASSID calls in flight (4 per process) and
    the polls beside them; a header that has not arrived in 10 s closes its connection; a crashed
    worker is started again; SIGTERM waits 5 s for requests in flight. The app writes its own access
    log (without query strings: the poll URL carries a bearer handle), so no server writes one.
    """
    if server == "granian":
        return [
            str(BIN / "granian"), "--interface", "wsgi", "--http", "1", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), "--backlog", "2048",
            "--http1-header-read-timeout", "10000", "--respawn-failed-workers", "--workers-kill-timeout", "5",
            "--no-access-log", "wsgi:app",
        ]
    if server == "gunicorn-gthread":
        return [
            str(BIN / "gunicorn"), "--workers", str(workers), "--threads", str(threads),
            "--bind", f"{host}:{port}", "--graceful-timeout", "5", "wsgi:app",
        ]
    if server == "gunicorn-gevent":
        return [
            str(BIN / "gunicorn"), "--worker-class", "gevent", "--workers", str(workers),
            "--worker-connections", "1000", "--bind", f"{host}:{port}", "--graceful-timeout", "5", "wsgi:app",
        ]
    if server == "waitress":  # one process: `workers` does not apply
        return [
            str(BIN / "waitress-serve"), f"--listen={host}:{port}", f"--threads={threads}",
            "--connection-limit=2000", "wsgi:app",
        ]
    raise ValueError(f"unknown server {server!r}; one of {', '.join(SERVERS)}")


@dataclass
class AppServer:
    """The app on a loopback port, under the server and flags `make run` uses."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None
    health_path = "/healthz"  # what answers 200 once the process serves

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sandbox_url(self) -> str:
        return f"{self.url}/sandbox"

    def start(self) -> AppServer:
        return self._launch(serve_command(DEFAULT_SERVER, "127.0.0.1", self.port, self.workers, THREADS))

    def _launch(self, command: list[str]) -> AppServer:
        """Start `command` in its own process group (so stop/kill reach every worker) and wait for its health path."""
        env = dict(self.env, PORT=str(self.port), HOST="127.0.0.1")
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{type(self).__name__} exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}{self.health_path}", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{type(self).__name__} not healthy in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def kill(self) -> None:
        """kill -9 the whole process group: no graceful shutdown, no cleanup."""
        self.stop(signal.SIGKILL)


@dataclass
class SandboxServer(AppServer):
    """PASSID's side alone (`flask --app app.sandbox run`), the contract at the root path, as a live PASSID is.

    A process of its own, so an app server can be killed while PASSID keeps its requests and its
    deliveries; `env`'s database must be migrated (`migrate`, or a copy of a migrated PostgreSQL one).
    """

    health_path = "/phone"  # the sandbox has no /healthz of its own

    @property
    def sandbox_url(self) -> str:
        return self.url

    def start(self) -> SandboxServer:
        self._launch([str(BIN / "flask"), "--app", "app.sandbox", "run", "--host", "127.0.0.1",
                      "--port", str(self.port)])
        return self


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    """A real HTTP endpoint that records every POST and can be told to fail first.

    `fail_first` answers 500 to that many requests before answering 200.
    """

    def __init__(self, fail_first: int = 0, status_when_failing: int = 500) -> None:
        self.received: list[Received] = []
        self.fail_first = fail_first
        self.status_when_failing = status_when_failing
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(Received(dict(self.headers), body, time.monotonic()))
                    failing = len(receiver.received) <= receiver.fail_first
                self.send_response(receiver.status_when_failing if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)} in {timeout}s")
