"""The client's two hooks for the code that owns it (no Flask, nothing of the app): `observe` hears how each
endpoint call ended and how long it took, `extra_headers` adds headers to every call; and an error's message
names the endpoint's path without its ids, so a log line quoting it holds none."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from app.passid import PassidBusy, PassidClient, PassidError, PassidUnavailable
from app.passid.client import OUTCOMES, shown_path

from .conftest import API_KEY, FakePassid, Reply

SECRET_REQUEST = "req_0123456789secretRequest"
SECRET_TOKEN = "KE8V-3TXY-Z72L"


@pytest.fixture
def heard() -> list[tuple[str, str, float]]:
    return []


@pytest.fixture
def watched(fake: FakePassid, heard: list[tuple[str, str, float]]) -> PassidClient:
    return PassidClient(fake.url, API_KEY, timeout=(1.0, 0.5), observe=lambda *call: heard.append(call),
                        extra_headers=lambda: {"X-Request-Id": "rid-0123456789", "X-Institution-Key": "forged"})


def test_each_endpoint_call_is_observed_with_its_outcome_and_time(
    watched: PassidClient, fake: FakePassid, heard: list[tuple[str, str, float]]
) -> None:
    answers = [
        (Reply(body={"url": None, "secretSet": False}), "ok"),
        (Reply(status=404, body={"error": {"code": "NOT_FOUND", "message": "no"}}), "client_error"),
        (Reply(status=401, body={"error": {"code": "UNAUTHORIZED", "message": "no"}}), "unauthorized"),
        (Reply(status=429, body={"error": {"code": "RATE_LIMITED", "message": "later"}}), "rate_limited"),
        (Reply(status=503, body={"error": {"code": "DOWN", "message": "down"}}), "server_error"),
        (Reply(body={"url": 7}), "malformed"),
        (Reply(version="2"), "malformed"),
        (Reply(delay=3), "timeout"),
    ]
    for reply, _outcome in answers:
        fake.reply = reply
        with contextlib.suppress(PassidError):
            watched.get_webhook()
    assert [(endpoint, outcome) for endpoint, outcome, _seconds in heard] == [
        ("get_webhook", outcome) for _reply, outcome in answers]
    assert all(seconds >= 0 for _endpoint, _outcome, seconds in heard)
    assert heard[-1][2] >= 0.5  # the timeout's wait is in its time
    assert {outcome for _reply, outcome in answers} <= set(OUTCOMES)


def test_extra_headers_go_with_every_call_but_never_replace_the_key(
    watched: PassidClient, fake: FakePassid
) -> None:
    fake.reply = Reply(body={"url": None, "secretSet": False})
    watched.get_webhook()
    assert fake.last.headers["X-Request-Id"] == "rid-0123456789"
    assert fake.last.headers["X-Institution-Key"] == API_KEY


def test_a_call_not_sent_past_the_cap_is_observed_as_busy(fake: FakePassid) -> None:
    heard: list[tuple[str, str, float]] = []
    cap = threading.BoundedSemaphore(1)
    cap.acquire()
    client = PassidClient(fake.url, API_KEY, in_flight=cap, observe=lambda *call: heard.append(call))
    with pytest.raises(PassidBusy):
        client.get_request(SECRET_REQUEST)
    assert [(endpoint, outcome) for endpoint, outcome, _ in heard] == [("get_request", "busy")]
    assert fake.seen == []


def test_an_error_message_names_the_path_without_its_ids() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with PassidClient(f"http://127.0.0.1:{port}", API_KEY, timeout=1) as closed:
        for call in (lambda: closed.get_request(SECRET_REQUEST), lambda: closed.get_public_request(SECRET_REQUEST),
                     lambda: closed.revoke_share_token("user-jwt", SECRET_TOKEN)):
            with pytest.raises(PassidUnavailable) as failed:
                call()
            message = str(failed.value)
            assert SECRET_REQUEST not in message and SECRET_TOKEN not in message, message
            assert "{id}" in message  # what was called stays readable


def test_shown_path_masks_each_id_segment_and_nothing_else() -> None:
    assert shown_path(f"/api/bridge/request/{SECRET_REQUEST}/public") == "/api/bridge/request/{id}/public"
    assert shown_path("/api/bridge/request/code/AB3X-7YQM") == "/api/bridge/request/code/{id}"
    assert shown_path(f"/api/bridge/share/{SECRET_TOKEN}") == "/api/bridge/share/{id}"
    for plain in ("/api/bridge/request", "/api/bridge/verify", "/api/institution/webhook", "/api/bridge/share"):
        assert shown_path(plain) == plain
