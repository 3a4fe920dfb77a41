"""Real processes for tests: the app under gunicorn, its databases, a webhook receiver.

The app is started exactly as production starts it (gunicorn, migrations
applied by `flask db upgrade`), so the tests cover the real start-up path and
can stop, kill and restart it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2):
            return True
    except Exception:
        return False


def create_postgres_database() -> tuple[str, str]:
    """A fresh database for this run; returns (name, SQLAlchemy URL)."""
    import psycopg

    name = f"passid_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSID_")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "PASSID_JOB_INTERVAL_SECONDS": "0.2",
            # Every test client is 127.0.0.1; the rate-limit tests set their own low limits.
            "PASSID_RATE_LIMIT_SESSIONS": "10000 per minute",
            "PASSID_RATE_LIMIT_TOKENS": "10000 per minute",
            "PASSID_RATE_LIMIT_SIGN_IN": "10000 per minute",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", "db", "upgrade"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=120,
    )


@dataclass
class AppServer:
    """The app under gunicorn on a loopback port."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sandbox_url(self) -> str:
        return f"{self.url}/sandbox"

    def start(self) -> AppServer:
        env = dict(self.env, PORT=str(self.port), HOST="127.0.0.1")
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"), "--workers", str(self.workers), "--threads", "8",
                "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "wsgi:app",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"app not healthy in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

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
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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
