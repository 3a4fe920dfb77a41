"""Webhook events and their delivery, as the contract's "Webhooks" section says.

An event becomes one `SandboxWebhookDelivery` row in the same transaction as
the change it reports (an outbox), so an event is never lost and never sent
for a change that rolled back. The delivery pass claims a row with one
conditional UPDATE on (attempts, lease) — the attempt number is part of the
claim, so two processes can never both send the same attempt — then checks the
URL's address again (app/sandbox/webhook_targets.py), sends it to that very address with a 10 s
timeout, and records the result and the next time to try.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from datetime import timedelta
from typing import Any

import urllib3
from flask import current_app
from requests import certs
from sqlalchemy import or_, update

from app.config import current_settings
from app.plumbing.background import wake_job
from app.plumbing.database import db, isoformat_z, rows_changed, utcnow
from app.sandbox.identifiers import new_id
from app.sandbox.models import SandboxInstitution, SandboxWebhookDelivery
from app.sandbox.webhook_targets import RefusedTarget, WebhookTarget, resolve_webhook_target

log = logging.getLogger(__name__)

DELIVERY_JOB = "sandbox-webhook-delivery"
BATCH = 20


def signature_for(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def enqueue_event(
    institution: SandboxInstitution, event_type: str, data: dict[str, Any], *, test: bool = False
) -> str:
    """Add the event's delivery to the session (the caller commits) and return its id.

    An institution with no webhook URL gets no delivery; the event id is still
    returned so callers need not care.
    """
    event_id = new_id("evt")
    if not institution.webhook_url or not institution.webhook_secret:
        return event_id
    envelope: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "createdAt": isoformat_z(utcnow()),
        "apiVersion": 1,
        "livemode": False,
        "data": data,
    }
    if test:
        envelope["test"] = True
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
    db.session.add(
        SandboxWebhookDelivery(
            event_id=event_id,
            institution_id=institution.id,
            event_type=event_type,
            url=institution.webhook_url,
            body=body,
            signature=signature_for(body, institution.webhook_secret),
            status="pending",
            attempts=0,
            next_attempt_at=utcnow(),
        )
    )
    return event_id


def commit_and_wake() -> None:
    """Commit, then let the delivery pass send any event this change produced now."""
    db.session.commit()
    wake_job(current_app._get_current_object(), DELIVERY_JOB)  # type: ignore[attr-defined]


def deliver_due() -> int:
    """One pass: send every delivery whose time has come. Returns attempts made."""
    now = utcnow()
    due = db.session.execute(
        db.select(SandboxWebhookDelivery.event_id, SandboxWebhookDelivery.attempts)
        .where(
            SandboxWebhookDelivery.status == "pending",
            SandboxWebhookDelivery.next_attempt_at <= now,
            or_(SandboxWebhookDelivery.lease_until.is_(None), SandboxWebhookDelivery.lease_until < now),
        )
        .order_by(SandboxWebhookDelivery.next_attempt_at)
        .limit(BATCH)
    ).all()
    db.session.rollback()
    made = 0
    for event_id, attempts in due:
        if _claim(event_id, attempts):
            _attempt(event_id)
            made += 1
    return made


def _claim(event_id: str, attempts: int) -> bool:
    now = utcnow()
    claimed = rows_changed(
        update(SandboxWebhookDelivery)
        .where(
            SandboxWebhookDelivery.event_id == event_id,
            SandboxWebhookDelivery.status == "pending",
            SandboxWebhookDelivery.attempts == attempts,
            or_(SandboxWebhookDelivery.lease_until.is_(None), SandboxWebhookDelivery.lease_until < now),
        )
        .values(lease_until=now + timedelta(seconds=current_settings().job_lease_seconds))
    )
    db.session.commit()
    return claimed == 1


def _attempt(event_id: str) -> None:
    delivery = db.session.get(SandboxWebhookDelivery, event_id)
    if delivery is None:
        return
    attempt_number = delivery.attempts + 1
    timeout = current_settings().webhook_timeout_seconds
    status_code: int | None = None
    error: str | None = None
    try:
        # Checked again now, not only at registration: the name may resolve elsewhere by now.
        target = resolve_webhook_target(delivery.url)
    except RefusedTarget as refused:
        _record_attempt(delivery, attempt_number, None, f"refused: {refused.short}")
        return
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PASSID-Sandbox-Webhooks/1",
        "X-PASSID-Signature": delivery.signature,
        "X-PASSID-Event-Id": delivery.event_id,
        "X-PASSID-Event-Type": delivery.event_type,
        "X-PASSID-Delivery-Attempt": str(attempt_number),
    }
    try:
        status_code = post_to_checked_address(target, delivery.body, headers, timeout)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    _record_attempt(delivery, attempt_number, status_code, error)


def post_to_checked_address(target: WebhookTarget, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to an address `target` was checked with (the first that takes a connection); the status.

    Why urllib3 rather than requests: requests would resolve the host again, and a name can answer
    differently the second time (DNS rebinding). The connection goes to the checked address; the
    Host header, TLS SNI and the certificate check still use the name from the URL. No redirects
    are followed, no proxy from the environment is used, and nothing is retried here (the
    delivery schedule retries).
    """
    for address in target.addresses[:-1]:
        try:
            return _post_to(address, target, body, headers, timeout)
        except urllib3.exceptions.NewConnectionError:
            continue  # e.g. ::1 first while the receiver listens on 127.0.0.1 only: next checked address
    return _post_to(target.addresses[-1], target, body, headers, timeout)


def _post_to(address: str, target: WebhookTarget, body: bytes, headers: dict[str, str], timeout: float) -> int:
    options: dict[str, Any] = {
        "port": target.port,
        "timeout": urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("REQUESTS_CA_BUNDLE") or certs.where(), **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, **options)
    try:
        answer = pool.urlopen(
            "POST", target.request_target, body=body, headers={**headers, "Host": target.host_header},
            redirect=False, assert_same_host=False, preload_content=False,
        )
        answer.close()  # the status is all we keep; the body is never read
        return answer.status
    finally:
        pool.close()


def _record_attempt(
    delivery: SandboxWebhookDelivery, attempt_number: int, status_code: int | None, error: str | None
) -> None:
    schedule = current_settings().webhook_retry_schedule
    delivery.attempts = attempt_number
    delivery.last_status_code = status_code
    delivery.last_error = error
    delivery.lease_until = None
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = "delivered"
        delivery.next_attempt_at = None
    elif attempt_number >= len(schedule):
        delivery.status = "failed"
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = utcnow() + timedelta(seconds=schedule[attempt_number])
    db.session.commit()
    log.info(
        "webhook %s attempt %d: %s", delivery.event_id, attempt_number, status_code or error
    )


def deliveries_for(institution: SandboxInstitution, limit: int = 100) -> list[dict[str, Any]]:
    rows = db.session.execute(
        db.select(SandboxWebhookDelivery)
        .filter_by(institution_id=institution.id)
        .order_by(SandboxWebhookDelivery.created_at.desc(), SandboxWebhookDelivery.event_id)
        .limit(limit)
    ).scalars()
    return [
        {
            "eventId": row.event_id,
            "type": row.event_type,
            "status": row.status,
            "attempts": row.attempts,
            "lastStatusCode": row.last_status_code,
            "nextAttemptAt": isoformat_z(row.next_attempt_at) if row.next_attempt_at else None,
        }
        for row in rows
    ]
