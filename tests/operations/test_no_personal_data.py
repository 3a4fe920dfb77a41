"""No id, token, reference, claim, handle or key in a metric label or a log line, after a whole journey.

One scripted journey through every part the metrics watch, in process, with JSON logs captured: the
bank's backend opens a session with its reference, the customer scans the QR and approves on the phone
(PASSID's webhook arrives and is handled), types a sanctioned token and then a good one at the widget,
the bank reads the results and is notified, and a stranger posts an unsigned webhook. Then every log
line and the whole of `/metrics` are searched for each value of the person's and the bank's that the
journey met. The same run shows every part counted: a metric that stayed empty here would be one no
dashboard could trust.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.passid import PassidClient
from app.plumbing.background import start_background_jobs
from app.plumbing.passid_connection import passid_connection
from tests.support.captured_logs import CapturedLogs, json_logs_captured
from tests.support.html_fields import hidden
from tests.support.scraping import BEARER, METRICS_TOKEN, samples, value
from tests.support.servers import WebhookReceiver
from tests.support.waiting import wait_until
from tests.support.widget_http import HTMX, awaiting_session

pytestmark = pytest.mark.databases("sqlite")

REFERENCE = "loan-OPS-7731-Q"
NOTIFY_SECRET = "notify_secret_for_the_ops_test_01"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as listening:
        yield listening


@pytest.fixture
def app_settings(receiver: WebhookReceiver) -> dict[str, str]:
    return {"PASSID_LOG_FORMAT": "json", "PASSID_METRICS_TOKEN": METRICS_TOKEN, "PASSID_NOTIFY_URL": receiver.url,
            "PASSID_NOTIFY_SECRET": NOTIFY_SECRET, "PASSID_WEBHOOK_RETRY_SCHEDULE": "0,0.3,0.3,0.3,0.3"}


@pytest.fixture
def logs(app: Flask) -> Iterator[CapturedLogs]:
    with json_logs_captured() as captured:
        start_background_jobs(app)
        yield captured


def test_a_whole_journey_leaves_no_personal_data_in_labels_or_log_lines(
    app: Flask, client: FlaskClient, logs: CapturedLogs, receiver: WebhookReceiver
) -> None:
    with app.app_context():
        key = passid_connection().api_key
    bank = {"X-Institution-Key": key}
    secrets: set[str] = {key, REFERENCE, METRICS_TOKEN, NOTIFY_SECRET}

    # The bank's backend opens a session; the customer scans its QR and approves on the phone.
    session = client.post("/api/sessions", json={"reference": REFERENCE}, headers=bank).get_json()
    page = client.get("/" + session["url"].split("://", 1)[1].split("/", 1)[1]).text
    options = hidden(page, "o")
    awaiting = client.post("/verify/qr/session", data={"o": options}, headers=HTMX)
    qr = awaiting_session(awaiting.text, "", awaiting.status_code)
    handle = re.search(r"[?&]h=([^&]+)", qr.poll_url)
    assert handle is not None
    secrets |= {session["id"], options, handle.group(1), qr.request_id, qr.code, qr.code.replace("-", "")}
    assert client.get(qr.poll_url, headers=HTMX).status_code == 204
    phone = PassidClient(app.config["PASSID_BASE_URL"])
    user = phone.sandbox_login("KE8V-3TXY-Z72L")
    secrets.add(user)
    phone.fulfill_request(qr.request_id, user)
    wait_until(lambda: client.get(qr.poll_url, headers=HTMX).status_code != 204, "the QR poll saw the approval")

    # At the widget: a sanctioned token, then a good one typed the way people type.
    page = client.get("/verify").text
    for typed in ("TEST-SANC-0005", "passid-ng4m xqrs t88w"):
        answer = client.post("/verify/token/check", data={"o": hidden(page, "o"), "n": hidden(page, "n"),
                                                          "token": typed})
        assert answer.status_code == 200
        page = answer.text if 'name="n"' in answer.text else client.get("/verify").text
    secrets |= {"TEST-SANC-0005", "NG4M-XQRS-T88W", "NG4MXQRST88W", "HARD_DENY_SANCTIONS_MATCH"}

    # The bank reads what happened, by id.
    read = client.get(f"/api/sessions/{session['id']}", headers=bank).get_json()
    result = client.get(f"/api/results/{read['resultId']}", headers=bank).get_json()
    secrets |= {read["resultId"], result["token"], result["claims"]["income_band"], result["corridor"]}

    # A stranger posts an unsigned webhook.
    assert client.post("/webhooks/passid", data=b"{}", headers={"X-PASSID-Event-Id": "evt_from_a_stranger"},
                       content_type="application/json").status_code == 401

    def scrape() -> str:
        return client.get("/metrics", headers=BEARER).text

    wait_until(lambda: value(scrape(), "passid_webhook_handling_lag_seconds_count", {"result": "handled"}) >= 1,
               "PASSID's webhook about the QR approval was handled", every=0.1)
    wait_until(lambda: len(receiver.received) >= 2, "the bank was notified", every=0.1)
    wait_until(lambda: value(scrape(), "passid_notification_attempts_total", {"result": "delivered"}) >= 2,
               "the notifications were counted", every=0.1)
    exposition = scrape()

    # Every part of the journey was counted.
    for name, labels in [
        ("passid_http_requests_total", {"route": "/api/sessions/<session_id>", "status": "200"}),
        ("passid_http_requests_total", {"route": "/verify/qr/status", "status": "204"}),
        ("passid_widget_polls_total", {"state": "final"}),
        ("passid_widget_polls_total", {"state": "pending"}),
        ("passid_upstream_calls_total", {"endpoint": "create_request", "outcome": "ok"}),
        ("passid_upstream_calls_total", {"endpoint": "verify", "outcome": "ok"}),
        ("passid_upstream_call_duration_seconds_count", {"endpoint": "verify"}),
        ("passid_webhook_receipts_total", {"result": "accepted"}),
        ("passid_webhook_receipts_total", {"result": "invalid_signature"}),
        ("passid_webhook_handling_lag_seconds_count", {"result": "handled"}),
        ("passid_notification_attempts_total", {"result": "delivered"}),
        ("passid_verifications_recorded_total", {"channel": "qr", "status": "completed"}),
        ("passid_verifications_recorded_total", {"channel": "manual", "status": "denied", "verdict": "decline"}),
        ("passid_background_job_runs_total", {"task": "webhook-handling", "result": "ok"}),
        ("passid_db_pool_max_connections", {}),
    ]:
        assert value(exposition, name, labels) >= 1, (name, labels)

    # Nothing of theirs in a label or a line.
    label_values = {label for sample in samples(exposition) for label in sample.labels.values()}
    lines = logs.text
    assert len(logs.records()) > 20  # every line is one JSON object
    for secret in sorted(secrets):
        assert secret not in label_values, secret
        assert secret.lower() not in exposition.lower(), secret
        assert secret.lower() not in lines.lower(), (secret, [line for line in lines.splitlines()
                                                              if secret.lower() in line.lower()][:3])
    assert not re.search(r"h=[A-Za-z0-9_.-]{8}", lines)  # no handle, and no query string at all
    assert "?" not in "".join(str(record.get("path", "")) for record in logs.records())
