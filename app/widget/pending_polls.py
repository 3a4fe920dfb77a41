"""The widget's pending poll answered before Flask: a WSGI layer that says "still pending" for next to nothing.

Why: every waiting widget polls `GET /verify/qr/status` every 2.5 s (8,000 widgets are 3,200 polls a
second), and almost every poll is answered with an empty 204 "still pending". Through Flask that 204
cost about half a millisecond of CPU (a request context, the handle's signature checked, the options
unsigned, the rate limiter, Talisman, Flask-Compress), so polls, not customers, filled the cores.
Between upstream checks (`app.widget.polling`) a pending poll's answer depends on nothing Flask
computes that the previous poll of the same handle did not already compute, so this layer remembers
what Flask found and answers the next polls of that handle itself, in a few microseconds.

It answers a poll itself only when ALL of these hold, and otherwise passes it to Flask untouched:

- it is an htmx poll (`GET /verify/qr/status`, `HX-Request: true`; a page reload without
  JavaScript gets the QR page, which only Flask draws) without a Cookie header (a staff member's
  session on the same host may be refreshed by Flask's answer: such a poll stays Flask's);
- its `h` is a handle the Flask view answered "pending" for, or one whose signature the layer checks
  itself with the app's key as the view does (`_verified`: a worker's first poll of a widget whose earlier
  polls went to other workers); either way remembered here (a bounded map, handle → request id and
  expiry), and a forged, altered or expired handle always reaches Flask, and its 404 page;
- the request has not expired (at and after expiry every poll is Flask's, and asks PASSID);
- no process recorded the request lately (`FinishedRequests`, its refresh run here when due, one
  query per 50 ms per process as before): a result recorded by any worker or host reaches Flask,
  which draws it, at the next poll after the refresh;
- Flask has answered a pending poll for the same Host and scheme before: the layer replays the
  headers of that answer (security headers, Vary, CSP with a fresh nonce, HSTS on https), so its 204
  is the one Flask sends, and a Host Flask refuses (trusted hosts, 400) never gets one from here.

When an upstream check is due (`UpstreamChecks.is_due`, then `should_ask`, which counts as the ask) the
layer makes it: PASSID asked as the Flask view asks it, and "still pending" answered here as between checks
(counted as answered by PASSID, with the window's `PASSID-Checked` mark for the widget to send back, as Flask's
answer to a check carries it; the replayed headers never do); a busy PASSID is "pending" and the next poll asks,
as in Flask. Anything else PASSID says, a final state or a failure, goes to Flask with PASSID's answer in the
environ (`CHECKED`), and Flask draws it without asking again. Through Flask a check cost about 570 µs of Flask
besides the call.

A poll Flask answers with anything but "pending" (a final state, the error state, a 404) makes the
layer forget the handle; entries are forgotten at their request's expiry too. The layer answers "still
pending" only where Flask's view would (a valid handle, not expired, not recorded by any process, no check
due: exactly the view's path between checks), so nothing about erasure, sanctions, sessions closing or
result views changes: those are decided by Flask, on the polls it answers.

It sits inside the access log (each poll keeps its request id, `X-Request-Id`, its access-log line
and its count under the route `/verify/qr/status`) and inside ProxyFix (the Host and scheme are the
client's), outside static files and Flask; the widget installs it, so it exists where the widget is
mounted. `bench/poll_cpu.py` measures both paths.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, request
from flask.sansio.app import App

from app.config import settings_of
from app.passid import PassidBusy, PassidError, RequestStatus
from app.plumbing.access_log import ROUTE
from app.plumbing.metrics import EXTENSION as METRICS
from app.plumbing.passid_connection import passid_client, passid_connection
from app.rules.finished_requests import EXTENSION as FINISHED_REQUESTS
from app.widget import signed_handles
from app.widget.polling import CHECKED_HEADER, UpstreamChecks

EXTENSION = "passid_pending_polls"
PATH = "/verify/qr/status"
# Set in the environ by the Flask view when it answers "pending": (handle, request id, expiry).
FOUND_PENDING = "passid.widget.found_pending"
# Set by the layer when its check found something other than "pending": (request id, PASSID's answer or error).
# A WSGI environ key a client cannot send (headers arrive as HTTP_*).
CHECKED = "passid.widget.checked"
# Live pending requests one process remembers; past this the oldest are forgotten (their polls go to Flask).
MAX_REMEMBERED = 25_000
# Host and scheme pairs whose answer is known; a few in practice (the public name, perhaps a second).
MAX_HOSTS = 16
# Not replayed: set per response by someone else, or never to be repeated to another client.
_PER_RESPONSE = frozenset({"date", "set-cookie", "x-request-id", "content-length", CHECKED_HEADER.lower()})
# The widget's report of the check window an earlier poll asked in (`polling.CHECKED_HEADER`), as WSGI names it.
_REPORTED = "HTTP_" + CHECKED_HEADER.upper().replace("-", "_")
_NONCE = "'nonce-"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Remembered:
    request_id: str
    expires_at: datetime
    expires_epoch: float


@dataclass(frozen=True)
class Answer:
    """The status line and headers of a pending 204 Flask sent, the CSP nonce cut out to be made anew."""

    status: str
    headers: tuple[tuple[str, str], ...]
    nonce_at: int | None  # index of the header whose value holds the nonce
    before_nonce: str
    after_nonce: str

    @classmethod
    def of(cls, status: str, headers: list[tuple[str, str]]) -> Answer | None:
        kept = [(name, value) for name, value in headers if name.lower() not in _PER_RESPONSE]
        if any(name.lower() == "set-cookie" for name, _ in headers):
            return None  # an answer that set a cookie is never a template for someone else's
        for index, (name, value) in enumerate(kept):
            start = value.find(_NONCE) if name.lower() == "content-security-policy" else -1
            if start >= 0:
                start += len(_NONCE)
                end = value.find("'", start)
                if end < 0:
                    return None
                return cls(status, tuple(kept), index, value[:start], value[end:])
        return cls(status, tuple(kept), None, "", "")

    def headers_now(self) -> list[tuple[str, str]]:
        """The headers with a nonce of their own, as every answer's must be."""
        headers = list(self.headers)
        if self.nonce_at is not None:
            name = headers[self.nonce_at][0]
            headers[self.nonce_at] = (name, f"{self.before_nonce}{secrets.token_urlsafe(24)}{self.after_nonce}")
        return headers


def install(app: App) -> PendingPolls:
    """Wrap the app's WSGI stack with the layer (once per app; the widget's blueprint calls this)."""
    assert isinstance(app, Flask)  # a blueprint's setup state names the sans-IO base
    layer = app.extensions.get(EXTENSION)
    if layer is None:
        layer = app.extensions[EXTENSION] = PendingPolls(app.wsgi_app, app)
        app.wsgi_app = layer  # type: ignore[method-assign]
    return layer


def found_pending(session: dict[str, Any]) -> None:
    """The Flask view answers this poll "pending": the layer may answer the handle's next polls itself.

    Only for htmx polls with webhooks on: without webhooks every poll asks PASSID, so there is nothing
    to remember. The layer keeps it once the 204 is on its way (`PendingPolls._through_flask`).
    """
    if request.headers.get("HX-Request") != "true" or not passid_connection().webhook_secrets:
        return
    expires_at = datetime.fromisoformat(session["x"])
    request.environ[FOUND_PENDING] = (request.args.get("h"), Remembered(session["r"], expires_at,
                                                                         expires_at.timestamp()))


def handle_of(query: str) -> str | None:
    """The first `h` of a query string, as Flask reads it, when it needs no decoding (a handle never
    does: its characters are URL-safe base64 and dots); None otherwise, and Flask reads it."""
    for part in query.split("&"):
        if part.startswith("h="):
            value = part[2:]
            return value if value and "%" not in value and "+" not in value else None
    return None


class PendingPolls:
    """WSGI layer: a pending poll of a handle Flask found pending, answered without Flask (module docstring)."""

    def __init__(self, app: WSGIApp, flask_app: Flask, *, max_remembered: int = MAX_REMEMBERED) -> None:
        self.app = app
        self.flask_app = flask_app
        self.max_remembered = max_remembered
        self.answering = True  # False sends every poll to Flask (bench/poll_cpu.py compares the two)
        self._remembered: dict[str, Remembered] = {}  # handle -> its request; oldest first
        self._answers: dict[tuple[str, str], Answer] = {}  # (Host, scheme) -> Flask's pending 204
        self._changing = threading.Lock()
        self._request_handles = signed_handles.serializer_for(settings_of(flask_app).secret_key, "request")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET"
                or environ.get("HTTP_HX_REQUEST") != "true"):
            return self.app(environ, start_response)
        handle = handle_of(environ.get("QUERY_STRING", ""))
        if handle is None:
            return self.app(environ, start_response)
        if self.answering and "HTTP_COOKIE" not in environ:
            answer, answered_by, checked_mark = self._pending_answer(environ, handle)
            if answer is not None:
                extensions = self.flask_app.extensions
                watched = extensions.get(METRICS)
                if watched is not None:
                    watched.poll_answered(answered_by, "pending")
                environ[ROUTE] = PATH
                headers = answer.headers_now()
                if checked_mark is not None:
                    headers.append((CHECKED_HEADER, checked_mark))
                start_response(answer.status, headers)
                return []
        return self._through_flask(environ, handle, start_response)

    def _pending_answer(self, environ: dict[str, Any], handle: str) -> tuple[Answer | None, str, str | None]:
        """Flask's pending answer for this host, when every condition of the module docstring holds; who
        found it pending (our records, or PASSID at a due check made here: `_check`); and, when PASSID was
        asked, the check window's mark for the widget to send back (`polling.CHECKED_HEADER`)."""
        answer = self._answers.get((environ.get("HTTP_HOST", ""), environ.get("wsgi.url_scheme", "")))
        if answer is None:
            return None, "", None
        remembered = self._remembered.get(handle) or self._verified(handle)
        if remembered is None:
            return None, "", None
        if time.time() >= remembered.expires_epoch:
            self.forget(handle)
            return None, "", None
        extensions = self.flask_app.extensions
        finished = extensions[FINISHED_REQUESTS]
        if finished.is_stale():
            with self.flask_app.app_context():  # its query needs the app's database session
                finished.refresh_if_stale()
        if finished.knows(remembered.request_id):
            return None, "", None
        checks = extensions["passid_upstream_checks"]
        reported = environ.get(_REPORTED)
        if checks.is_due(remembered.request_id, remembered.expires_at, webhooks=True, reported=reported):
            return self._check(environ, remembered, answer, checks, reported)
        return answer, "records", None

    def _check(self, environ: dict[str, Any], remembered: Remembered, answer: Answer, checks: UpstreamChecks,
               reported: str | None) -> tuple[Answer | None, str, str | None]:
        """A due check made here: PASSID asked as Flask's view asks it; "still pending" answered here, as between
        checks; anything else (a final state, a failure) left to Flask, which draws it from what PASSID said
        (`CHECKED` in the environ: no second call). Flask's own part of a check was most of its CPU."""
        request_id = remembered.request_id
        if not checks.should_ask(request_id, remembered.expires_at, webhooks=True, reported=reported):
            return answer, "records", None  # another thread of this worker asked in this window a moment ago
        mark = checks.mark(request_id, remembered.expires_at)  # the window of the ask, whatever the call takes
        with self.flask_app.app_context():
            try:
                details = passid_client().get_request(request_id)
            except PassidBusy:
                checks.forget(request_id)  # PASSID is slow for others already: ask at the next poll (as Flask)
                return answer, "passid", None
            except PassidError as error:
                environ[CHECKED] = (request_id, error)
                return None, "", None
        if details.status == RequestStatus.PENDING:
            return answer, "passid", mark
        environ[CHECKED] = (request_id, details)
        return None, "", None

    def _verified(self, handle: str) -> Remembered | None:
        """A handle this process has not seen (its widget's earlier polls reached other workers or hosts), read
        as Flask's view reads it: its signature checked with the app's key, then remembered. Without this every
        worker's first poll of every widget went through Flask: a burst of Flask polls at each new wave of
        widgets. A handle that does not verify, or does not read as a request's, is Flask's (its 404)."""
        try:
            payload = signed_handles.unsign_with(self._request_handles, handle)
            request_id, expires_at = payload["r"], datetime.fromisoformat(payload["x"])
        except (signed_handles.InvalidHandle, KeyError, TypeError, ValueError):
            return None
        if not isinstance(request_id, str) or expires_at.tzinfo is None:
            return None
        remembered = Remembered(request_id, expires_at, expires_at.timestamp())
        self._remember(handle, remembered)
        return remembered

    def _through_flask(self, environ: dict[str, Any], handle: str, start_response: StartResponse) -> Iterable[bytes]:
        """Flask answers; if its answer is "pending" for this handle, remember both, else forget the handle."""

        def watching(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            found = environ.pop(FOUND_PENDING, None)
            if found is not None and found[0] == handle and status.startswith("204") and not exc_info:
                self._remember(handle, found[1])
                if "HTTP_COOKIE" not in environ:
                    self._learn(environ, status, headers)
            else:
                self.forget(handle)
            return start_response(status, headers, *exc_info)

        return self.app(environ, watching)

    def _remember(self, handle: str, remembered: Remembered) -> None:
        now = time.time()
        with self._changing:
            if remembered.expires_epoch > now:  # at and after expiry every poll is Flask's anyway
                self._remembered[handle] = remembered
            for _ in range(2):  # the oldest first: forget a couple of expired ones per new one
                oldest = next(iter(self._remembered), None)
                if oldest is None or self._remembered[oldest].expires_epoch > now:
                    break
                del self._remembered[oldest]
            while len(self._remembered) > self.max_remembered:
                del self._remembered[next(iter(self._remembered))]

    def _learn(self, environ: dict[str, Any], status: str, headers: list[tuple[str, str]]) -> None:
        key = (environ.get("HTTP_HOST", ""), environ.get("wsgi.url_scheme", ""))
        if not key[0] or (key not in self._answers and len(self._answers) >= MAX_HOSTS):
            return
        answer = Answer.of(status, headers)
        if answer is not None:
            self._answers[key] = answer  # the latest: a change in what Flask sends shows at once

    def forget(self, handle: str) -> None:
        if handle in self._remembered:
            with self._changing:
                self._remembered.pop(handle, None)

    def __len__(self) -> int:
        return len(self._remembered)
