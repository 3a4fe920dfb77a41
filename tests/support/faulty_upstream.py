"""A stand-in for PASSID on the network that can be told to misbehave.

In `forward` mode it passes every call through to a real PASSID (the
sandbox); in the other modes it fails the way real upstreams fail: hangs past
the timeout, resets the connection, answers 500, or answers nonsense.

It counts what reached it (`calls`, and `held`: calls it is hanging on right
now), so a test asserts on what happened rather than on how long it took.
`release()` ends every hang at once, the way a PASSID that recovers would.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.support.servers import SHUTDOWN_POLL

MODES = ("forward", "hang", "reset", "error500", "garbage", "wrong_shape")


class FaultyUpstream:
    def __init__(self, upstream_base_url: str) -> None:
        self.upstream = upstream_base_url.rstrip("/")
        self.mode = "forward"
        self.calls = 0
        self.held = 0
        self.hang_seconds = 5.0  # a hang ends after this, or at release(), closing without an answer
        self._count = threading.Lock()
        self._released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                with proxy._count:
                    proxy.calls += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                mode = proxy.mode
                if mode == "hang":
                    with proxy._count:
                        proxy.held += 1
                    try:
                        proxy._released.wait(proxy.hang_seconds)
                    finally:
                        with proxy._count:
                            proxy.held -= 1
                    self.close_connection = True
                    return
                if mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    self.close_connection = True
                    return
                if mode == "error500":
                    self._send(500, b'{"error":{"code":"INTERNAL","message":"boom"}}', version=True)
                    return
                if mode == "garbage":
                    self._send(200, b"<html>502 Bad Gateway</html>", version=True, content_type="text/html")
                    return
                if mode == "wrong_shape":
                    self._send(201, b'{"unexpected": true}', version=True)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=15
                )
                self._send(
                    answer.status_code, answer.content, version=False,
                    extra={k: v for k, v in answer.headers.items()
                           if k.lower().startswith("x-passid") or k.lower() == "idempotent-replayed"},
                    content_type=answer.headers.get("Content-Type", "application/json"),
                )

            def _send(self, status: int, body: bytes, *, version: bool, content_type: str = "application/json",
                      extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if version:
                    self.send_header("X-PASSID-API-Version", "1")
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def release(self) -> None:
        """End every hang now and every later one at once (switch `mode` first to change what follows)."""
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
