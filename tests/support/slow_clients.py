"""Slow clients and a health prober: what a server in front of the internet must survive.

A slow client opens a connection, sends a request line and then one header
line every few seconds, never finishing its headers (the "slowloris" pattern:
a broken mobile network or an attacker looks the same). A server that gives
each connection a thread while it reads headers runs out of threads; one that
reads headers without tying up a worker does not. The prober asks `/healthz`
at a steady pace meanwhile and records how long each answer took, or that
none came within its timeout.

Used by tests/serving/test_slow_clients.py (a pass/fail check) and
bench/serving.py (the figures).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests


@dataclass
class SlowClients:
    """`count` loopback connections, each trickling a little every `line_every` seconds.

    With `slow_body=False` each sends a request line and then one header line at a time, never
    finishing its headers. With `slow_body=True` each sends whole headers of a webhook POST that
    announces a 60 KB body (well under every size limit) and then one byte of it at a time: the
    same attack one step later, where the app is already reading. A connection the server closes
    is counted and not reopened, so the figures show how the server treats them.
    """

    host: str
    port: int
    count: int = 40
    line_every: float = 5.0
    slow_body: bool = False
    opened: int = 0
    closed_by_server: int = 0
    _sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SlowClients:
        for _ in range(self.count):
            sock = socket.create_connection((self.host, self.port), timeout=5)
            sock.sendall(self._opening())
            self._sockets.append(sock)
        self.opened = len(self._sockets)
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def _opening(self) -> bytes:
        host = f"Host: {self.host}:{self.port}\r\n"
        if not self.slow_body:
            return f"GET /healthz HTTP/1.1\r\n{host}".encode()
        return (f"POST /webhooks/passid HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
                f"X-PASSID-Signature: sha256={'0' * 64}\r\nContent-Length: 60000\r\n\r\n{{").encode()

    def _trickle(self) -> None:
        line = 0
        while not self._stop.wait(self.line_every):
            line += 1
            piece = b" " if self.slow_body else f"X-Slow-{line}: still-typing\r\n".encode()
            for sock in list(self._sockets):
                try:
                    sock.sendall(piece)
                except OSError:
                    self._sockets.remove(sock)
                    self.closed_by_server += 1
                    sock.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.line_every + 5)
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ProbeResults:
    """One entry per probe: seconds to a 200, or None when no 200 came within the timeout."""

    latencies: list[float | None] = field(default_factory=list)

    @property
    def answered(self) -> list[float]:
        return [latency for latency in self.latencies if latency is not None]

    @property
    def unanswered(self) -> int:
        return sum(latency is None for latency in self.latencies)


@contextmanager
def probing(url: str, every: float = 0.2, timeout: float = 2.0) -> Iterator[ProbeResults]:
    """Ask `url` every `every` seconds on a new connection each time (as a load balancer's check does)."""
    results = ProbeResults()
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                ok = requests.get(url, timeout=timeout).status_code == 200
            except requests.RequestException:
                ok = False
            took = time.monotonic() - started
            results.latencies.append(took if ok and took <= timeout else None)
            stop.wait(max(0.0, every - took))

    thread = threading.Thread(target=probe, name="healthz-prober", daemon=True)
    thread.start()
    try:
        yield results
    finally:
        stop.set()
        thread.join(timeout=timeout + 5)
