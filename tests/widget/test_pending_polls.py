"""The pending poll answered before Flask (app/widget/pending_polls.py): the same answer, for less, only when safe.

In process, through the whole WSGI stack as a server calls it (access log, request guards, ProxyFix, the
layer, Flask), with the app's own sandbox over loopback as PASSID. Which path answered is counted at the
Flask view (`widget.poll` wrapped with a counter): a poll the layer answered never reaches it. Each test
that says the layer answered fails without the layer (every poll then reaches the view); the others say
what the layer must never do, and pass either way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.passid import PassidClient
from app.plumbing.database import utcnow
from app.plumbing.request_ids import HEADER as REQUEST_ID
from app.rules import verifications
from app.rules.finished_requests import EXTENSION as FINISHED_REQUESTS
from app.rules.finished_requests import FinishedRequests
from app.widget import pending_polls, signed_handles
from app.widget.polling import CHECKED_HEADER, UpstreamChecks, window_mark
from tests.support.scraping import BEARER, METRICS_TOKEN, value
from tests.support.waiting import wait_until
from tests.support.widget_actions import WidgetActions
from tests.support.widget_http import HTMX, QrSession
from tests.widget.test_poll_without_database import HandClock, insert_finished_row

pytestmark = pytest.mark.databases("sqlite")

NONCE = re.compile(r"'nonce-[^']+'")


@pytest.fixture
def app_settings() -> dict[str, str]:
    """Webhooks on, checks a minute apart: between checks a pending poll may be answered by our records."""
    return {"PASSID_WEBHOOK_SECRET": "whsec_pending_polls_0123456789", "PASSID_POLL_CHECK_SECONDS": "60",
            "PASSID_METRICS_TOKEN": METRICS_TOKEN}


@pytest.fixture
def flask_polls(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The handles of the polls the Flask view answered, from now on."""
    answered: list[str] = []
    view = app.view_functions["widget.poll"]

    def counted() -> Any:
        from flask import request

        answered.append(request.args.get("h", ""))
        return view()

    monkeypatch.setitem(app.view_functions, "widget.poll", counted)
    return answered


def handle_of(session: QrSession) -> str:
    found = re.search(r"[?&]h=([^&]+)", session.poll_url)
    assert found
    return found.group(1)


def headers_without_per_request(answer: TestResponse) -> list[tuple[str, str]]:
    """An answer's headers less its request id, its CSP nonce written the same for every answer."""
    return [(name, NONCE.sub("'nonce-…'", value)) for name, value in answer.headers.items() if name != REQUEST_ID]


def test_the_layer_answers_a_pending_poll_with_flasks_status_and_headers(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str]
) -> None:
    session = widget.generate_qr()
    for base_url in ("http://localhost", "https://localhost"):  # HSTS on https only, as Flask sends it
        flask_polls.clear()
        by_flask = client.get(session.poll_url, headers=HTMX, base_url=base_url)
        by_layer = [client.get(session.poll_url, headers=HTMX, base_url=base_url) for _ in range(3)]
        assert flask_polls == [handle_of(session)]  # the first only: the layer answered the rest
        assert by_flask.status_code == 204 and by_flask.data == b""
        for answer in by_layer:
            assert answer.status == by_flask.status and answer.data == b""
            assert headers_without_per_request(answer) == headers_without_per_request(by_flask)
            assert answer.headers[REQUEST_ID] != by_flask.headers[REQUEST_ID]
        nonces = {NONCE.search(a.headers["Content-Security-Policy"]).group(0)  # type: ignore[union-attr]
                  for a in (by_flask, *by_layer)}
        assert len(nonces) == 4  # a nonce is never repeated
    assert "Strict-Transport-Security" in by_layer[0].headers


def test_a_forged_altered_or_unknown_handle_always_reaches_flask_and_its_404(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str]
) -> None:
    session = widget.generate_qr()
    assert widget.poll(session).status_code == 204  # remembered by the layer from here on
    handle = handle_of(session)
    with app.app_context():  # a real request's fields, signed with another key
        payload = signed_handles.unsign("request", handle)
    forged = signed_handles.serializer_for("not-the-app-secret", "request").dumps(payload)
    middle = len(handle) // 2  # (not the last character: base64's padding bits there may change unnoticed)
    altered = [handle[:middle] + ("A" if handle[middle] != "A" else "B") + handle[middle + 1:],
               handle + "x", handle[:-2], handle.replace(".", "..", 1)]
    for wrong in (forged, *altered):
        flask_polls.clear()
        answer = client.get(session.poll_url.replace(handle, wrong), headers=HTMX)
        assert answer.status_code == 404, wrong
        assert "Unknown verification session" in answer.text
        assert flask_polls == [wrong]


def test_a_row_another_process_records_is_drawn_at_the_first_poll_after_the_refresh(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str]
) -> None:
    clock = HandClock()
    app.extensions[FINISHED_REQUESTS] = FinishedRequests(verifications.request_ids_created_since, clock=clock)
    session = widget.generate_qr()
    assert widget.poll(session).status_code == 204
    assert [widget.poll(session).status_code for _ in range(3)] == [204] * 3
    assert len(flask_polls) == 1  # the layer answers

    # A webhook handled by another worker records it: written straight to the database, not in this process.
    insert_finished_row(app.config["SQLALCHEMY_DATABASE_URI"], session.request_id, created_at=utcnow())
    assert widget.poll(session).status_code == 204  # inside the 50 ms: nobody here knows yet
    clock.seconds += 0.06
    finished = widget.poll(session)
    assert finished.status_code == 200 and 'data-view="success"' in finished.text
    assert len(flask_polls) == 2  # Flask drew it
    assert widget.poll(session).status_code == 200  # and the layer forgot the handle: Flask again
    assert len(flask_polls) == 3


def test_a_due_upstream_check_is_made_by_the_layer_and_still_pending_is_its_answer(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str]
) -> None:
    session = widget.generate_qr()
    assert widget.poll(session).status_code == 204
    asked_before = passid_asked(client)
    assert [widget.poll(session).status_code for _ in range(3)] == [204] * 3
    assert passid_asked(client) == asked_before and len(flask_polls) == 1  # between checks: no PASSID call

    app.extensions["passid_upstream_checks"].forget(session.request_id)  # its next poll asks, as in a window
    before = client.get("/metrics", headers=BEARER).text
    assert widget.poll(session).status_code == 204
    assert passid_asked(client) == asked_before + 1  # the check happened, once
    assert len(flask_polls) == 1  # made by the layer: PASSID said pending, so Flask had nothing to draw
    after = client.get("/metrics", headers=BEARER).text
    by_passid = {"answered_by": "passid", "state": "pending"}
    assert value(after, "passid_widget_polls_total", by_passid) - value(before, "passid_widget_polls_total",
                                                                         by_passid) == 1
    assert [widget.poll(session).status_code for _ in range(3)] == [204] * 3
    assert passid_asked(client) == asked_before + 1 and len(flask_polls) == 1  # and the next are between checks


def test_a_decline_found_at_the_layer_s_check_is_drawn_by_flask_without_asking_again(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str], app_sandbox: PassidClient
) -> None:
    session = widget.generate_qr()
    assert widget.poll(session).status_code == 204
    app_sandbox.decline_request(session.request_id, app_sandbox.sandbox_login("KE8V-3TXY-Z72L"))
    assert widget.poll(session).status_code == 204  # no webhook reports a decline: pending until the check
    asked_before = passid_asked(client)

    app.extensions["passid_upstream_checks"].forget(session.request_id)
    declined = widget.poll(session)
    assert declined.status_code == 200 and 'data-view="declined"' in declined.text
    assert passid_asked(client) == asked_before + 1  # the layer's call: Flask drew its answer
    assert len(flask_polls) == 2


def passid_asked(client: FlaskClient) -> float:
    text = client.get("/metrics", headers=BEARER).text
    return value(text, "passid_upstream_calls_total", {"endpoint": "get_request"})


def test_a_check_in_a_window_tells_the_widget_and_a_poll_reporting_it_is_not_asked_again_elsewhere(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str]
) -> None:
    """A poll that asked PASSID in a check window is answered with the window's mark (`PASSID-Checked`); the
    layer's replies between checks never repeat it (they replay Flask's headers); a worker that did not make
    that check (a fresh `UpstreamChecks`, as another process's) asks only for a poll that does not report it."""
    clock = HandClock()
    clock.seconds = datetime.now(UTC).timestamp()
    app.extensions["passid_upstream_checks"].clock = clock
    session = widget.generate_qr()
    with app.app_context():
        expires_at = datetime.fromisoformat(signed_handles.unsign("request", handle_of(session))["x"])
    clock.seconds = expires_at.timestamp() - (5 * 60 + 1)  # window 5 at one check a minute, its last second
    mark = window_mark(session.request_id, expires_at, 5, 60)
    asked_before = passid_asked(client)

    first = widget.poll(session)  # through Flask (the layer knows no pending answer yet): a due check
    assert first.status_code == 204 and first.headers.get(CHECKED_HEADER) == mark
    assert passid_asked(client) == asked_before + 1 and len(flask_polls) == 1
    again = widget.poll(session)  # answered by the layer from Flask's headers: no check, no mark
    assert again.status_code == 204 and CHECKED_HEADER not in again.headers
    assert passid_asked(client) == asked_before + 1 and len(flask_polls) == 1

    other_worker = UpstreamChecks(60, clock=clock)
    app.extensions["passid_upstream_checks"] = other_worker
    reporting = widget.client.get(session.poll_url, headers={**HTMX, CHECKED_HEADER: mark})
    assert reporting.status_code == 204 and passid_asked(client) == asked_before + 1  # not asked again
    asked = asked_before + 1
    another_window = window_mark(session.request_id, expires_at, 4, 60)
    for reported in (another_window, "1", "x" * 40, None):  # another window's, nonsense, nothing
        app.extensions["passid_upstream_checks"] = UpstreamChecks(60, clock=clock)  # yet another worker
        headers = HTMX if reported is None else {**HTMX, CHECKED_HEADER: reported}
        answer = widget.client.get(session.poll_url, headers=headers)
        asked += 1
        assert answer.headers.get(CHECKED_HEADER) == mark and passid_asked(client) == asked, reported
    assert len(flask_polls) == 1  # all but the first answered by the layer


def test_an_untrusted_host_is_still_refused_after_its_handle_is_remembered(
    build_app: Callable[..., Flask], app_settings: dict[str, str]
) -> None:
    app = build_app(**app_settings, PASSID_TRUSTED_PROXIES="1")
    client = app.test_client()
    session = WidgetActions(client).generate_qr()
    # (Each refusal makes the layer forget the handle: it is remembered again before the next.)
    assert [client.get(session.poll_url, headers=HTMX).status_code for _ in range(2)] == [204] * 2
    assert client.get(session.poll_url, headers={**HTMX, "Host": "evil.example"}).status_code == 400
    # Through the proxy the app trusts, the host is the forwarded one: refused too, whatever the Host header says.
    assert [client.get(session.poll_url, headers=HTMX).status_code for _ in range(2)] == [204] * 2
    forwarded = client.get(session.poll_url, headers={**HTMX, "X-Forwarded-Host": "evil.example"})
    assert forwarded.status_code == 400
    assert client.get(session.poll_url, headers=HTMX).status_code == 204


def test_layer_answered_polls_are_logged_counted_and_carry_a_request_id_but_no_handle(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    session = widget.generate_qr()
    assert widget.poll(session).status_code == 204
    before = client.get("/metrics", headers=BEARER).text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="passid.access"):
        answers = [widget.poll(session) for _ in range(4)]
    assert len(flask_polls) == 1
    assert all(a.status_code == 204 and re.fullmatch(r"[0-9a-f]{32}", a.headers[REQUEST_ID]) for a in answers)
    lines = [r for r in caplog.records if r.name == "passid.access"]
    assert [r.getMessage().split(" ", 1)[1].rsplit(" ", 1)[0] for r in lines] == ['"GET /verify/qr/status" 204 0'] * 4
    assert [(r.route, r.request_id) for r in lines] == [  # type: ignore[attr-defined]
        ("/verify/qr/status", a.headers[REQUEST_ID]) for a in answers]
    handle = handle_of(session)
    assert handle not in caplog.text and session.request_id not in caplog.text

    after = client.get("/metrics", headers=BEARER).text
    route = {"route": "/verify/qr/status", "method": "GET", "status": "204"}
    assert value(after, "passid_http_requests_total", route) - value(before, "passid_http_requests_total", route) == 4
    pending = {"answered_by": "records", "state": "pending"}
    assert value(after, "passid_widget_polls_total", pending) - value(before, "passid_widget_polls_total", pending) == 4


def test_a_handle_this_process_never_answered_is_checked_and_answered_by_the_layer(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str]
) -> None:
    """A worker's first poll of a widget whose earlier polls reached other workers: its signature checked here."""
    first, second = widget.generate_qr(), widget.generate_qr()
    assert widget.poll(first).status_code == 204  # Flask answers for this host once
    flask_polls.clear()
    answer = client.get(second.poll_url, headers=HTMX)
    assert answer.status_code == 204
    assert flask_polls == []
    layer: pending_polls.PendingPolls = app.extensions[pending_polls.EXTENSION]
    assert layer._remembered[handle_of(second)].request_id == second.request_id


def test_polls_the_layer_leaves_to_flask(
    app: Flask, client: FlaskClient, widget: WidgetActions, flask_polls: list[str]
) -> None:
    """A plain reload (the QR page), a poll with a cookie, and a request at its expiry are Flask's, always."""
    session = widget.generate_qr()
    assert widget.poll(session).status_code == 204
    flask_polls.clear()
    reload = client.get(session.poll_url)
    assert reload.status_code == 200 and 'data-view="awaiting"' in reload.text
    client.set_cookie("session", "a-staff-members")
    assert client.get(session.poll_url, headers=HTMX).status_code == 204
    client.delete_cookie("session")
    assert len(flask_polls) == 2

    layer: pending_polls.PendingPolls = app.extensions[pending_polls.EXTENSION]
    handle = handle_of(session)
    with app.app_context():
        payload = signed_handles.unsign("request", handle)
        expired = {**payload, "x": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
        handle_at_expiry = signed_handles.sign("request", expired)
    layer._remember(handle_at_expiry, pending_polls.Remembered(  # as if Flask had found it pending just before
        session.request_id, datetime.fromisoformat(expired["x"]), datetime.fromisoformat(expired["x"]).timestamp()))
    flask_polls.clear()
    client.get(session.poll_url.replace(handle, handle_at_expiry), headers=HTMX)
    assert flask_polls == [handle_at_expiry]


def test_the_remembered_handles_are_bounded(app: Flask) -> None:
    layer = pending_polls.PendingPolls(app.wsgi_app, app, max_remembered=3)
    later = datetime.now(UTC) + timedelta(minutes=5)
    for n in range(5):
        layer._remember(f"handle-{n}", pending_polls.Remembered(f"req_{n}", later, later.timestamp()))
    assert list(layer._remembered) == ["handle-2", "handle-3", "handle-4"]
    soon = datetime.now(UTC) + timedelta(milliseconds=1)
    expiring = pending_polls.PendingPolls(app.wsgi_app, app)
    for n in range(2):
        expiring._remember(f"old-{n}", pending_polls.Remembered(f"req_{n}", soon, soon.timestamp()))
    wait_until(lambda: datetime.now(UTC) > soon, "the first two requests expired")
    expiring._remember("new", pending_polls.Remembered("req_new", later, later.timestamp()))
    assert list(expiring._remembered) == ["new"]  # expired entries go as new ones come
    expiring._remember("gone", pending_polls.Remembered("req_gone", soon, soon.timestamp()))
    assert list(expiring._remembered) == ["new"]  # and one found pending at its expiry is not kept
