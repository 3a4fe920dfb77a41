"""A kept-alive connection the server closed in the meantime costs an idempotent call nothing."""

from __future__ import annotations

import socket
import threading

from app.passid import PassidClient

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-PASSID-API-Version: 1\r\n"
    b"Content-Length: 36\r\nConnection: keep-alive\r\n\r\n"
    b'{"url": null, "secretSet": false}   '
)


def _one_answer_per_connection(server: socket.socket, served: list[int]) -> None:
    """Promise keep-alive, then hang up after one answer — as a server at its idle timeout does."""
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data:
                conn.sendall(ANSWER)
                served.append(1)


def test_a_get_on_a_connection_the_server_closed_is_sent_again() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    served: list[int] = []
    threading.Thread(target=_one_answer_per_connection, args=(server, served), daemon=True).start()
    client = PassidClient(f"http://127.0.0.1:{server.getsockname()[1]}", "sk_sandbox_" + "k" * 32)
    try:
        for _ in range(3):
            assert client.get_webhook().secret_set is False
    finally:
        server.close()
    assert len(served) == 3
