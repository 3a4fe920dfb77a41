"""Rate limits per client on new QR sessions, token checks and staff sign-in, with a friendly word."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.support.html_fields import hidden, widget_fields_in
from tests.support.servers import AppServer, base_env, free_port, migrate
from tests.support.widget_actions import WidgetActions

HTMX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    directory: Path = tmp_path_factory.mktemp("limited")
    env = base_env(
        f"sqlite:///{directory / 'passid.db'}",
        PASSID_RATE_LIMIT_SESSIONS="3 per minute",
        PASSID_RATE_LIMIT_TOKENS="3 per minute",
        PASSID_RATE_LIMIT_SIGN_IN="3 per minute",
    )
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


def _form(server: AppServer) -> dict[str, str]:
    return widget_fields_in(requests.get(f"{server.url}/verify", timeout=10).text)


def test_new_qr_sessions_are_limited_per_client_with_a_friendly_message(limited: AppServer) -> None:
    form = _form(limited)
    for _ in range(3):
        spinner = requests.post(f"{limited.url}/verify/qr", data={"o": form["o"]}, headers=HTMX, timeout=10)
        assert spinner.status_code == 200  # the spinner step is not counted
        created = requests.post(f"{limited.url}/verify/qr/session", data={"o": form["o"]}, headers=HTMX, timeout=10)
        assert 'data-view="awaiting"' in created.text
    refused = requests.post(f"{limited.url}/verify/qr/session", data={"o": form["o"]}, headers=HTMX, timeout=10)
    assert refused.status_code == 429
    assert 'data-view="idle"' in refused.text and "Too many attempts" in refused.text
    # Without JavaScript the same limit holds on the one-step form.
    plain = requests.post(f"{limited.url}/verify/qr", data={"o": form["o"]}, timeout=10)
    assert plain.status_code == 429 and "Too many attempts" in plain.text


def test_token_checks_are_limited_per_client(limited: AppServer) -> None:
    form = _form(limited)
    answers = [
        requests.post(f"{limited.url}/verify/token/check", data={**form, "token": "KE8V-3TXY-Z72L"}, timeout=10)
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "Too many attempts" in answers[-1].text


def test_staff_sign_in_attempts_are_limited(limited: AppServer) -> None:
    session = requests.Session()
    statuses = []
    for _ in range(4):
        form = session.get(f"{limited.url}/staff/sign-in", timeout=10).text
        csrf = hidden(form, "csrf_token")
        answer = session.post(f"{limited.url}/staff/sign-in",
                              data={"csrf_token": csrf, "username": "nobody", "password": "wrong"}, timeout=10)
        statuses.append(answer.status_code)
    assert statuses == [401, 401, 401, 429]
    assert "Too many sign-in attempts" in answer.text


@pytest.fixture(scope="module")
def limited_two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """Two worker processes with the default rate-limit storage, as `make run` starts them."""
    directory: Path = tmp_path_factory.mktemp("limited-two")
    env = base_env(f"sqlite:///{directory / 'passid.db'}", PASSID_RATE_LIMIT_SESSIONS="5 per minute")
    migrate(env)
    server = AppServer(env, directory / "app.log", workers=2).start()
    yield server
    server.stop()


def test_the_limit_holds_across_worker_processes(limited_two_workers: AppServer) -> None:
    """Each process counting on its own would let 5 through per process.

    Every request opens a new connection, so the server spreads them over both workers.
    """
    server = limited_two_workers
    form = _form(server)
    statuses = []
    for _ in range(16):
        with requests.Session() as fresh_connection:
            answer = fresh_connection.post(f"{server.url}/verify/qr/session", data={"o": form["o"]},
                                           headers={**HTMX, "Connection": "close"}, timeout=15)
        statuses.append(answer.status_code)
    assert statuses.count(200) == 5 and statuses.count(429) == 11, statuses
    assert statuses[:5] == [200] * 5


@pytest.mark.databases("sqlite")
def test_a_rate_limit_store_that_does_not_answer_leaves_the_limits_to_each_process(
    build_app: Callable[..., Flask],
) -> None:
    """Redis down (nothing listens at its address) must not turn every QR start and token check into a 500."""
    app = build_app(PASSID_RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}/0",
                    PASSID_RATE_LIMIT_TOKENS="2 per minute")
    widget = WidgetActions(app.test_client())
    answers = [widget.submit_token("KE8V-3TXY-Z72L") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # counted in this process's memory meanwhile
    assert 'data-view="success"' in answers[0].text and "Too many attempts" in answers[-1].text
    assert 'data-view="awaiting"' in widget.client.post(
        "/verify/qr/session", data={"o": widget.fields()["o"]}, headers=HTMX).text
