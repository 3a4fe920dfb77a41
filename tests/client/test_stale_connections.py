"""A kept-alive connection the server drops as the next call arrives costs an idempotent call nothing."""

from __future__ import annotations

import socket
import threading

import pytest

from app.passid import PassidClient, PassidUnavailable

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-PASSID-API-Version: 1\r\n"
    b"Content-Length: 36\r\nConnection: keep-alive\r\n\r\n"
    b'{"url": null, "secretSet": false}   '
)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        data += chunk
    return data


def _answer_once_then_drop(server: socket.socket, answered: list[int]) -> None:
    """Answer a connection's first request, promise keep-alive, then hang up on its second
    unanswered — what a server at its idle timeout does when a request races the close."""
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            if _read_request(conn):
                answered.append(1)
                conn.sendall(ANSWER)
                _read_request(conn)  # the reused connection's next request: dropped


def _serve() -> tuple[socket.socket, list[int]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    answered: list[int] = []
    threading.Thread(target=_answer_once_then_drop, args=(server, answered), daemon=True).start()
    return server, answered


def test_a_get_on_a_connection_the_server_dropped_is_sent_again() -> None:
    server, answered = _serve()
    client = PassidClient(f"http://127.0.0.1:{server.getsockname()[1]}", "sk_sandbox_" + "k" * 32)
    try:
        for _ in range(3):
            assert client.get_webhook().secret_set is False
    finally:
        server.close()
    assert len(answered) == 3


def test_a_post_is_not_sent_again_after_the_server_dropped_it() -> None:
    """A POST may have been acted on: it fails rather than risk doing twice what is not idempotent."""
    server, _ = _serve()
    client = PassidClient(f"http://127.0.0.1:{server.getsockname()[1]}", "sk_sandbox_" + "k" * 32)
    try:
        client.get_webhook()
        with pytest.raises(PassidUnavailable):
            client.create_request()
    finally:
        server.close()
