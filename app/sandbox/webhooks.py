"""Webhook events and their delivery, as the contract's "Webhooks" section says.

An event becomes one `SandboxWebhookDelivery` row in the same transaction as
the change it reports (an outbox), so an event is never lost and never sent
for a change that rolled back. The delivery pass is the app's one engine
(app/plumbing/outbound_delivery.py): a claim by one conditional UPDATE on
(attempts, lease), so two processes never send the same attempt; the URL's
address checked again (app/sandbox/webhook_targets.py: public or loopback)
and pinned; a 10 s timeout; the contract's retry schedule.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from app.config import current_settings
from app.plumbing.database import db, isoformat_z
from app.plumbing.outbound_delivery import DeliveryEngine, envelope_body
from app.sandbox.identifiers import new_id
from app.sandbox.models import SandboxInstitution, SandboxWebhookDelivery
from app.sandbox.webhook_targets import SANDBOX_POLICY

DELIVERY_JOB = "sandbox-webhook-delivery"

ENGINE = DeliveryEngine(
    model=SandboxWebhookDelivery,
    job_name=DELIVERY_JOB,
    user_agent="PASSID-Sandbox-Webhooks/1",
    schedule=lambda: current_settings().webhook_retry_schedule,
    timeout=lambda: current_settings().webhook_timeout_seconds,
    policy=lambda: SANDBOX_POLICY,
    log_label="webhook",
)


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
    body = envelope_body(event_id, event_type, data, livemode=False, test=test)
    ENGINE.add(
        event_id=event_id,
        institution_id=institution.id,
        event_type=event_type,
        url=institution.webhook_url,
        body=body,
        signature=signature_for(body, institution.webhook_secret),
    )
    return event_id


def commit_and_wake() -> None:
    """Commit, then let the delivery pass send any event this change produced now."""
    db.session.commit()
    ENGINE.wake()


def deliver_due() -> int:
    """One pass: send every delivery whose time has come. Returns attempts made."""
    return ENGINE.deliver_due()


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
