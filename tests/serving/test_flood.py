"""A flood of cheap posts must starve no legitimate one (app/plumbing/request_guards.py).

Forty threads posting `{}` without a signature to `/webhooks/passid` once took every body slot of
the process, so half of PASSID's signed deliveries and of the customers' token checks met a 503.
Now a webhook without a well-formed `X-PASSID-Signature` is answered without its body and without a
slot, and each class of request (webhooks, customer forms, staff forms, the API) has slots of its own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import provisioned_database
from tests.support.flood import flood_while_serving
from tests.support.servers import AppServer, base_env

SECRET = "whsec_flood_test_0123456789"
FLOOD_SECONDS = 4.0


@pytest.fixture
def server(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    """`make run`'s server with one worker, so the flood and the legitimate calls meet in the same process."""
    with provisioned_database(database_kind, tmp_path, request) as url:
        env = base_env(url, PASSID_WEBHOOK_SECRET=SECRET, PASSID_WEBHOOK_GRACE_SECONDS="0")
        server = AppServer(env, tmp_path / "app.log", workers=1).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.mark.timeout(60)
def test_signed_deliveries_and_customer_checks_are_all_answered_during_an_unsigned_flood(
    server: AppServer,
) -> None:
    outcome = flood_while_serving(server.url, SECRET, FLOOD_SECONDS)
    assert outcome.legitimate >= 20, outcome  # enough calls met the flood to mean something
    assert outcome.signed == {200: sum(outcome.signed.values())}, outcome
    assert outcome.checks == {422: sum(outcome.checks.values())}, outcome
    # The flood itself was turned away as unsigned (401), never for want of a slot (503).
    assert 503 not in outcome.flood and outcome.flood[401] > 0, outcome
    # ... and each of its calls counted as a rejected call with no signature, as before.
    engine = create_engine(server.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            missing = connection.execute(text(
                "SELECT coalesce(sum(calls), 0) FROM webhook_rejection WHERE signature_result = 'missing'"
            )).scalar()
    finally:
        engine.dispose()
    assert missing >= outcome.flood[401]


@pytest.mark.timeout(30)
@pytest.mark.databases("sqlite")
def test_an_unsigned_webhook_is_answered_without_waiting_for_its_body(server: AppServer) -> None:
    """Headers that promise 60,000 bytes and no signature: refused at once, not after the body
    (which never comes: a server waiting for it would never answer, and the socket's timeout would end
    the test) has been waited for on one of the app's threads."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /webhooks/passid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 60000\r\n\r\n{")
        answer = _whole_answer(sock)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b'"INVALID_SIGNATURE"' in answer


def _whole_answer(sock: socket.socket) -> bytes:
    """Headers and the body their Content-Length announces: one recv may hold the headers alone."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.mark.databases("sqlite")
def test_an_unsigned_webhook_with_a_small_body_leaves_its_connection_usable(server: AppServer) -> None:
    """Its body is not needed for the 401, but it is read and dropped: left unread, the server closes the
    keep-alive connection just after the answer, and the next request a client sends on it is lost. The
    body follows its headers a moment later, as an HTTP library sends them (two writes)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(b"POST /webhooks/passid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\n\r\n")
            threading.Event().wait(0.2)  # the body's own write, after the headers'
            sock.sendall(b"{}")
            assert _whole_answer(sock).startswith(b"HTTP/1.1 401")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _whole_answer(sock).startswith(b"HTTP/1.1 200")
