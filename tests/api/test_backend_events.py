"""The bank's backend is told: each end of a session and each verification outside one, as a signed event.

In process, with the app's background passes running and a real receiver on loopback standing in for the
bank's backend (`PASSID_NOTIFY_URL`). Each event carries ids, the bank's reference, the status and the
verdict, never a claim or a token, and comes once however the end was reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.passid import verify_webhook_signature
from app.plumbing.background import start_background_jobs
from app.plumbing.database import db, utcnow
from app.plumbing.passid_connection import passid_connection
from app.rules import retention, session_events, sessions
from tests.support.html_fields import hidden
from tests.support.in_process import serving_in_process
from tests.support.servers import WebhookReceiver
from tests.support.waiting import wait_until

SECRET = "notify_secret_for_the_bank_0123"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as listening:
        yield listening


@pytest.fixture
def bank_app(fresh_database_url: str, tmp_path: Path, receiver: WebhookReceiver) -> Iterator[Flask]:
    with ExitStack() as stack:
        app = stack.enter_context(serving_in_process(
            fresh_database_url, tmp_path, PASSID_NOTIFY_URL=receiver.url, PASSID_NOTIFY_SECRET=SECRET,
            PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.3,0.3,0.3,0.3"))
        start_background_jobs(app)
        yield app


@pytest.fixture
def backend(bank_app: Flask) -> Callable[..., Any]:
    """The bank's backend calling our API with its key: `backend("POST", "/api/sessions", json=...)`."""
    with bank_app.app_context():
        key = passid_connection().api_key
    client = bank_app.test_client()

    def call(method: str, path: str, **kwargs: Any) -> Any:
        answer = client.open(path, method=method, headers={"X-Institution-Key": key}, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.get_json()
    return call


def events(receiver: WebhookReceiver, count: int) -> list[dict[str, Any]]:
    """The first `count` events the bank received, each checked against its signature."""
    received = receiver.wait_for(count)
    for delivery in received:
        verify_webhook_signature(delivery.body, delivery.headers["X-PASSID-Signature"], SECRET)
    return [json.loads(delivery.body) for delivery in received]


def hosted_path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def answer_on_hosted_page(client: FlaskClient, session: dict[str, Any], token: str) -> str:
    page = client.get(hosted_path(session["url"])).text
    return client.post("/verify/token/check", data={"o": hidden(page, "o"), "n": hidden(page, "n"),
                                                     "token": token}).text


def assert_nothing_personal(event: dict[str, Any]) -> None:
    text = json.dumps(event)
    for secret_of_the_person in ("claims", "token", "KE8V", "TEST-SANC", "HARD_DENY", "fsi_score", "tier"):
        assert secret_of_the_person not in text, text


@pytest.mark.databases("sqlite")
def test_a_completed_session_is_told_once_with_its_verdict(
    bank_app: Flask, backend: Callable[..., Any], receiver: WebhookReceiver
) -> None:
    session = backend("POST", "/api/sessions", json={"reference": "loan-7"})
    client = bank_app.test_client()
    answer_on_hosted_page(client, session, "TEST-EXPD-0001")  # a plain deny: the session stays open, no event
    answer_on_hosted_page(client, session, "KE8V-3TXY-Z72L")
    [event] = events(receiver, 1)
    assert event["type"] == "session.completed"
    result_id = backend("GET", f"/api/sessions/{session['id']}")["resultId"]
    assert event["data"] == {"sessionId": session["id"], "reference": "loan-7", "status": "completed",
                             "verdict": "approve", "resultId": result_id}
    assert_nothing_personal(event)
    with bank_app.app_context():
        assert session_events.announce_expired_sessions() == 0  # ended before its time: no "expired" later
    assert len(receiver.received) == 1


@pytest.mark.databases("sqlite")
def test_a_sanctions_match_tells_session_denied_and_a_retry_adds_nothing(
    bank_app: Flask, backend: Callable[..., Any], receiver: WebhookReceiver
) -> None:
    session = backend("POST", "/api/sessions", json={"reference": "loan-8"})
    client = bank_app.test_client()
    page = client.get(hosted_path(session["url"])).text
    fields = {"o": hidden(page, "o"), "n": hidden(page, "n")}
    client.post("/verify/token/check", data={**fields, "token": "TEST-SANC-0005"})
    client.post("/verify/token/check", data={**fields, "token": "KE8V-3TXY-Z72L"})  # the old tab, again
    [event] = events(receiver, 1)
    assert event["type"] == "session.denied"
    assert event["data"]["status"] == "denied" and event["data"]["verdict"] == "decline"
    assert_nothing_personal(event)


@pytest.mark.databases("sqlite")
def test_a_cancelled_session_is_told_and_an_expired_one_once(
    bank_app: Flask, backend: Callable[..., Any], receiver: WebhookReceiver
) -> None:
    cancelled = backend("POST", "/api/sessions", json={"reference": "loan-9"})
    backend("POST", f"/api/sessions/{cancelled['id']}/cancel")
    expiring = backend("POST", "/api/sessions", json={"reference": "loan-10"})
    with bank_app.app_context():
        row = sessions.find(expiring["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert session_events.announce_expired_sessions() == 1
        assert session_events.announce_expired_sessions() == 0  # told once
    first, second = events(receiver, 2)
    assert (first["type"], first["data"]["sessionId"], first["data"]["status"]) == (
        "session.cancelled", cancelled["id"], "cancelled")
    assert (second["type"], second["data"]["sessionId"], second["data"]["status"]) == (
        "session.expired", expiring["id"], "expired")


@pytest.mark.databases("sqlite")
def test_a_verification_outside_a_session_is_told_and_so_is_its_erasure(
    bank_app: Flask, receiver: WebhookReceiver
) -> None:
    client = bank_app.test_client()
    page = client.get("/verify").text
    client.post("/verify/token/check", data={"o": hidden(page, "o"), "n": hidden(page, "n"),
                                             "token": "GH2P-ABCD-56KL"})
    [recorded] = events(receiver, 1)
    assert recorded["type"] == "verification.recorded"
    assert recorded["data"]["verdict"] == "review" and recorded["data"]["channel"] == "manual"
    assert recorded["data"]["sessionId"] is None
    assert_nothing_personal(recorded)
    with bank_app.app_context():
        retention.redact(recorded["data"]["resultId"], "the customer asked", actor="test")
    wait_until(lambda: len(receiver.received) == 2, "the erasure was told", every=0.1)
    redacted = events(receiver, 2)[1]
    assert redacted["type"] == "verification.redacted"
    assert redacted["data"]["resultId"] == recorded["data"]["resultId"] and redacted["data"]["redactedAt"]
