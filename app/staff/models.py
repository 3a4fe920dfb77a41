"""Staff accounts: a name, a password hash (scrypt, via Werkzeug, unless PASSID_PASSWORD_HASH says otherwise)
and a session version; or, for an account made by single sign-on, the provider's issuer and subject instead
of a usable password.

The session version is how a sign-out ends a session on the server: the cookie carries the
version it was signed in with (through `get_id`), and bumping it makes every older cookie worthless.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.config import current_settings
from app.plumbing.database import Model, db, utcnow

# What an account made by single sign-on holds instead of a password hash: no password matches it (Werkzeug
# reads no method from it), so such an account signs in only through its provider.
NO_PASSWORD = "!single-sign-on"


class StaffUser(UserMixin, Model):
    __tablename__ = "staff_user"
    __table_args__ = (
        Index("ix_staff_user_sso_identity", "sso_issuer", "sso_subject", unique=True),
        # At most one break-glass account, held by the database too.
        Index("ix_staff_user_one_break_glass", "break_glass", unique=True,
              sqlite_where=text("break_glass"), postgresql_where=text("break_glass")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime)
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A Role (`app.staff.roles`). Accounts made before roles existed could do everything: migration 0010
    # makes them admins, so nobody loses access on upgrade; new accounts name their role.
    role: Mapped[str] = mapped_column(String(10), default="counter")
    # A disabled account cannot sign in, and its open sessions end (its session version moves on).
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Single sign-on (app/staff/sso.py): the provider's issuer and the `sub` it gives this person, never
    # reassigned; None for a local account.
    sso_issuer: Mapped[str | None] = mapped_column(String(255))
    sso_subject: Mapped[str | None] = mapped_column(String(255))
    # The one admin account that signs in with a password when PASSID_LOCAL_PASSWORDS is off
    # (`flask staff break-glass`): the way in when the provider is down.
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    @property
    def single_sign_on(self) -> bool:
        """True for an account made by single sign-on: it has no password, and signs in through its provider."""
        return self.sso_subject is not None
    # Wrong second-factor answers in a row, and until when they lock the account's second factor
    # (app/staff/factors.py): the per-address rate limit alone would let many addresses guess one account's codes.
    second_factor_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    second_factor_locked_until: Mapped[datetime | None] = mapped_column(DateTime)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=password_method())

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        """What Flask-Login keeps in the cookie: the account and the session version it signed in with."""
        return session_id_for(self.id, self.session_version)

    def end_sessions(self) -> None:
        """Make every cookie issued so far worthless (sign-out, password change).

        Incremented in SQL so two sign-outs at once never land on the same number.
        """
        self.session_version = StaffUser.session_version + 1


def session_id_for(user_id: int, session_version: int) -> str:
    return f"{user_id}:{session_version}"


def parse_session_id(session_id: str) -> tuple[int, int] | None:
    """(user id, session version) from a cookie's id, or None for anything else (including pre-version cookies)."""
    user_id, _, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    return int(user_id), int(version)


def find_staff(username: str) -> StaffUser | None:
    return db.session.execute(
        db.select(StaffUser).filter_by(username=username.strip().lower())
    ).scalar_one_or_none()


def password_method() -> str:
    """Werkzeug's method string for new hashes: PASSID_PASSWORD_HASH (scrypt unless a test asks for less)."""
    return current_settings().password_hash


# What an unknown name's password is checked against under scrypt: made once (of a random password nobody
# kept) with the method and cost `set_password` uses, so checking it takes as long as a real account's.
# A constant, not made at start-up: that would cost every process, and every CLI command, a hash.
# tests/console/test_staff_sessions.py fails if Werkzeug's scrypt cost ever moves away from it.
UNMATCHABLE_HASH = (
    "scrypt:32768:8:1$6Fq8BaJNzLYR3xWo$6831509f5d9c2d1a7f71e24b75974a28e02b1a97b0ee631ce6b2ea9b9fa5ade5"
    "e4b8976ca8cd85637904abc1a21afdac31dc19fc5d2d286f36a53cdf79b99ab2"
)


@cache
def unmatchable_hash(method: str) -> str:
    """A hash no password matches, made with `method` (the constant above for scrypt, else once per process)."""
    if method == "scrypt":
        return UNMATCHABLE_HASH
    return generate_password_hash(secrets.token_urlsafe(32), method=method)


@dataclass(frozen=True)
class SignInCheck:
    user: StaffUser | None  # the account signed in, or None
    refusal: str | None = None  # why not, for the audit log only: the person signing in is told nothing more
    account: str | None = None  # the existing account a refused attempt named, if it named one

    def audit_detail(self, tried: str) -> str:
        """The refusal and the name typed, as data: quoted and escaped (a typed quote or line break cannot
        pass for the end of the entry), trimmed and lower-cased as names are looked up, never the password."""
        name = json.dumps(tried.strip().lower()[:80], ensure_ascii=False)
        return f"{self.refusal}; name tried: {name}"


def check_sign_in(username: str, password: str) -> SignInCheck:
    """Whether these credentials open an account, and if not, why (for the audit log).

    An unknown name still costs one password-hash check (against a hash nobody's password matches),
    so the time an answer takes does not tell which names exist; a disabled account's password is
    checked too, and refused after, so it answers like a wrong password, in the same time. So is a
    right password while PASSID_LOCAL_PASSWORDS is off, unless the account is the break-glass one.
    """
    # No account name holds NUL, and PostgreSQL cannot even compare text that does.
    user = find_staff(username) if "\x00" not in username else None
    if user is None:
        check_password_hash(unmatchable_hash(password_method()), password)
        return SignInCheck(None, "no such account")
    if user.single_sign_on:  # it has no password: its provider decides, and a leaver's provider says no
        check_password_hash(unmatchable_hash(password_method()), password)
        return SignInCheck(None, "single sign-on account: no local password", user.username)
    if not user.check_password(password):
        return SignInCheck(None, "wrong password", user.username)
    if user.disabled_at is not None:
        return SignInCheck(None, "account disabled", user.username)
    if not current_settings().local_passwords and not user.break_glass:
        return SignInCheck(None, "local passwords are off and this is not the break-glass account", user.username)
    return SignInCheck(user)
