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
