"""What the bank's backend is told when a verification is recorded, a session ends or is cancelled.

The events (`app.rules.notifications`) carry ids, the bank's reference, a status and the verdict, never a
claim or a token. Each has a key, so the same end of the same session is one event however many processes,
polls and webhooks record it:

- a verification outside any session: `verification.recorded`, once per verification;
- a session completed by its first success, or ended by a sanctions match: `session.completed` /
  `session.denied`, in the same transaction as the attempt that ended it;
- a session the bank cancelled: `session.cancelled` (`app.rules.sessions.cancel` enqueues it);
- a session whose time ran out before it ended: `session.expired`, found by a background pass
  (`announce_expired_sessions`), whatever its last attempt was (the `status` field says it);
- an erased verification: `verification.redacted` (`app.rules.retention`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import exists, literal, select

from app.plumbing.database import db, isoformat_z, utcnow
from app.rules import notifications, sessions, verifications
from app.rules.notifications import NotificationDelivery
from app.rules.sessions import SessionStatus, VerificationSession
from app.rules.verifications import Verification

EXPIRY_JOB = "session-expiry-events"
EXPIRY_EVERY_SECONDS = 30.0
# How far back the pass looks for sessions that ran out: a server down for longer than this does not tell the
# bank of the ones that expired meanwhile (their status still reads "expired" in the API).
EXPIRY_LOOKBACK = timedelta(days=2)
_ENDED = {SessionStatus.COMPLETED: "session.completed", SessionStatus.DENIED: "session.denied"}


def verification_data(row: Verification) -> dict[str, Any]:
    decision = verifications.verdict_of(row)
    return {"resultId": row.id, "channel": row.source, "status": row.status,
            "verdict": decision.verdict if decision else None, "reference": row.reference,
            "sessionId": row.session_id}


@verifications.when_recorded
def announce_recorded(row: Verification) -> None:
    """In the transaction that records `row`: the event it makes, if any."""
    if not notifications.configured():
        return
    if row.session_id is None:
        notifications.enqueue("verification.recorded", verification_data(row), key=f"verification.recorded:{row.id}")
        return
    session = sessions.find(row.session_id)
    if session is None:
        return
    state = sessions.state_of(session)
    event = _ENDED.get(state.status)
    # Only an end: a first success, or a sanctions match (a plain deny leaves the session open to a retry).
    if event is not None and state.closed and state.result is not None and state.result.id == row.id:
        notifications.enqueue(event, sessions.event_data(session, state), key=f"{event}:{session.id}")


def announce_expired_sessions() -> int:
    """The background pass: every session that ran out lately, without an end the bank was told of, gets its
    `session.expired` once. Returns how many were queued."""
    if not notifications.configured():
        return 0
    now = utcnow()
    told = exists().where(NotificationDelivery.event_key.in_([
        literal("session.completed:") + VerificationSession.id,
        literal("session.denied:") + VerificationSession.id,
        literal("session.cancelled:") + VerificationSession.id,
        literal("session.expired:") + VerificationSession.id,
    ]))
    candidates = db.session.execute(
        select(VerificationSession).where(
            VerificationSession.expires_at <= now, VerificationSession.expires_at > now - EXPIRY_LOOKBACK,
            VerificationSession.redacted_at.is_(None), VerificationSession.cancelled_at.is_(None), ~told,
        ).limit(500)
    ).scalars().all()
    queued = 0
    for session in candidates:
        state = sessions.state_of(session, now)
        if state.status in _ENDED:  # it ended before its time; that end was announced (or will be)
            continue
        notifications.enqueue("session.expired", {**sessions.event_data(session, state), "expiredAt":
                                                  isoformat_z(session.expires_at)},
                              key=f"session.expired:{session.id}")
        queued += 1
    db.session.commit()
    if queued:
        notifications.wake()
    return queued
