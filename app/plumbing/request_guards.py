"""Two guards around every request that come from how the app is served, not from what it does.

**Slow request bodies, and floods of cheap ones.** Granian reads request headers without holding
a thread, so clients that trickle headers cost nothing (tests/serving/test_slow_clients.py). It
has no timeout for a request *body*, though, and the app reads bodies on its own threads: forty
POSTs that send one byte every few seconds would hold every thread of every worker, and then
nothing answers, `/healthz` included. So a request with a body takes a *body slot* before the app
sees it, and the slots are few. They come in pools, one per class of request, decided from the
path alone (`request_class`): PASSID's webhooks, customers' forms (the widget and the branch
counter), staff forms (console, sign-in) and the API. A flood in one class (junk posted at the
webhook, say) takes that class's slots only: PASSID's signed deliveries, a customer's token check
and a staff form each keep capacity of their own (tests/serving/test_flood.py). Webhooks and
customer forms have `PASSID_MAX_BODIES_IN_FLIGHT` (2) slots per process each, staff forms and the
API one each. No route elsewhere reads a body, so a post anywhere else takes no slot at all.

A request whose pool is full may wait up to `PASSID_BODY_SLOT_WAIT_SECONDS` (1) for a slot of its
own pool; then it gets `503` with `Retry-After`, its body never read. A waiter holds a server
thread, so waiting is bounded twice: per pool (webhooks three per slot, so that eight senders
delivering at once in a burst, a database pausing on a lock, say, all wait rather than meet a 503;
the others one per slot) and per process (`WAITING_ROOM`, shared). Slots, the waiting room and the
one drain of a body answered unread (below) together (`threads_held_at_most`) stay below the
server's threads (16, `THREADS` in the Makefile) with room to spare, so requests without a body —
the widget's poll, `/healthz`, every page — always find a thread, whatever mix of classes is flooded
(tests/serving/test_request_guards.py ties the two numbers). PASSID retries a webhook that met a 503
on its schedule; a person's form post says "try again".

Some requests need no slot because their answer does not depend on their body, and they are passed
on with an empty one (`answered_unread`); a small such body is then drained by one thread per
process at most, so the sender's connection stays usable (`DRAINS_AT_ONCE`): a webhook without a
well-formed `X-PASSID-Signature` header (the receiver refuses it 401 and counts it, or 429 past the
failed-call limit, exactly as before, without a byte of the body read), and a body announced larger
than the app or the receiver accepts (413 from its Content-Length). The failed-call limit itself
cannot be checked before the slot: a validly signed delivery is exempt from it, and only the body
can show that, so checking first would refuse PASSID's own deliveries from an address shared with
junk.

A request answered without reading its body (a 401 before the JSON is parsed, say) has the rest
read and dropped before the answer goes out when it announced at most 64 KiB, as gunicorn did:
left unread, Granian closes the keep-alive connection just after the answer, and a client that
reuses it in that instant loses its next request ("connection closed without response"). A
larger or chunked body is not waited for: its connection closes, as it should. Nor is the body of
a request passed on without a slot, unless the one drain (`DRAINS_AT_ONCE`) is free: draining holds
a thread as long as its sender likes, so at most one thread per process ever does it.

**The process environment is not the request's.** Granian copies the whole process
environment into every request's WSGI environ, `SECRET_KEY` and `PASSID_API_KEY` included,
where any code that shows or logs `request.environ` would expose them. Only the keys a WSGI
request really has (the CGI variables, `HTTP_*` headers and dotted server extensions such as
`wsgi.input`) are passed on.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import Flask
from flask_babel import gettext as _
from werkzeug.wsgi import LimitedStream

from app.config import MAX_CONTENT_LENGTH, MAX_WEBHOOK_BODY, settings_of
from app.plumbing.access_log import CountedBody
from app.plumbing.metrics import metrics

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# The CGI variables of PEP 3333 (and REMOTE_PORT, which servers add); headers arrive as HTTP_*.
_CGI_KEYS = frozenset({
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE", "GATEWAY_INTERFACE",
    "REMOTE_ADDR", "REMOTE_PORT", "REMOTE_HOST", "REMOTE_USER", "AUTH_TYPE", "REQUEST_URI", "RAW_URI",
    "HTTPS",
})
BUSY_SENTENCE = b"The service is busy. Please try again in a moment.\n"
_PLAIN_TEXT = "text/plain; charset=utf-8"
# The 503 page: our stylesheet and icon, nothing else; a partner's iframe may show it (the widget's posts meet it).
BUSY_PAGE_POLICY = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'"
DRAIN_AT_MOST = 64 * 1024
# A burst of PASSID's deliveries may all wait for a webhook slot; elsewhere one waiter per slot.
WEBHOOK_WAITERS_PER_SLOT = 3
WAITERS_PER_SLOT = 1
# Waiters at once in a process, whatever their class: each holds a server thread while it waits.
WAITING_ROOM = 6
# Bodies answered unread (an unsigned webhook, say) drained at once, so their connections stay usable.
DRAINS_AT_ONCE = 1

# Classes of request, each with body slots of its own.
WEBHOOKS = "webhooks"
CUSTOMER = "customer"
STAFF = "staff"
API = "api"
SANDBOX = "sandbox"
OTHER = "other"  # no route here reads a body: answered (404, 405) without a slot or the body
_CLASS_OF_PREFIX = (
    ("/webhooks/", WEBHOOKS),
    ("/verify/", CUSTOMER), ("/branch/", CUSTOMER),
    ("/console/", STAFF), ("/staff/", STAFF),
    ("/api/", API),
)
# The contract's header value, as app/passid/signing.py reads it: `sha256=` and 64 hex digits.
_WELL_FORMED_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")


def init_request_guards(app: Flask, busy: Callable[[Flask, dict[str, Any]], tuple[str, bytes]] | None = None) -> None:
    """Wrap the app (call after every other WSGI layer, so these see each request first).

    `busy`: the 503's content type and bytes for a request (app/error_pages.py draws pages); without it, the
    plain sentence in the request's language."""
    # The embedded sandbox is PASSID's side of the wire served by this same process: a widget post
    # that holds a slot calls it over HTTP, so its requests take slots of their own, or the widget
    # would starve itself. It exists only on a developer's machine.
    settings = settings_of(app)
    sandbox = settings.embedded_sandbox
    pools = slot_pools(settings.max_bodies_in_flight, settings.body_slot_wait_seconds, sandbox=sandbox)
    watched = metrics(app)
    refused = (lambda kind: watched.body_slot_refusals.labels(kind).inc()) if watched is not None else None
    answer = busy or busy_text
    bodies = BodiesInFlight(app.wsgi_app, pools, sandbox=sandbox, busy=lambda environ: answer(app, environ),
                            refused=refused)
    app.wsgi_app = RequestEnvironOnly(bodies)  # type: ignore[method-assign]


def busy_text(app: Flask, environ: dict[str, Any]) -> tuple[str, bytes]:
    """The 503 sentence in the customer's language, as plain text, chosen from the URL and Accept-Language
    (`app.plumbing.i18n`); the body stays unread."""
    try:
        with app.request_context(environ):
            return _PLAIN_TEXT, (_("The service is busy. Please try again in a moment.") + "\n").encode()
    except Exception:  # never let a refusal fail: the English sentence
        return _PLAIN_TEXT, BUSY_SENTENCE


def is_request_key(key: str) -> bool:
    """True for what belongs to the request: CGI variables, HTTP_* headers, `wsgi.*`-style extensions."""
    return key in _CGI_KEYS or key.startswith("HTTP_") or "." in key


def has_body(environ: dict[str, Any]) -> bool:
    """A declared length above zero, or a chunked body (whose length nobody knows yet)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.strip() not in ("", "0"):
        return True
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def request_class(path: str, *, sandbox: bool = False) -> str:
    """Which pool of body slots a request draws on, from its path alone (the body is not read yet)."""
    if sandbox and path.startswith("/sandbox/"):
        return SANDBOX
    for prefix, kind in _CLASS_OF_PREFIX:
        if path.startswith(prefix):
            return kind
    return OTHER


def pool_sizes(per_busy_class: int, *, sandbox: bool = False) -> dict[str, int]:
    """Slots per class: webhooks and customers' forms come in bursts, staff forms and the API one by one.

    The sandbox's pool (a developer's machine only) mirrors the customers': each widget post calls it once.
    """
    sizes = {WEBHOOKS: per_busy_class, CUSTOMER: per_busy_class, STAFF: 1, API: 1}
    if sandbox:
        sizes[SANDBOX] = per_busy_class
    return sizes


def slot_pools(per_busy_class: int, wait_seconds: float, *, sandbox: bool = False) -> dict[str, SlotPool]:
    room = threading.BoundedSemaphore(WAITING_ROOM)
    return {
        kind: SlotPool(size, wait_seconds, waiters=size * waiters_per_slot(kind), room=room)
        for kind, size in pool_sizes(per_busy_class, sandbox=sandbox).items()
    }


def waiters_per_slot(kind: str) -> int:
    return WEBHOOK_WAITERS_PER_SLOT if kind == WEBHOOKS else WAITERS_PER_SLOT


def threads_held_at_most(per_busy_class: int, *, sandbox: bool = False) -> int:
    """The most server threads requests with a body can hold in one process: every slot, and a full
    waiting room. Must stay below the server's threads, or polls and `/healthz` could find none."""
    return sum(pool_sizes(per_busy_class, sandbox=sandbox).values()) + WAITING_ROOM + DRAINS_AT_ONCE


def announced_length(environ: dict[str, Any]) -> int | None:
    """The Content-Length as a number; None when there is none or it is not one."""
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    return int(length) if length.isascii() and length.isdigit() else None


def has_well_formed_signature(environ: dict[str, Any]) -> bool:
    """An `X-PASSID-Signature` shaped as PASSID sends it; whether it matches needs the body."""
    return bool(_WELL_FORMED_SIGNATURE.fullmatch(environ.get("HTTP_X_PASSID_SIGNATURE", "").strip()))


def is_oversized(environ: dict[str, Any], kind: str) -> bool:
    """A body announced larger than the receiver (webhooks) or the app accepts: refused 413 on its length."""
    limit = MAX_WEBHOOK_BODY if kind == WEBHOOKS else MAX_CONTENT_LENGTH
    length = announced_length(environ)
    return length is not None and length > limit


def answered_unread(environ: dict[str, Any], kind: str) -> bool:
    """True when the app's answer cannot depend on the body: it is refused on its headers alone.

    A webhook without a well-formed signature is refused 401 whatever it says; an oversized body 413;
    a post to a path where no route reads a body 404 or 405.
    """
    return (kind == OTHER or (kind == WEBHOOKS and not has_well_formed_signature(environ))
            or is_oversized(environ, kind))


def without_body(environ: dict[str, Any], *, keep_length: bool) -> None:
    """Hand the app an empty body in place of the sender's, which stays unread.

    `keep_length` for an oversized body, which the app refuses on its Content-Length, reading nothing;
    otherwise the request says it has no body, so nothing in the app can wait on the real one.
    """
    if not keep_length:
        environ["CONTENT_LENGTH"] = "0"
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input"] = io.BytesIO(b"")
    environ["wsgi.input_terminated"] = True


class RequestEnvironOnly:
    """Drops process environment variables that a server copied into the WSGI environ."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        for key in [key for key in environ if not is_request_key(key)]:
            del environ[key]
        return self.app(environ, start_response)


class SlotPool:
    """`size` body slots; a request that finds them taken may wait `wait_seconds` for one, if fewer than
    `waiters` others of its pool already wait and the process's waiting room (`room`, shared by every
    pool) has a place: a waiter holds a server thread, so their number is bounded as well as their time."""

    def __init__(self, size: int, wait_seconds: float = 0.0, *, waiters: int | None = None,
                 room: threading.BoundedSemaphore | None = None) -> None:
        self.slots = threading.BoundedSemaphore(size)
        self.waiters = threading.BoundedSemaphore(waiters if waiters is not None else size * WAITERS_PER_SLOT)
        self.room = room or threading.BoundedSemaphore(WAITING_ROOM)
        self.wait_seconds = wait_seconds

    def take(self) -> bool:
        if self.slots.acquire(blocking=False):
            return True
        if self.wait_seconds <= 0 or not self.waiters.acquire(blocking=False):
            return False
        try:
            if not self.room.acquire(blocking=False):
                return False
            try:
                return self.slots.acquire(timeout=self.wait_seconds)
            finally:
                self.room.release()
        finally:
            self.waiters.release()

    def give_back(self) -> None:
        self.slots.release()


class BodiesInFlight:
    """Requests with a body take a slot of their class's pool first; a full pool means 503, unread."""

    def __init__(self, app: WSGIApp, pools: Mapping[str, SlotPool], *, sandbox: bool = False,
                 busy: Callable[[dict[str, Any]], tuple[str, bytes]] = lambda _environ: (_PLAIN_TEXT, BUSY_SENTENCE),
                 refused: Callable[[str], None] | None = None) -> None:
        """`refused(kind)` is told of each 503, with the class of request it refused (for the metrics)."""
        self.app = app
        self.busy = busy
        self.refused = refused
        self.pools = pools
        self.sandbox = sandbox
        self.drains = threading.BoundedSemaphore(DRAINS_AT_ONCE)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not has_body(environ):
            return self.app(environ, start_response)
        kind = request_class(environ.get("PATH_INFO", ""), sandbox=self.sandbox)
        if answered_unread(environ, kind):
            return self._answer_unread(environ, start_response, oversized=is_oversized(environ, kind))
        pool = self.pools[kind]
        if not pool.take():
            if self.refused is not None:
                self.refused(kind)
            content_type, body = self.busy(environ)
            headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Retry-After", "5"),
                       ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
            if content_type.startswith("text/html"):  # drawn before Talisman could add a policy: its own, strict
                headers.append(("Content-Security-Policy", BUSY_PAGE_POLICY))
            start_response("503 Service Unavailable", headers)
            return [body]
        try:
            answer = self._answer_then_drain(environ, start_response)
        except BaseException:
            pool.give_back()
            raise
        # The slot is held until the answer has been sent, not just produced, and freed even if the answer's
        # own close fails (Werkzeug's ClosingIterator would stop at that error).
        return SentOrClosed(answer, pool.give_back)

    def _answer_unread(self, environ: dict[str, Any], start_response: StartResponse, *,
                       oversized: bool) -> Iterable[bytes]:
        """Answer without the body, at once; once the answer is sent, drop the body if it is small and the
        drain is free.

        Left unread, the body ends the keep-alive connection just after the answer, and a client that
        reuses it in that instant (a careless integrator's retry loop, any HTTP library's pool) loses
        its next request. The drain runs when the server closes the answer, so the answer never waits
        for a body that may never come; it is bounded by DRAIN_AT_MOST bytes and by DRAINS_AT_ONCE, so a
        sender that trickles its junk holds at most that many threads, never a slot of any class.
        """
        sender = {"wsgi.input": environ.get("wsgi.input"), "CONTENT_LENGTH": environ.get("CONTENT_LENGTH")}
        without_body(environ, keep_length=oversized)
        answer = self.app(environ, start_response)
        if oversized or sender["wsgi.input"] is None:
            return answer

        def drain_when_sent(_sent: int | None) -> None:
            if self.drains.acquire(blocking=False):
                try:
                    drain_unread_body(sender)
                finally:
                    self.drains.release()

        return CountedBody(answer, drain_when_sent)

    def _answer_then_drain(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        bound_to_content_length(environ)
        answer = self.app(environ, start_response)
        drain_unread_body(environ)
        return answer


class SentOrClosed(CountedBody):
    """The answer, passed through; `release` runs once, when the server has taken its last chunk or when it
    closes it, whichever comes first (and even if the answer's own close fails, as `CountedBody` does).

    Why not at close only: a server may do more between the two. Werkzeug's own (`flask run`, the tests'
    in-process server) first reads whatever the client sent after the request, until the client closes
    the connection; a staff member's next form met 503 while the previous one's slot waited for that. By
    the last chunk the body has been read (or drained, `_answer_then_drain`) and the answer handed over:
    what the slot bounds is over.
    """

    def __init__(self, body: Iterable[bytes], release: Callable[[], None]) -> None:
        unreleased = threading.Lock()  # taken by the one release

        def release_once(_sent: int | None) -> None:
            if unreleased.acquire(blocking=False):
                release()

        super().__init__(body, release_once)

    def __iter__(self) -> Iterator[bytes]:
        yield from super().__iter__()
        self.finish(self.sent)


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
