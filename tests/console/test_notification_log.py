"""The console's notification log, beside the webhook log: what we sent the bank's backend, and "Send test event".

Analysts read the log; only admins send a test event (as only they send a test webhook), and each one
is in the audit log. The form carries a CSRF token like every staff form.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.plumbing.database import db
from app.rules import audit
from app.rules.notifications import NotificationDelivery
from tests.console.conftest import add_staff, signed_in
from tests.support.html_fields import hidden
from tests.support.servers import WebhookReceiver
from tests.support.waiting import wait_until

SECRET = "console_notify_secret_0123456789"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


@pytest.fixture
def notifying_app(build_app: Callable[..., Flask], receiver: WebhookReceiver) -> Flask:
    return build_app(PASSID_NOTIFY_URL=receiver.url, PASSID_NOTIFY_SECRET=SECRET)


def browser(app: Flask, role: str) -> FlaskClient:
    return signed_in(app.test_client(), add_staff(app.test_cli_runner(), role=role))


def audit_entries(app: Flask) -> list[audit.AuditEntry]:
    with app.app_context():
        found = list(db.session.execute(db.select(audit.AuditEntry).where(
            audit.AuditEntry.action == audit.Action.TEST_NOTIFICATION_SENT)).scalars())
        db.session.expunge_all()
        return found


def delivery_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(db.select(db.func.count()).select_from(NotificationDelivery)) or 0)


def test_an_admin_sends_a_test_event_that_is_recorded_delivered_and_listed(
    notifying_app: Flask, receiver: WebhookReceiver
) -> None:
    admin = browser(notifying_app, "admin")
    page = admin.get("/console/notifications")
    assert page.status_code == 200 and "Send test event" in page.text and receiver.url in page.text
    sent = admin.post("/console/notifications/test", data={"csrf_token": hidden(page.text, "csrf_token")})
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/console/notifications")
    [entry] = audit_entries(notifying_app)
    assert entry.actor_role == "admin" and entry.subject and entry.subject.startswith("evt_")
    [delivery] = receiver.wait_for(1)
    event = json.loads(delivery.body)
    assert (event["id"], event["type"], event["test"]) == (entry.subject, "notification.test", True)
    wait_until(lambda: 'data-status="delivered"' in admin.get("/console/notifications").text,
               "the test event listed as delivered")
    listed = admin.get("/console/notifications").text
    assert entry.subject in listed and "notification.test" in listed and "console-badge" in listed


def test_analysts_read_the_log_without_the_button(notifying_app: Flask) -> None:
    analyst = browser(notifying_app, "analyst")
    page = analyst.get("/console/notifications")
    assert page.status_code == 200 and "Send test event" not in page.text
    assert 'href="/console/notifications"' in analyst.get("/console/webhooks").text  # beside the webhook log


def test_a_test_event_without_the_csrf_token_is_refused_and_sends_nothing(
    notifying_app: Flask, receiver: WebhookReceiver
) -> None:
    admin = browser(notifying_app, "admin")
    assert admin.post("/console/notifications/test").status_code == 400
    assert delivery_count(notifying_app) == 0 and audit_entries(notifying_app) == []
    assert receiver.received == []


def test_without_a_notify_url_the_page_says_so_and_nothing_is_sent(app: Flask) -> None:
    admin = browser(app, "admin")
    page = admin.get("/console/notifications").text
    assert 'id="notify-off"' in page and "Send test event" not in page
    answer = admin.post("/console/notifications/test", data={"csrf_token": hidden(page, "csrf_token")},
                        follow_redirects=True)
    assert "Notifications are off" in answer.text
    assert delivery_count(app) == 0 and audit_entries(app) == []
