"""Signed events to the bank's backend when a session or verification ends (PASSID_NOTIFY_URL).

The wire is PASSID's own (envelope, `X-PASSID-*` headers, HMAC-SHA256 of the raw body, retry
schedule), so a bank reuses the receiver it wrote for PASSID's webhooks; the delivery is the app's
one engine (app/plumbing/outbound_delivery.py) over a table of our own, `notification_delivery`:
an outbox row per event in the caller's transaction, durable across restarts, one claim per
attempt so two processes never send the same one.

What an event carries is ids, the bank's reference, status and verdict: never claims or tokens.
The bank's backend reads those from our API with its key, so a notification that goes astray (a
wrong URL, a leaked log) tells nobody anything about a person.

Each event has a key (`enqueue(..., key=...)`) that is unique in the table: the same end of the
same session reported twice (a retried request, two processes) is one event, sent once.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import urllib3
from sqlalchemy import Boolean, Index, String, UniqueConstraint, delete
from sqlalchemy.orm import Mapped, mapped_column

from app.config import current_settings
from app.passid.signing import sign_payload
from app.plumbing.database import Model, db, rows_changed
from app.plumbing.metrics import metrics
from app.plumbing.outbound_delivery import (
    DELIVERED,
    FAILED,
    DeliveryColumns,
    DeliveryEngine,
    envelope_body,
    request_checked_address,
)
from app.plumbing.outbound_targets import RefusedTarget, TargetPolicy, resolve_target

NOTIFY_JOB = "notification-delivery"
TEST_EVENT_TYPE = "notification.test"
# The events the app sends; `enqueue` refuses any other type (a typo would reach a bank as a new event).
EVENT_TYPES = (
    "session.completed",
    "session.denied",
    "session.expired",
    "session.cancelled",
    "verification.recorded",  # a verification outside any session
    "verification.redacted",
    TEST_EVENT_TYPE,
)
# Never in an event, at any depth: the backend reads these from the API with its key.
_NEVER_SENT = frozenset({"claims", "claim", "token", "tokens", "deny_reason", "denyReason"})


class NotificationDelivery(DeliveryColumns, Model):
    """One event to the bank's notification URL; the delivery columns are the engine's."""

    __tablename__ = "notification_delivery"
    __table_args__ = (
        UniqueConstraint("event_key", name="uq_notification_delivery_event_key"),
        Index("ix_notification_delivery_due", "status", "next_attempt_at"),
        Index("ix_notification_delivery_created_at", "created_at"),
    )

    # What the event is about and which end of it ("session.completed:ses_…"): one event per key, ever.
    event_key: Mapped[str] = mapped_column(String(200))
    test: Mapped[bool] = mapped_column(Boolean, default=False)


def _policy() -> TargetPolicy:
    """The notification URL's rules, read at each attempt: loopback with the embedded sandbox, a developer's
    private receiver only with PASSID_NOTIFY_ALLOW_PRIVATE_TARGETS, https only otherwise."""
    settings = current_settings()
    return TargetPolicy.for_notifications(
        embedded_sandbox=settings.embedded_sandbox,
        development=settings.notify_allow_private_targets,
    )


def _count_attempt(result: str) -> None:
    """`passid_notification_attempts_total{result}`: delivered, retrying or failed (given up)."""
    watched = metrics()
    if watched is not None:
        watched.notifications.labels(result).inc()


ENGINE = DeliveryEngine(
    model=NotificationDelivery,
    job_name=NOTIFY_JOB,
    user_agent="PASSID-Verify-Notifications/1",
    # The same schedule and timeout as PASSID's webhooks (and the same settings): a bank's receiver sees
    # one behaviour from both.
    schedule=lambda: current_settings().webhook_retry_schedule,
    timeout=lambda: current_settings().webhook_timeout_seconds,
    policy=_policy,
    log_label="notification",
    on_attempt=_count_attempt,
)


def configured() -> bool:
    """True when PASSID_NOTIFY_URL is set (its secret is then set too: the configuration checks that)."""
    return bool(current_settings().notify_url)


def _livemode() -> bool:
    """As PASSID's `livemode`: false with the embedded sandbox or a sandbox key, true with a live key."""
    settings = current_settings()
    return not settings.embedded_sandbox and (settings.passid_api_key or "").startswith("sk_live_")


def _new_event_id() -> str:
    """Like PASSID's: `evt_` and 128 random bits, URL-safe without `-` or `_`."""
    return "evt_" + secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


def _check_nothing_personal(data: object, where: str = "data") -> None:
    """A programming error, caught before the event is stored: claims and tokens never leave by notification."""
    if isinstance(data, dict):
        for name, value in data.items():
            if name in _NEVER_SENT:
                raise ValueError(f"a notification never carries {where}.{name}: the backend reads it from the API")
            _check_nothing_personal(value, f"{where}.{name}")
    elif isinstance(data, list | tuple):
        for item in data:
            _check_nothing_personal(item, where)


def enqueue(event_type: str, data: dict[str, Any], *, key: str) -> str | None:
    """Add the event's delivery to the caller's transaction (the caller commits, then calls `wake()`).

    Returns the event id, or None when no PASSID_NOTIFY_URL is set (nothing is stored). A key already
    in the table adds nothing and returns that event's id: it never raises, so the caller's own work
    in the same transaction stands.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown notification type {event_type!r}")
    if not 1 <= len(key) <= 200:
        raise ValueError("a notification key is 1 to 200 characters")
    _check_nothing_personal(data)
    return _add(event_type, data, key=key, test=False)


def _add(event_type: str, data: dict[str, Any], *, key: str, test: bool) -> str | None:
    settings = current_settings()
    url = settings.notify_url
    if not url:
        return None
    event_id = _new_event_id()
    body = envelope_body(event_id, event_type, data, livemode=_livemode(), test=test)
    # Signed once, with the newest secret: every attempt sends the same bytes and signature.
    newest_secret = settings.notify_secrets[0]
    return ENGINE.add_once(
        "event_key", event_id=event_id, event_key=key, event_type=event_type, url=url, body=body,
        signature=sign_payload(body, newest_secret), test=test,
    )


def wake() -> None:
    """After the commit that enqueued events: send them now rather than at the pass's next tick."""
    ENGINE.wake()


def deliver_due() -> int:
    """The background pass (registered as NOTIFY_JOB when PASSID_NOTIFY_URL is set)."""
    return ENGINE.deliver_due()


def send_test_event() -> str | None:
    """Queue a `notification.test` event (`"test": true`), commit and send it; its event id, or None when
    no PASSID_NOTIFY_URL is set. For the console's "Send test event" button."""
    event_id = _add(TEST_EVENT_TYPE, {}, key=f"test:{_new_event_id()}", test=True)
    if event_id is None:
        return None
    db.session.commit()
    wake()
    return event_id


def forget_settled(created_before: datetime) -> int:
    """Delete the delivered and failed notifications made before `created_before`; how many (the caller commits).

    For the retention purge: a settled row is only a log line by then, and its body names the bank's
    reference. Pending ones stay, whatever their age, until they are delivered or fail.
    """
    return rows_changed(delete(NotificationDelivery).where(
        NotificationDelivery.status.in_((DELIVERED, FAILED)), NotificationDelivery.created_at < created_before))


def notify_url_answers() -> bool | None:
    """Whether PASSID_NOTIFY_URL answers HTTP now (for the go-live checklist); None when it is not set.

    One HEAD request, to the checked address, under the same rules and timeout as a delivery, carrying
    nothing: any answer but 404, 410 or a server error counts (a receiver that takes only POST answers
    405, or 501 for a method it does not implement, which still shows the host, port, TLS and path are
    right). A refused address, a refused connection or no answer in time is False. Whether the receiver
    accepts our signature is what "Send test event" shows.
    """
    url = current_settings().notify_url
    if not url:
        return None
    try:
        target = resolve_target(url, _policy())
    except RefusedTarget:
        return False
    timeout = current_settings().webhook_timeout_seconds
    try:
        status = request_checked_address(target, "HEAD", None, {"User-Agent": ENGINE.user_agent}, timeout)
    except (urllib3.exceptions.HTTPError, OSError):
        return False
    return status not in (404, 410) and (status < 500 or status == 501)

