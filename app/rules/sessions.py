"""The session rows, and what a session's verifications add up to (its status).

A session's status is read from the verifications made for it, never stored, so it cannot
disagree with them: the first success completes it; until then the latest denied or declined
attempt names it (the customer may still retry until it expires); with no such attempt it is
open, or expired once its time is up.

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

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from app.plumbing.database import Model, db, isoformat_z, utcnow
from app.plumbing.encryption import EncryptedText
from app.rules.verifications import FinalStatus, Verification, redacted_document, result_document


class SessionStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    DENIED = "denied"
    DECLINED = "declined"
    EXPIRED = "expired"


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


def state_of(session: VerificationSession, now: datetime | None = None) -> SessionState:
    if session.redacted_at is not None:  # erased: closed, and nothing of its attempts is shown
        return SessionState(SessionStatus.EXPIRED, None, closed=True)
    attempts = db.session.execute(
        select(Verification).where(Verification.session_id == session.id)
        .order_by(Verification.created_at, Verification.id)
    ).scalars().all()
    for attempt in attempts:
        if attempt.status == FinalStatus.COMPLETED:
            return SessionState(SessionStatus.COMPLETED, attempt, closed=True)
    expired = session.expired(now)
    for attempt in reversed(attempts):
        if attempt.status in (FinalStatus.DENIED, FinalStatus.DECLINED):
            return SessionState(SessionStatus(attempt.status), attempt, closed=expired)
    # Only QR codes that ran out, or nothing yet: the session itself is open or over.
    return SessionState(SessionStatus.EXPIRED if expired else SessionStatus.OPEN, None, closed=expired)


def session_document(session: VerificationSession, state: SessionState) -> dict[str, object]:
    """The institution backend's view of a session (`GET /api/sessions/<id>`).

    Once the session or the verification that decided it is erased (`app.rules.retention`), only that: the session's own
    id, and when. Its status and reference would say what became of the person, so they go too.
    """
    if session.redacted_at is not None:
        return redacted_document(session.id, session.redacted_at)
    if state.result is not None and state.result.redacted_at is not None:
        return redacted_document(session.id, state.result.redacted_at)
    return {
        "id": session.id,
        "reference": session.reference,
        "locale": session.locale,
        "status": state.status.value,
        "resultId": state.result.id if state.result else None,
        "result": result_document(state.result) if state.result else None,
        "createdAt": isoformat_z(session.created_at),
        "expiresAt": isoformat_z(session.expires_at),
    }
