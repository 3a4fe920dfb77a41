"""The test suite's own machinery keeps its promises: when PostgreSQL may be skipped, and that the
in-process app is whole (its sandbox over real HTTP, webhooks delivered back to it)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from tests.support.postgres import PostgresUnreachable, Probe, may_run_without, probe
from tests.support.waiting import wait_until
from tests.support.widget_actions import WidgetActions


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def not_postgres() -> Iterator[int]:
    """A loopback port where something listens that is not PostgreSQL: it accepts, then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_refused_connection_is_told_apart(closed_port: int) -> None:
    found = probe(f"postgresql://postgres@127.0.0.1:{closed_port}/postgres", timeout=2)
    assert not found.reachable and found.refused
    assert "connection refused" in found.reason


def test_without_ci_a_refused_postgresql_is_skipped(closed_port: int) -> None:
    found = probe(f"postgresql://postgres@127.0.0.1:{closed_port}/postgres", timeout=2)
    assert may_run_without(found, {}) is True
    assert may_run_without(found, {"CI": "false"}) is True


@pytest.mark.parametrize("ci", ["true", "True", "1"])
def test_under_ci_an_unreachable_postgresql_fails_the_run(closed_port: int, ci: str) -> None:
    found = probe(f"postgresql://postgres@127.0.0.1:{closed_port}/postgres", timeout=2)
    with pytest.raises(PostgresUnreachable, match="CI=true"):
        may_run_without(found, {"CI": ci})


def test_any_other_failure_fails_even_outside_ci(not_postgres: int) -> None:
    """Something answers on the port but is no PostgreSQL we can use: a broken setup, never a skip."""
    found = probe(f"postgresql://postgres@127.0.0.1:{not_postgres}/postgres", timeout=2)
    assert not found.reachable and not found.refused
    with pytest.raises(PostgresUnreachable):
        may_run_without(found, {})


def test_a_reachable_postgresql_is_never_skipped() -> None:
    assert may_run_without(Probe(True, False, ""), {"CI": "true"}) is False
    assert may_run_without(Probe(True, False, ""), {}) is False


def test_the_in_process_app_reaches_its_sandbox_over_http(app: Flask, widget: WidgetActions) -> None:
    """The QR button makes the app's PASSID client call the sandbox at PASSID_BASE_URL, a real loopback port."""
    base = app.config["PASSID_BASE_URL"]
    assert base.startswith("http://127.0.0.1:") and base.endswith("/sandbox")
    session = widget.generate_qr()
    public = requests.get(f"{base}/api/bridge/request/{session.request_id}/public", timeout=10)
    assert public.status_code == 200, public.text[:300]
    assert widget.poll(session).status_code == 204


def test_a_token_verified_in_process_comes_back_through_the_webhook(app: Flask, client: FlaskClient,
                                                                      widget: WidgetActions) -> None:
    """The sandbox's delivery reaches /webhooks/passid over HTTP and the background pass records it."""
    from app.rules.webhook_receipts import WebhookReceipt

    done = widget.submit_token("NG4M-XQRS-T88W")
    assert 'data-view="success"' in done.text

    def received() -> bool:
        with app.app_context():
            return WebhookReceipt.query.count() > 0

    wait_until(received, "the sandbox's webhook reached the in-process app")


def test_in_process_clients_close_each_answer_as_a_server_does(build_app: Callable[..., Flask]) -> None:
    """The app frees a request's body slot when its answer is closed (app/plumbing/request_guards.py). A server
    closes every answer it sends; a test client must too, or a test's fifth post gets a 503."""
    client = build_app(PASSID_MAX_BODIES_IN_FLIGHT="1").test_client()
    statuses = [client.post("/verify/token/check", data={"token": "not a token", "n": "x" * 20}).status_code
                for _ in range(3)]
    assert statuses == [422, 422, 422]
