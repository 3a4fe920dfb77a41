"""Our own access log: one line per request, with the path but never the query string.

Why our own: the widget's poll and resume URLs carry a signed handle (`?h=…`), a
bearer credential that shows the customer's result to whoever replays it. A
server's access log writes the whole request line, so the server's own log is
switched off and this one is written instead. It holds the client address, the
method, the path (no query string), the status, the bytes sent and the time taken:
never a query string, a handle, a token, claims, a header or a cookie.

Some paths carry a bearer secret of their own: a session id opens its hosted page (`/api/sessions/<id>`),
a result id is the other half of what reads a person's result (`/api/results/<id>`), and the embedded
sandbox's paths hold request ids, approval codes and share tokens. Those segments are written as the kind
of id they are (`"GET /api/sessions/<session-id>" 200`), so a log reader learns the call and its answer,
never the id. Staff pages keep theirs: opening one takes a signed-in role, and the audit log names the
same id.

It is WSGI middleware wrapped around everything (static files included), writing
through Python logging to the "passid.access" logger; with no logging configured it
prints to stderr, which is where `make run` shows it. Werkzeug's development server
(`flask run`) logs its own request lines; those lose their query string too.

Being the outermost layer, it is also where each request gets its id (app/plumbing/request_ids.py,
returned in `X-Request-Id`) and where it is counted and timed for `/metrics` (app/plumbing/metrics.py),
under its URL rule (`/api/sessions/<session_id>`), never its path. The same fields as the line go with
each record as attributes (`client`, `method`, `path`, `route`, `status`, `bytes`, `duration_ms`), which
JSON logs (app/plumbing/log_format.py) write as fields of their own.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from app.config import settings_of
from app.plumbing import request_ids
from app.plumbing.metrics import UNMATCHED, Metrics, metrics

ACCESS_LOGGER = "passid.access"
# The environ key holding perf_counter() when the app first saw the request (the outermost layer).
ARRIVED_AT = "passid.arrived_at"
# The environ key a layer that answers before Flask sets to the URL rule it answered for (the widget's pending
# polls, app/widget/pending_polls.py): its metrics count under that route without matching the URL map.
ROUTE = "passid.route"
_MAX_PATH = 300

# (pattern, what the masked segment is called): the first that matches the path (with runs of `/` made one)
# masks its one id segment. `(?:/sandbox)?`: the sandbox answers under /sandbox in the app, at / on its own.
_BEARER_SEGMENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/api/sessions/)[^/]+"), "session-id"),
    (re.compile(r"(/api/results/)[^/]+"), "result-id"),
    (re.compile(r"((?:/sandbox)?/api/bridge/request/code/)[^/]+"), "code"),
    (re.compile(r"((?:/sandbox)?/api/bridge/request/)[^/]+"), "request-id"),
    (re.compile(r"((?:/sandbox)?/api/bridge/share/)[^/]+"), "token"),
    (re.compile(r"((?:/sandbox)?/phone/request/)[^/]+"), "request-id"),
)
_SLASHES = re.compile(r"/{2,}")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def init_access_log(app: Flask) -> None:
    """Wrap the app (call last in the factory, so this layer is outermost)."""
    app.wsgi_app = AccessLog(app.wsgi_app, access_logger(), metrics=metrics(app), url_map=app.url_map,  # type: ignore[method-assign]
                             trust_request_id=settings_of(app).trusted_proxies > 0)
    development_server = logging.getLogger("werkzeug")
    if not any(isinstance(f, WithoutQueryString) for f in development_server.filters):
        development_server.addFilter(WithoutQueryString())


def access_logger() -> logging.Logger:
    """The "passid.access" logger at INFO; a stderr handler only when nobody configured logging."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # our handler prints it; a root handler added later must not print it twice
    return logger


def log_line(client: str, method: str, path: str, status: int, sent: int | None, milliseconds: float) -> str:
    """`127.0.0.1 "GET /verify/qr/status" 204 0 1.8ms`: quoted, so a path cannot forge a second field."""
    size = "-" if sent is None else str(sent)
    shown = printable(masked_path(path), _MAX_PATH)
    return f'{printable(client, 64)} "{printable(method, 16)} {shown}" {status} {size} {milliseconds:.1f}ms'


def masked_path(path: str) -> str:
    """`path` with a bearer id in it written as its kind (`/api/sessions/<session-id>`); any other as it is."""
    single = _SLASHES.sub("/", path)
    for pattern, kind in _BEARER_SEGMENTS:
        if pattern.match(single):
            return pattern.sub(rf"\1<{kind}>", single, count=1)
    return path


def printable(text: str, limit: int) -> str:
    """Printable ASCII only (no newline, quote or escape tricks in the log), cut to `limit` characters."""
    cut = text[:limit]
    if cut.isascii() and cut.isprintable() and '"' not in cut and "\\" not in cut:  # the usual case, at once
        return cut + ("…" if len(text) > limit else "")
    escaped = "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\x{ord(c):02x}" for c in cut)
    return escaped + ("…" if len(text) > limit else "")


class WithoutQueryString(logging.Filter):
    """Cuts the query string out of Werkzeug's development-server request lines (`"GET /path?h=… HTTP/1.1"`)
    and masks a bearer id in the path as our own log does."""

    _QUERY = re.compile(r"\?[^\s\x1b]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str) \
                and '"%s"' in str(record.msg):
            words = self._QUERY.sub("", record.args[0]).split(" ")
            if len(words) == 3:
                words[1] = masked_path(words[1])
            record.args = (" ".join(words), *record.args[1:])
        return True


def route_of(environ: dict[str, Any], url_map: Map | None) -> str:
    """The URL rule that answered the request (`/api/sessions/<session_id>`), never its path.

    Flask's request (which Werkzeug leaves in the environ) knows the rule it matched; a layer that answered
    for a rule before Flask says which (`ROUTE`); a request answered before Flask saw it otherwise (a static
    file, a body-slot refusal) is matched against the app's rules here.
    """
    answered_for = environ.get(ROUTE)
    if answered_for is not None:
        return str(answered_for)
    flask_request = environ.get("werkzeug.request")
    if isinstance(flask_request, Request):  # (a test client leaves a plain Werkzeug request of its own there)
        return flask_request.url_rule.rule if flask_request.url_rule is not None else UNMATCHED
    if url_map is None:
        return UNMATCHED
    try:
        found, _arguments = url_map.bind("localhost").match(
            environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET"), return_rule=True)
    except HTTPException:  # no rule (404), another method's (405), or a redirect to one (308)
        return UNMATCHED
    return str(found.rule)


class AccessLog:
    """WSGI middleware: the request's id as it arrives; one log line, and its count and time in the metrics,
    once the response has been sent (or handed to the server's sendfile)."""

    def __init__(self, app: WSGIApp, logger: logging.Logger, *, metrics: Metrics | None = None,
                 url_map: Map | None = None, trust_request_id: bool = False) -> None:
        self.app = app
        self.logger = logger
        self.metrics = metrics
        self.url_map = url_map
        self.trust_request_id = trust_request_id

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        environ[ARRIVED_AT] = started  # when the app first saw the request: the webhook receiver's answered_ms
        request_id = request_ids.choose(environ, trust_header=self.trust_request_id)
        environ[request_ids.ENVIRON_KEY] = request_id
        request_ids.begin(request_id)
        response: dict[str, Any] = {}

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            response["status"] = status
            response["length"] = next((v for k, v in headers if k.lower() == "content-length"), None)
            headers.append((request_ids.HEADER, request_id))
            return start_response(status, headers, *exc_info)

        def finish(sent: int | None) -> None:
            seconds = time.perf_counter() - started
            status_text = str(response.get("status", "500"))[:3]
            status = int(status_text) if status_text.isdigit() else 500
            method = environ.get("REQUEST_METHOD", "-")
            route = route_of(environ, self.url_map)
            if self.metrics is not None:
                self.metrics.request_answered(route, method, status, seconds)
            request_ids.end()
            if not self.logger.isEnabledFor(logging.INFO):
                return
            client = environ.get("REMOTE_ADDR") or "-"  # read now: ProxyFix (inside us) has set the client's
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            milliseconds = seconds * 1000
            self.logger.info(log_line(client, method, path, status, sent, milliseconds), extra={
                "request_id": request_id, "client": printable(client, 64), "method": printable(method, 16),
                "path": printable(masked_path(path), _MAX_PATH), "route": route, "status": status, "bytes": sent,
                "duration_ms": round(milliseconds, 1),
            })

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            finish(None)
            raise
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
            # Wrapping it would stop the server's sendfile; its Content-Length says what is sent.
            length = response.get("length")
            finish(int(length) if length and length.isdigit() else None)
            return body
        return CountedBody(body, finish)


class CountedBody:
    """The response body, passed through untouched, counting bytes; `finish(sent)` runs when the server
    closes it, even if the body's own close fails (the access log writes its line; the body cap frees its slot)."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[int | None], None]) -> None:
        self.body = body
        self.finish = finish
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.finish(self.sent)
