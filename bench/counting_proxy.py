"""A pass-through between our app and PASSID that remembers every call it forwarded.

What a widget costs PASSID is counted where PASSID would count it, on the
wire, not inferred from our settings: the proxy forwards each call unchanged
and keeps its method and path. (tests/support/faulty_upstream.py counts calls
too, but not which endpoint they were for.)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class CountingProxy:
    def __init__(self) -> None:
        self.upstream = ""  # set by `to` once PASSID's address is known
        self._calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy._calls.append((self.command, self.path))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(self.command, proxy.upstream + self.path, data=body, headers=headers,
                                          timeout=15)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "content-encoding", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, upstream: str) -> str:
        """Forward to `upstream` (PASSID's base URL); the base URL our app is to use instead."""
        self.upstream = upstream.rstrip("/")
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, method: str, path: str) -> int:
        """Calls forwarded so far with this method and exact path (query string excluded)."""
        with self._lock:
            return sum(1 for m, p in self._calls if m == method and p.split("?")[0] == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
