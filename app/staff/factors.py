"""A staff member's second factors, who must have one, and the lock after wrong answers.

Three kinds, each a table: passkeys (WebAuthn, `app.staff.passkeys`), the preferred factor; an
authenticator app's secret (TOTP, `app.staff.totp`), the alternative; and one-time recovery codes
(`app.staff.recovery_codes`), for the day both are lost. Recovery codes are not a factor of their own:
an account "has a second factor" when it has a passkey or a confirmed authenticator app.

Who must pass one (`PASSID_STAFF_MFA`): admins (`admin`, the default), every role (`all`) or nobody
(`off`). An account that has enrolled a factor is asked for it whatever the setting says: a setting
changed later must not quietly turn a factor someone relies on into decoration.

Wrong answers lock: after MAX_FAILURES wrong codes or refused passkey answers in a row, the account's
second factor refuses every answer, right ones included, for LOCK_PERIOD. The per-address rate limit
(`PASSID_RATE_LIMIT_SECOND_FACTOR`) stops one client guessing fast; the lock stops many clients guessing
one account's six digits. Every failure and every lock is in the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String, delete, exists, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app.config import current_settings
from app.plumbing.database import Model, db, utcnow
from app.plumbing.encryption import EncryptedText
from app.rules import audit
from app.staff.models import StaffUser
from app.staff.roles import Role

MAX_FAILURES = 5
LOCK_PERIOD = timedelta(minutes=15)

# How a factor is named in the audit log's detail (English, like every detail).
PASSKEY = "passkey"
AUTHENTICATOR_APP = "authenticator app"
RECOVERY_CODE = "recovery code"


def passkey_detail(name: str) -> str:
    """A passkey as the audit log names it: its name as data, quoted (a typed quote cannot end the entry)."""
    return f"{PASSKEY} {json.dumps(name, ensure_ascii=False)}"


class FactorRefused(Exception):
    """A change or an answer the rules refuse; the message is the sentence to show the staff member."""


class StaffPasskey(Model):
    """One WebAuthn credential. The public key is not a secret; the private key never leaves the authenticator."""

    __tablename__ = "staff_passkey"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url, as browsers send it
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[str | None] = mapped_column(String(200))  # comma-separated hints for the browser
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    # SHA-256 of the last challenge this passkey answered: the same answer sent twice is refused.
    last_challenge_hash: Mapped[str | None] = mapped_column(String(64))


class StaffTotp(Model):
    """An authenticator app's secret, encrypted at rest; unconfirmed until a first code proves the app has it."""

    __tablename__ = "staff_totp"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The 30-second step of the last code accepted: a code (or an older one) is never accepted twice.
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class StaffRecoveryCode(Model):
    """One one-time code, as `salt$sha256(salt + code)`: 80 random bits, so no slow hash is needed."""

    __tablename__ = "staff_recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


@dataclass(frozen=True)
class Factors:
    """What one account has enrolled, for its own page, the staff page and the sign-in step."""

    passkeys: list[StaffPasskey]
    totp: bool
    recovery_codes_left: int

    @property
    def any(self) -> bool:
        return bool(self.passkeys) or self.totp


def factors_of(user_id: int) -> Factors:
    passkeys = list(db.session.execute(
        select(StaffPasskey).where(StaffPasskey.staff_id == user_id).order_by(StaffPasskey.id)).scalars())
    return Factors(passkeys=passkeys, totp=_totp_confirmed(user_id), recovery_codes_left=recovery_codes_left(user_id))


def _totp_confirmed(user_id: int) -> bool:
    return db.session.execute(select(exists().where(
        StaffTotp.staff_id == user_id, StaffTotp.confirmed_at.is_not(None)))).scalar_one()


def recovery_codes_left(user_id: int) -> int:
    return len(db.session.execute(select(StaffRecoveryCode.id).where(
        StaffRecoveryCode.staff_id == user_id, StaffRecoveryCode.used_at.is_(None))).all())


def has_second_factor(user_id: int) -> bool:
    """A passkey or a confirmed authenticator app (recovery codes only stand in for one)."""
    passkey = db.session.execute(select(exists().where(StaffPasskey.staff_id == user_id))).scalar_one()
    return passkey or _totp_confirmed(user_id)


def role_requires_second_factor(role: str, policy: str) -> bool:
    """Whether `policy` (PASSID_STAFF_MFA) makes an account of `role` pass a second factor."""
    return policy == "all" or (policy == "admin" and role == Role.ADMIN)


def needs_second_factor(user: StaffUser) -> bool:
    """Whether this account's sign-in must pass a second factor: its role says so, or it has one enrolled."""
    return role_requires_second_factor(user.role, current_settings().staff_mfa) or has_second_factor(user.id)


def may_remove_last_factor(user: StaffUser) -> bool:
    """Whether the account may go back to a password alone (only where its role needs no second factor)."""
    return not role_requires_second_factor(user.role, current_settings().staff_mfa)


def own_actor(user: StaffUser) -> str | None:
    """The audit actor of a change an account makes to its own factors: the signed-in account (the entry then
    carries its role), or, while a sign-in enrols its first factor, the account whose password was just checked."""
    signed_in = has_request_context() and current_user.is_authenticated and current_user.id == user.id
    return None if signed_in else user.username


# --- wrong answers and the lock ------------------------------------------------------------------


def locked_until(user: StaffUser, now: datetime | None = None) -> datetime | None:
    """When the lock on this account's second factor ends, or None when it is not locked."""
    until = user.second_factor_locked_until
    return until if until is not None and until > (now or utcnow()) else None


def note_failure(user: StaffUser, method: str, why: str) -> bool:
    """Record a wrong answer (committed with its audit entry); True when it locks the account's second factor.

    Counted in SQL, so two wrong answers at once are two; an answer while locked is recorded but not
    counted (the lock is not stretched, nor the next one brought closer). The actor is "an unknown user":
    the password was right, but nobody has proved they are this staff member.
    """
    audit.note(audit.Action.SECOND_FACTOR_FAILED, actor=audit.UNKNOWN_ACTOR, subject=user.username,
               detail=f"{method}: {why}")
    if locked_until(user) is not None:
        db.session.commit()
        return False
    db.session.execute(update(StaffUser).where(StaffUser.id == user.id).values(
        second_factor_failures=StaffUser.second_factor_failures + 1))
    db.session.refresh(user, ["second_factor_failures"])
    locks = user.second_factor_failures >= MAX_FAILURES
    if locks:
        user.second_factor_locked_until = utcnow() + LOCK_PERIOD
        user.second_factor_failures = 0
        audit.note(audit.Action.SECOND_FACTOR_LOCKED, actor=audit.UNKNOWN_ACTOR, subject=user.username,
                   detail=f"{MAX_FAILURES} wrong answers in a row; locked for {LOCK_PERIOD.seconds // 60} minutes")
    db.session.commit()
    return locks


def note_success(user: StaffUser) -> None:
    """A right answer ends the run of wrong ones (committed by the caller, with the sign-in)."""
    user.second_factor_failures = 0


def delete_all(user: StaffUser) -> None:
    """Every factor and recovery code of the account, and its lock (the caller audits and commits)."""
    for model in (StaffPasskey, StaffTotp, StaffRecoveryCode):
        db.session.execute(delete(model).where(model.staff_id == user.id))
    user.second_factor_failures = 0
    user.second_factor_locked_until = None
