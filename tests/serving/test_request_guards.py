"""Granian copies the process environment (SECRET_KEY, PASSID_API_KEY) into every request's
WSGI environ; the app passes on only the request's own keys (app/plumbing/request_guards.py).

The other guard there, body slots in pools per class of request, is proven against the real server
in test_slow_clients.py and test_flood.py; its decisions and its waiting are shown here.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from flask import request

from app import create_app
from app.config import load_settings
from app.plumbing.request_guards import (
    API,
    CUSTOMER,
    OTHER,
    STAFF,
    WEBHOOK_WAITERS_PER_SLOT,
    WEBHOOKS,
    BodiesInFlight,
    answered_unread,
    pool_sizes,
    request_class,
    slot_pools,
    threads_held_at_most,
)
from tests.support.servers import ROOT, SHUTDOWN_POLL, THREADS, base_env


def test_a_request_never_carries_the_process_environment(tmp_path: Path) -> None:
    app = create_app(base_env(f"sqlite:///{tmp_path / 'app.db'}", PASSID_BACKGROUND_JOBS="false"))

    @app.get("/test-environ")
    def show_environ() -> dict[str, list[str]]:
        return {"keys": sorted(request.environ)}

    # What Granian does: every variable of the process environment lands in the request's environ.
    leaked = {"SECRET_KEY": "test-secret", "PASSID_API_KEY": "placeholder-institution-key", "HOME": "/root"}
    keys = app.test_client().get("/test-environ", environ_base=leaked).get_json()["keys"]
    assert not set(leaked) & set(keys)
    assert {"REQUEST_METHOD", "PATH_INFO", "HTTP_HOST", "wsgi.input"} <= set(keys)


def test_a_body_slot_comes_back_even_when_the_answer_fails_to_close() -> None:
    """Four such failures would otherwise leave a worker answering 503 to every post until it restarts."""

    class FailsToClose(list):
        def close(self) -> None:
            raise RuntimeError("the answer could not close")

    def app(environ: dict, start_response) -> FailsToClose:  # type: ignore[no-untyped-def]
        start_response("200 OK", [])
        return FailsToClose([b"ok"])

    guarded = BodiesInFlight(app, slot_pools(1, 0))
    post = {"PATH_INFO": "/verify/token", "CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}
    for _ in range(3):
        answer = guarded(dict(post), lambda *args: None)
        assert list(answer) == [b"ok"]  # not the 503: the one slot was free again
        with pytest.raises(RuntimeError):
            answer.close()  # type: ignore[attr-defined]


def test_a_body_slot_comes_back_once_the_answer_is_sent_before_the_server_closes_it() -> None:
    """Werkzeug's own server closes an answer only after reading what the client sent after the request,
    for as long as the client keeps its connection open: a staff member's next form (one staff slot) met
    503 while the previous answer waited there. The slot is back once the server has taken the answer."""

    def app(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def]
        start_response("302 Found", [("Location", "/staff/sign-in")])
        return [b"redirect"]

    guarded = BodiesInFlight(app, slot_pools(1, 0))
    statuses: list[str] = []

    def form(path: str) -> dict[str, object]:
        return {"PATH_INFO": path, "CONTENT_LENGTH": "9", "wsgi.input": io.BytesIO(b"csrf=abcd")}

    sent = guarded(form("/staff/sign-out"), lambda status, _headers: statuses.append(status))
    assert list(sent) == [b"redirect"]  # taken by the server, not closed yet
    nxt = guarded(form("/staff/sign-in"), lambda status, _headers: statuses.append(status))
    assert list(nxt) == [b"redirect"] and statuses == ["302 Found", "302 Found"]  # not the 503
    sent.close()  # type: ignore[attr-defined]
    nxt.close()  # type: ignore[attr-defined]  # each gives its slot back once: the pool is whole, not larger
    pool = guarded.pools[STAFF]
    assert pool.take() and not pool.take()


def test_a_post_answers_under_werkzeugs_own_server_which_hands_over_the_raw_socket(tmp_path: Path) -> None:
    """`flask run` (Werkzeug's server) gives the app the raw socket as `wsgi.input`. Draining what the app
    left unread must stop at Content-Length there too, or every POST waits for bytes that never come."""
    import threading

    import requests
    from werkzeug.serving import make_server

    from tests.support.in_process import app_environ, migrated_sqlite_url

    server = make_server("127.0.0.1", 0, lambda environ, start: app(environ, start), threaded=True)
    app = create_app(app_environ(migrated_sqlite_url(tmp_path), tmp_path / "instance", server.server_port))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True)
    thread.start()
    try:
        page = requests.get(f"http://127.0.0.1:{server.server_port}/verify", timeout=5)
        assert page.status_code == 200
        # A token that is not one: the widget answers 422 without asking PASSID, after reading the form.
        answer = requests.post(f"http://127.0.0.1:{server.server_port}/verify/token/check",
                               data={"token": "not a token", "n": "x" * 20}, timeout=5)
        assert answer.status_code == 422
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("path", "kind"), [
    ("/webhooks/passid", WEBHOOKS),
    ("/verify/token/check", CUSTOMER), ("/verify/qr/session", CUSTOMER), ("/branch/verify", CUSTOMER),
    ("/console/staff", STAFF), ("/staff/sign-in", STAFF),
    ("/api/sessions", API),
    ("/sandbox/api/onboard", OTHER), ("/verify", OTHER), ("/nowhere", OTHER),
])
def test_each_request_draws_on_the_pool_of_its_class(path: str, kind: str) -> None:
    assert request_class(path) == kind


def test_every_route_that_reads_a_body_has_a_pool_and_nothing_else_takes_a_slot(tmp_path: Path) -> None:
    """A post outside every class is answered without its body: true only while no route there reads one."""
    from tests.support.in_process import app_environ, migrated_sqlite_url

    app = create_app(app_environ(migrated_sqlite_url(tmp_path), tmp_path / "instance", 5000))
    pools = pool_sizes(2, sandbox=True)
    for rule in app.url_map.iter_rules():
        if rule.methods and rule.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            assert request_class(rule.rule, sandbox=True) in pools, rule.rule
    assert answered_unread({"PATH_INFO": "/nowhere", "CONTENT_LENGTH": "2"}, request_class("/nowhere"))


def test_requests_with_a_body_can_never_hold_every_server_thread(tmp_path: Path) -> None:
    """Every slot and a full waiting room (slow bodies in every class at once) leave threads for polls,
    pages and /healthz: the guard's numbers and the server's (Makefile THREADS) are read together."""
    environ = base_env(f"sqlite:///{tmp_path / 'app.db'}")
    environ.pop("PASSID_MAX_BODIES_IN_FLIGHT", None)
    default_slots = load_settings(environ).max_bodies_in_flight
    assert threads_held_at_most(default_slots) <= THREADS - 2
    assert threads_held_at_most(default_slots, sandbox=True) <= THREADS - 1  # a developer's machine
    assert f"THREADS ?= {THREADS}" in (ROOT / "Makefile").read_text()
    # A burst of eight of PASSID's deliveries in one process all find a slot or a place to wait.
    assert default_slots * (1 + WEBHOOK_WAITERS_PER_SLOT) >= 8


GOOD_SIGNATURE = "sha256=" + "ab" * 32


@pytest.mark.parametrize(("path", "headers", "unread"), [
    # A webhook without a well-formed signature: refused on its headers, whatever its body says.
    ("/webhooks/passid", {"CONTENT_LENGTH": "2"}, True),
    ("/webhooks/passid", {"CONTENT_LENGTH": "2", "HTTP_X_PASSID_SIGNATURE": "sha256=abc"}, True),
    ("/webhooks/passid", {"HTTP_TRANSFER_ENCODING": "chunked", "HTTP_X_PASSID_SIGNATURE": "ab" * 32}, True),
    ("/webhooks/passid", {"CONTENT_LENGTH": "2", "HTTP_X_PASSID_SIGNATURE": f" {GOOD_SIGNATURE} "}, False),
    ("/webhooks/passid", {"CONTENT_LENGTH": str(256 * 1024 + 1), "HTTP_X_PASSID_SIGNATURE": GOOD_SIGNATURE}, True),
    # Anything else only when announced larger than the app reads.
    ("/verify/token/check", {"CONTENT_LENGTH": "50"}, False),
    ("/verify/token/check", {"CONTENT_LENGTH": str(1024 * 1024 + 1)}, True),
    ("/api/sessions", {"HTTP_TRANSFER_ENCODING": "chunked"}, False),
])
def test_what_is_refused_on_its_headers_takes_no_body_slot(path: str, headers: dict[str, str], unread: bool) -> None:
    assert answered_unread({"PATH_INFO": path, **headers}, request_class(path)) is unread


class Held:
    """A WSGI app whose answers wait until released: requests that hold their body slot."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def]
        if environ["PATH_INFO"].startswith("/webhooks/"):
            self.release.wait(10)
        start_response("200 OK", [])
        return [b"ok"]


def post(guarded: BodiesInFlight, path: str, results: list[str] | None = None) -> str:
    statuses: list[str] = []
    environ = {"PATH_INFO": path, "CONTENT_LENGTH": "2", "HTTP_X_PASSID_SIGNATURE": GOOD_SIGNATURE}
    answer = guarded(environ, lambda status, _headers: statuses.append(status))
    list(answer)
    getattr(answer, "close", lambda: None)()  # as a server does; a 503 is a plain list
    if results is not None:
        results.append(statuses[0])
    return statuses[0]


def test_a_class_whose_slots_are_all_taken_starves_no_other_class() -> None:
    app = Held()
    guarded = BodiesInFlight(app, slot_pools(2, 0))
    holders = [threading.Thread(target=post, args=(guarded, "/webhooks/passid")) for _ in range(2)]
    for holder in holders:
        holder.start()
    time.sleep(0.2)
    try:
        assert post(guarded, "/webhooks/passid").startswith("503")
        assert post(guarded, "/verify/token/check") == "200 OK"
        assert post(guarded, "/console/staff") == "200 OK"
        assert post(guarded, "/api/sessions") == "200 OK"
    finally:
        app.release.set()
        for holder in holders:
            holder.join()


def test_a_request_waits_briefly_for_a_slot_of_its_pool_rather_than_meeting_503_at_once() -> None:
    """A burst one larger than the pool: the last in waits for a slot instead of being refused."""
    app = Held()
    guarded = BodiesInFlight(app, slot_pools(2, 2.0))
    results: list[str] = []
    senders = [threading.Thread(target=post, args=(guarded, "/webhooks/passid", results)) for _ in range(3)]
    for sender in senders:
        sender.start()
    time.sleep(0.3)
    app.release.set()
    for sender in senders:
        sender.join()
    assert results == ["200 OK"] * 3
