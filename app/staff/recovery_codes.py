"""One-time recovery codes: for the day a staff member's passkeys and authenticator app are all out of reach.

COUNT codes of 16 characters (80 random bits each), shown once when made and never again: only a salted
SHA-256 of each is stored. A slow password hash would add nothing against 80 random bits and would make
a sign-in check each code slowly; the salt keeps two accounts' hashes of one code apart (ASVS 2.6.2).

Making new codes replaces every old one, used or not. Each use is in the audit log with how many are left.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import delete, select, update

from app.plumbing.database import db, rows_changed, utcnow
from app.rules import audit
from app.staff.factors import StaffRecoveryCode, own_actor, recovery_codes_left
from app.staff.models import StaffUser

COUNT = 10
LENGTH = 16
# No 0/O, 1/I/L: a code is read off paper.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _canonical(code: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", code[:64].upper())


def _hash(code: str, salt: bytes) -> str:
    return f"{salt.hex()}${hashlib.sha256(salt + _canonical(code).encode()).hexdigest()}"


def _matches(code: str, stored: str) -> bool:
    salt, _, _digest = stored.partition("$")
    try:
        expected = _hash(code, bytes.fromhex(salt))
    except ValueError:
        return False
    return hmac.compare_digest(expected, stored)


def create(user: StaffUser) -> list[str]:
    """COUNT new codes, as the staff member writes them down (`ABCD-EFGH-JKMN-PQRS`); the old ones stop working.

    Committed with its audit entry. The codes are returned once and never stored.
    """
    db.session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == user.id))
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append("-".join(raw[i:i + 4] for i in range(0, LENGTH, 4)))
        db.session.add(StaffRecoveryCode(staff_id=user.id, code_hash=_hash(raw, secrets.token_bytes(16))))
    audit.note(audit.Action.RECOVERY_CODES_CREATED, subject=user.username, detail=f"{COUNT} codes",
               actor=own_actor(user))
    db.session.commit()
    return codes


def use(user: StaffUser, typed: str | None) -> bool:
    """Whether `typed` is one of the account's unused codes; if so it is spent (in SQL: once, even in a race).

    The audit entry is added to the session; the caller commits it with the sign-in it opens.
    """
    if not typed or len(_canonical(typed)) != LENGTH:
        return False
    unused = db.session.execute(select(StaffRecoveryCode).where(
        StaffRecoveryCode.staff_id == user.id, StaffRecoveryCode.used_at.is_(None))).scalars().all()
    for row in unused:
        if _matches(typed, row.code_hash):
            spent = rows_changed(update(StaffRecoveryCode).where(
                StaffRecoveryCode.id == row.id, StaffRecoveryCode.used_at.is_(None)).values(used_at=utcnow()))
            if spent != 1:
                return False
            audit.note(audit.Action.RECOVERY_CODE_USED, subject=user.username, actor=user.username,
                       detail=f"{recovery_codes_left(user.id)} left")
            return True
    return False
