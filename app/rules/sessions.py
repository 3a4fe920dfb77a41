"""The session rows, and what a session's verifications add up to (its status).

A session's status is read from the verifications made for it, never stored, so it cannot
disagree with them: a sanctions match ends it as denied, whatever came before or after (no later
retry can hide it); otherwise the first success completes it; a session the institution cancelled
before any success is cancelled; until then the latest denied or declined attempt names it (the
customer may still retry until it expires); with no such attempt it is open, or expired once its
time is up. Every attempt stays on record and the backend API lists them all.

Each QR request the widget creates inside a session is remembered too (`SessionRequest`), so that
the webhook that finishes it records the verification for the session even when the customer
closed the tab before the widget's next poll (no widget, no signed options, no Flask request).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app.passid import DenyReason
from app.plumbing.database import Model, db, isoformat_z, rows_changed, utcnow
from app.plumbing.encryption import EncryptedText
from app.rules import notifications
from app.rules.verifications import FinalStatus, Verification, redacted_document, result_document, verdict_of


class SessionStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    DENIED = "denied"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class VerificationSession(Model):
    __tablename__ = "verification_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), index=True)
    institution_name: Mapped[str] = mapped_column(String(80))
    # Encrypted at rest (app/plumbing/encryption.py): permission names are claim names ("identity_verified").
    permissions_json: Mapped[str] = mapped_column(EncryptedText)
    return_url: Mapped[str | None] = mapped_column(String(2048))
    # The language its page speaks, whatever the browser says (app.plumbing.i18n); None: the usual choice.
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # Erased with every record of its reference (`app.rules.retention.redact_reference`): it takes no more
    # attempts, and the backend API answers only that it was erased, and when.
    redacted_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Cancelled by the institution (`cancel`): no attempt completes it afterwards.
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def permissions(self) -> tuple[str, ...]:
        return tuple(json.loads(self.permissions_json))

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires_at


class SessionRequest(Model):
    """A PASSID request made inside a session: the webhook's only way from a request id to the session."""

    __tablename__ = "session_request"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


@dataclass(frozen=True)
class SessionState:
    """A session's status, the verification that decided it (if any), and whether it takes no more attempts."""

    status: SessionStatus
    result: Verification | None
    closed: bool


# The institution's reference for an applicant, on a session (`POST /api/sessions`) or typed at the branch counter.
REFERENCE_MAX_LENGTH = 64


def is_usable_reference(value: str) -> bool:
    """1 to 64 printable characters: what a session's reference and a counter's typed one both must be."""
    return 1 <= len(value) <= REFERENCE_MAX_LENGTH and value.isprintable()


def new_session_id() -> str:
    # Unguessable: whoever holds the id may verify in this session, so it is a capability like a handle.
    return f"vs_{secrets.token_urlsafe(24)}"


def create(*, reference: str, institution_name: str, permissions: tuple[str, ...], return_url: str | None,
           ttl_seconds: int, locale: str | None = None) -> VerificationSession:
    now = utcnow()
    row = VerificationSession(
        id=new_session_id(),
        reference=reference,
        institution_name=institution_name,
        permissions_json=json.dumps(list(permissions)),
        return_url=return_url,
        locale=locale,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    db.session.add(row)
    db.session.commit()
    return row


def find(session_id: str | None) -> VerificationSession | None:
    """The session with this id, or None, also for an id no row can have: it comes from a path or a query,
    and PostgreSQL refuses a NUL in any text it is asked to compare (a 500, not a 404)."""
    if not session_id or len(session_id) > 64 or "\x00" in session_id:
        return None
    return db.session.get(VerificationSession, session_id)


def recorded_for(session: VerificationSession | None) -> dict[str, Any]:
    """What a verification made for `session` records about it (nothing outside one): `record`'s keywords."""
    return {"session_id": session.id, "reference": session.reference} if session else {}


def note_request(request_id: str, session: VerificationSession) -> None:
    """Remember that `request_id` was created for `session`, before the customer can approve it."""
    db.session.add(SessionRequest(request_id=request_id, session_id=session.id, created_at=utcnow()))
    db.session.commit()


def session_of_request(request_id: str) -> VerificationSession | None:
    """The session a QR request was created for, or None (a plain widget's request, or one made elsewhere)."""
    noted = db.session.get(SessionRequest, request_id)
    return find(noted.session_id) if noted else None


def attempts_of(session: VerificationSession) -> list[Verification]:
    """Every verification made for the session, oldest first."""
    return list(db.session.execute(
        select(Verification).where(Verification.session_id == session.id)
        .order_by(Verification.created_at, Verification.id)
    ).scalars().all())


def is_sanctions_match(attempt: Verification) -> bool:
    return attempt.status == FinalStatus.DENIED and attempt.deny_reason == DenyReason.HARD_DENY_SANCTIONS_MATCH


def state_of(session: VerificationSession, now: datetime | None = None,
             attempts: list[Verification] | None = None) -> SessionState:
    if session.redacted_at is not None:  # erased: closed, and nothing of its attempts is shown
        return SessionState(SessionStatus.EXPIRED, None, closed=True)
    if attempts is None:
        attempts = attempts_of(session)
    for attempt in attempts:
        if is_sanctions_match(attempt):  # ends the session, before or after any success
            return SessionState(SessionStatus.DENIED, attempt, closed=True)
    for attempt in attempts:
        if attempt.status == FinalStatus.COMPLETED and (
                session.cancelled_at is None or attempt.created_at <= session.cancelled_at):
            return SessionState(SessionStatus.COMPLETED, attempt, closed=True)
    if session.cancelled_at is not None:
        return SessionState(SessionStatus.CANCELLED, None, closed=True)
    expired = session.expired(now)
    for attempt in reversed(attempts):
        if attempt.status in (FinalStatus.DENIED, FinalStatus.DECLINED):
            return SessionState(SessionStatus(attempt.status), attempt, closed=expired)
    # Only QR codes that ran out, or nothing yet: the session itself is open or over.
    return SessionState(SessionStatus.EXPIRED if expired else SessionStatus.OPEN, None, closed=expired)


class SessionClosed(Exception):
    """The session takes no more changes (completed, denied, cancelled, expired or erased)."""

    def __init__(self, state: SessionState) -> None:
        super().__init__(state.status.value)
        self.state = state


def cancel(session: VerificationSession) -> SessionState:
    """End an open session as cancelled; SessionClosed when it is over already.

    A conditional UPDATE: of two cancels, or a cancel racing the purge, one changes the row. A success
    recorded after the cancel does not complete it (`state_of` reads only successes from before).
    """
    state = state_of(session)
    if state.closed:
        raise SessionClosed(state)
    now = utcnow()
    changed = rows_changed(
        update(VerificationSession).where(VerificationSession.id == session.id,
                                          VerificationSession.cancelled_at.is_(None),
                                          VerificationSession.redacted_at.is_(None))
        .values(cancelled_at=now)
    )
    db.session.refresh(session)
    state = state_of(session)
    if changed:  # told in the cancel's own transaction: one event, and none for a cancel that did not happen
        notifications.enqueue("session.cancelled", event_data(session, state), key=f"session.cancelled:{session.id}")
    db.session.commit()
    if not changed and state.status != SessionStatus.CANCELLED:
        raise SessionClosed(state)
    if changed and notifications.configured():
        notifications.wake()
    return state


def event_data(session: VerificationSession, state: SessionState) -> dict[str, Any]:
    """What an event for the bank's backend says of a session: ids, its reference, status and verdict."""
    decision = verdict_of(state.result) if state.result is not None else None
    return {"sessionId": session.id, "reference": session.reference, "status": state.status.value,
            "verdict": decision.verdict if decision else None,
            "resultId": state.result.id if state.result is not None else None}


REFERENCE_LIST_LIMIT = 100


def with_reference(reference: str) -> list[VerificationSession]:
    """The sessions created under the institution's reference, newest first (at most REFERENCE_LIST_LIMIT)."""
    if not reference or len(reference) > REFERENCE_MAX_LENGTH or "\x00" in reference:
        return []
    return list(db.session.execute(
        select(VerificationSession).where(VerificationSession.reference == reference)
        .order_by(VerificationSession.created_at.desc(), VerificationSession.id.desc())
        .limit(REFERENCE_LIST_LIMIT)
    ).scalars().all())


def attempt_document(attempt: Verification) -> dict[str, Any]:
    """One attempt as the bank's backend reads it: when, through what, how it ended, and the verdict."""
    if attempt.redacted_at is not None:
        return redacted_document(attempt.id, attempt.redacted_at)
    decision = verdict_of(attempt)
    return {
        "resultId": attempt.id,
        "channel": attempt.source,
        "status": attempt.status,
        "denyReason": attempt.deny_reason,
        "verdict": decision.verdict if decision else None,
        "createdAt": isoformat_z(attempt.created_at),
    }


def session_document(session: VerificationSession, state: SessionState,
                     attempts: list[Verification] | None = None) -> dict[str, object]:
    """The institution backend's view of a session (`GET /api/sessions/<id>`).

    Once the session or the verification that decided it is erased (`app.rules.retention`), only that: the session's own
    id, and when. Its status and reference would say what became of the person, so they go too.
    """
    if session.redacted_at is not None:
        return redacted_document(session.id, session.redacted_at)
    if state.result is not None and state.result.redacted_at is not None:
        return redacted_document(session.id, state.result.redacted_at)
    decision = verdict_of(state.result) if state.result else None
    return {
        "id": session.id,
        "reference": session.reference,
        "locale": session.locale,
        "status": state.status.value,
        "verdict": decision.verdict if decision else None,
        "verdictReasons": list(decision.reasons) if decision else [],
        "resultId": state.result.id if state.result else None,
        "result": result_document(state.result) if state.result else None,
        "attempts": [attempt_document(attempt) for attempt in (attempts if attempts is not None
                                                               else attempts_of(session))],
        "createdAt": isoformat_z(session.created_at),
        "expiresAt": isoformat_z(session.expires_at),
        "cancelledAt": isoformat_z(session.cancelled_at) if session.cancelled_at else None,
    }
