"""Granian copies the process environment (SECRET_KEY, PASSID_API_KEY) into every request's
WSGI environ; the app passes on only the request's own keys (app/request_guards.py).

The other guard there, on slow request bodies, is proven in test_slow_clients.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import request

from app import create_app
from app.request_guards import BodiesInFlight
from tests.support.servers import base_env


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

    guarded = BodiesInFlight(app, limit=1)
    post = {"PATH_INFO": "/verify/token", "CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}
    for _ in range(3):
        answer = guarded(dict(post), lambda *args: None)
        assert list(answer) == [b"ok"]  # not the 503: the one slot was free again
        with pytest.raises(RuntimeError):
            answer.close()  # type: ignore[attr-defined]


def test_a_post_answers_under_werkzeugs_own_server_which_hands_over_the_raw_socket(tmp_path: Path) -> None:
    """`flask run` (Werkzeug's server) gives the app the raw socket as `wsgi.input`. Draining what the app
    left unread must stop at Content-Length there too, or every POST waits for bytes that never come."""
    import threading

    import requests
    from werkzeug.serving import make_server

    from tests.support.in_process import app_environ, migrated_sqlite_url

    server = make_server("127.0.0.1", 0, lambda environ, start: app(environ, start), threaded=True)
    app = create_app(app_environ(migrated_sqlite_url(tmp_path), tmp_path / "instance", server.server_port))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
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
