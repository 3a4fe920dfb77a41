"""A scripted PASSID stand-in on 127.0.0.1 for failures the real sandbox never produces.

It is a real HTTP server (not a mocked session) so the client's timeouts,
connection handling and header parsing are exercised exactly as in production.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.passid import PassidClient
from tests.support.servers import SHUTDOWN_POLL

API_KEY = "sk_sandbox_" + "k" * 32


@dataclass
class Reply:
    """What the fake answers. `body` may be a dict/list (sent as JSON), str or bytes (sent as is)."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    version: str | None = "1"
    delay: float = 0.0  # wait before sending anything
    stall_body: bool = False  # send headers and half the body, then wait
    declared_length: int | None = None  # lie about Content-Length, then close


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Handler(BaseHTTPRequestHandler):
    server: FakePassid

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        reply = self.server.reply
        if reply.delay:
            self.server.release.wait(reply.delay)
        raw = reply.body
        if isinstance(raw, str):
            raw = raw.encode()
        elif not isinstance(raw, bytes):
            raw = json.dumps(raw).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(reply.declared_length or len(raw)))
        if reply.version is not None:
            self.send_header("X-PASSID-API-Version", reply.version)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.stall_body:
            self.wfile.write(raw[: len(raw) // 2])
            self.wfile.flush()
            self.server.release.wait(5)
            return
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class FakePassid(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = Reply()
        self.seen: list[Seen] = []
        # Set at teardown so handlers that are "being slow" stop at once.
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client hanging up on a deliberately slow answer is expected;
        # anything else is a bug in the fake and should be seen.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving_fake_passid() -> Iterator[FakePassid]:
    """A scripted PASSID on a loopback port, answered by a thread until the block ends."""
    server = FakePassid()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake() -> Iterator[FakePassid]:
    with serving_fake_passid() as server:
        yield server


@pytest.fixture
def client(fake: FakePassid) -> Any:
    with PassidClient(fake.url, API_KEY, timeout=(1.0, 2.0)) as passid:
        yield passid
