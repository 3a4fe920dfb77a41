"""Two guards around every request that come from how the app is served, not from what it does.

**Slow request bodies.** Granian reads request headers without holding a thread, so clients
that trickle headers cost nothing (tests/serving/test_slow_clients.py). It has no timeout for
a request *body*, though, and the app reads bodies on its own threads: forty POSTs that send
one byte every few seconds would hold every thread of every worker, and then nothing answers,
`/healthz` included. So at most `PASSID_MAX_BODIES_IN_FLIGHT` requests per process may be
reading or acting on a body at once. Past that a request with a body gets `503` with
`Retry-After` (its body is never read), while requests without a body
— the widget's poll, `/healthz`, every page — keep their threads. PASSID retries a webhook that
met a 503 on its schedule; a person's form post says "try again".

A request answered without reading its body (a 401 before the JSON is parsed, say) has the rest
read and dropped before the answer goes out when it announced at most 64 KiB, as gunicorn did:
left unread, Granian closes the keep-alive connection just after the answer, and a client that
reuses it in that instant loses its next request ("connection closed without response"). A
larger or chunked body is not waited for: its connection closes, as it should.

**The process environment is not the request's.** Granian copies the whole process
environment into every request's WSGI environ, `SECRET_KEY` and `PASSID_API_KEY` included,
where any code that shows or logs `request.environ` would expose them. Only the keys a WSGI
request really has (the CGI variables, `HTTP_*` headers and dotted server extensions such as
`wsgi.input`) are passed on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from flask_babel import gettext as _
from werkzeug.wsgi import LimitedStream

from app.access_log import CountedBody

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# The CGI variables of PEP 3333 (and REMOTE_PORT, which servers add); headers arrive as HTTP_*.
_CGI_KEYS = frozenset({
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE", "GATEWAY_INTERFACE",
    "REMOTE_ADDR", "REMOTE_PORT", "REMOTE_HOST", "REMOTE_USER", "AUTH_TYPE", "REQUEST_URI", "RAW_URI",
    "HTTPS",
})
_BUSY_BODY = b"The service is busy. Please try again in a moment.\n"
DRAIN_AT_MOST = 64 * 1024


def init_request_guards(app: Flask) -> None:
    """Wrap the app (call after every other WSGI layer, so these see each request first)."""
    # The embedded sandbox is PASSID's side of the wire served by this same process: a widget post
    # that holds a slot calls it over HTTP, so its requests take slots of their own (as many again),
    # or the widget would starve itself. It exists only on a developer's machine.
    exempt = ("/sandbox/",) if app.config.get("PASSID_EMBEDDED_SANDBOX") else ()
    bodies = BodiesInFlight(app.wsgi_app, int(app.config["PASSID_MAX_BODIES_IN_FLIGHT"]), exempt=exempt,
                            busy=lambda environ: busy_text(app, environ))
    app.wsgi_app = RequestEnvironOnly(bodies)  # type: ignore[method-assign]


def busy_text(app: Flask, environ: dict[str, Any]) -> bytes:
    """The 503 sentence in the customer's language: a widget's form post may meet it, and htmx shows it in
    the widget. Chosen from the URL and Accept-Language (`app.i18n`); the body stays unread, so the widget's
    forms carry an embed's `locale` in their URLs as well as in the signed `o` of their bodies."""
    try:
        with app.request_context(environ):
            return (_("The service is busy. Please try again in a moment.") + "\n").encode()
    except Exception:  # never let a refusal fail: the English sentence
        return _BUSY_BODY


def is_request_key(key: str) -> bool:
    """True for what belongs to the request: CGI variables, HTTP_* headers, `wsgi.*`-style extensions."""
    return key in _CGI_KEYS or key.startswith("HTTP_") or "." in key


def has_body(environ: dict[str, Any]) -> bool:
    """A declared length above zero, or a chunked body (whose length nobody knows yet)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.strip() not in ("", "0"):
        return True
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


class RequestEnvironOnly:
    """Drops process environment variables that a server copied into the WSGI environ."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        for key in [key for key in environ if not is_request_key(key)]:
            del environ[key]
        return self.app(environ, start_response)


class BodiesInFlight:
    """At most `limit` requests with a body at once in this process; past that, 503 unread."""

    def __init__(self, app: WSGIApp, limit: int, *, exempt: tuple[str, ...] = (),
                 busy: Callable[[dict[str, Any]], bytes] = lambda _environ: _BUSY_BODY) -> None:
        self.app = app
        self.busy = busy
        self.slots = threading.BoundedSemaphore(limit)
        # Paths in `exempt` count against slots of their own: bounded, but never starving the rest.
        self.exempt = exempt
        self.exempt_slots = threading.BoundedSemaphore(limit)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not has_body(environ):
            return self.app(environ, start_response)
        slots = self.exempt_slots if environ.get("PATH_INFO", "").startswith(self.exempt) else self.slots
        if not slots.acquire(blocking=False):
            body = self.busy(environ)
            start_response("503 Service Unavailable", [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Retry-After", "5"),
                ("Cache-Control", "no-store"),
            ])
            return [body]
        try:
            answer = self._answer_then_drain(environ, start_response)
        except BaseException:
            slots.release()
            raise
        # The slot is held until the answer has been sent and closed, not just produced, and freed even
        # if the answer's own close fails (Werkzeug's ClosingIterator would stop at that error).
        return CountedBody(answer, lambda _sent: slots.release())

    def _answer_then_drain(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        bound_to_content_length(environ)
        answer = self.app(environ, start_response)
        drain_unread_body(environ)
        return answer


def bound_to_content_length(environ: dict[str, Any]) -> None:
    """Let `wsgi.input` end where the body ends, as Granian's and gunicorn's do.

    Werkzeug's own server (`flask run`) hands over the raw socket: reading past the body there, as
    draining does, would wait for the client's next request until it gives up.
    """
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if length.isdigit() and not environ.get("wsgi.input_terminated") and "wsgi.input" in environ:
        environ["wsgi.input"] = LimitedStream(environ["wsgi.input"], int(length))
        environ["wsgi.input_terminated"] = True


def drain_unread_body(environ: dict[str, Any]) -> None:
    """Read and drop what the app left of a body that announced at most DRAIN_AT_MOST bytes."""
    stream = environ.get("wsgi.input")
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if stream is None or not length.isdigit() or int(length) > DRAIN_AT_MOST:
        return
    left = int(length)
    try:
        while left > 0:
            chunk = stream.read(min(64 * 1024, left))
            if not chunk:
                return
            left -= len(chunk)
    except (OSError, ValueError):  # the client went away: nothing left to keep the connection for
        return
