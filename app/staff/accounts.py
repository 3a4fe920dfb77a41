"""Changing staff accounts: create, reset a password, change a role, disable, enable.

One set of rules for `flask staff …` and the console's staff page. Each change is committed with its
audit entry, and a change to what an account may do (disabled, new password, new role) also ends
its open sessions, so a cookie issued before the change cannot outlive it.

`by` is the staff member making the change in the console, None for an operator's `flask` command
(audited as the CLI). An admin cannot disable their own account or give up their own admin role in
the console: the console is then never left without an admin who can undo a mistake. The CLI, run
by whoever holds the server, may do either (it is also how a locked-out bank gets an admin back).
"""

from __future__ import annotations

from flask_babel import gettext as _

from app.plumbing.database import db, utcnow
from app.rules import audit
from app.staff.models import StaffUser, find_staff
from app.staff.roles import Role

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # what the sign-in form accepts
MAX_NAME_LENGTH = 80


class AccountRefused(Exception):
    """A change the rules refuse; the message is the sentence to show the person who asked."""


def clean_name(raw: str) -> str:
    """The name as stored (trimmed, lower case), or AccountRefused saying what a name must be."""
    name = raw.strip().lower()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise AccountRefused(_("A staff name has 1 to %(max)d characters.", max=MAX_NAME_LENGTH))
    if not name.isprintable():
        raise AccountRefused(_("A staff name cannot hold control characters or line breaks."))
    if name in audit.RESERVED_ACTORS:  # the audit log's actor column must mean one thing
        raise AccountRefused(_("The name %(name)s is kept for the audit log; choose another.", name=name))
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRefused(_("A password has at least %(num)d characters.", num=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountRefused(_("A password has at most %(num)d characters.", num=MAX_PASSWORD_LENGTH))


def parse_role(raw: str | None) -> Role:
    try:
        return Role((raw or "").strip().lower())
    except ValueError:
        raise AccountRefused(_("A role is one of %(roles)s.", roles=", ".join(role.value for role in Role))) from None


def _actor(by: StaffUser | None) -> str | None:
    """Who the audit entry names: the signed-in staff member (note's default), or the CLI."""
    return audit.CLI_ACTOR if by is None else None


def create_account(name: str, role: Role, password: str, *, by: StaffUser | None) -> StaffUser:
    name = clean_name(name)
    check_password(password)
    if find_staff(name) is not None:
        raise AccountRefused(_("There is already a staff account named %(name)s.", name=name))
    user = StaffUser(username=name, role=Role(role).value)
    user.set_password(password)
    db.session.add(user)
    audit.note(audit.Action.STAFF_CREATED, subject=name, detail=f"role {role}", actor=_actor(by))
    db.session.commit()
    return user


def reset_password(user: StaffUser, password: str, *, by: StaffUser | None) -> None:
    """A new password, which signs out whoever held the old one, everywhere."""
    check_password(password)
    user.set_password(password)
    user.end_sessions()
    audit.note(audit.Action.STAFF_PASSWORD_RESET, subject=user.username, actor=_actor(by))
    db.session.commit()


def change_role(user: StaffUser, role: Role, *, by: StaffUser | None) -> bool:
    """False when the account already has `role` (nothing changes, nothing is recorded)."""
    role = Role(role)
    if user.role == role:
        return False
    if by is not None and by.id == user.id and user.role == Role.ADMIN:
        raise AccountRefused(_("You cannot remove your own admin role: ask another admin to do it."))
    before = user.role
    user.role = role.value
    user.end_sessions()  # signed in again, the account lands on its new role's pages
    audit.note(audit.Action.STAFF_ROLE_CHANGED, subject=user.username, detail=f"{before} → {role}",
               actor=_actor(by))
    db.session.commit()
    return True


def disable(user: StaffUser, *, by: StaffUser | None) -> bool:
    """False when already disabled. A disabled account cannot sign in, and its open sessions end now."""
    if user.disabled_at is not None:
        return False
    if by is not None and by.id == user.id:
        raise AccountRefused(_("You cannot disable your own account: ask another admin to do it."))
    user.disabled_at = utcnow()
    user.end_sessions()
    audit.note(audit.Action.STAFF_DISABLED, subject=user.username, actor=_actor(by))
    db.session.commit()
    return True


def enable(user: StaffUser, *, by: StaffUser | None) -> bool:
    """False when not disabled. The account signs in again with the password it had."""
    if user.disabled_at is None:
        return False
    user.disabled_at = None
    audit.note(audit.Action.STAFF_ENABLED, subject=user.username, actor=_actor(by))
    db.session.commit()
    return True


def all_accounts() -> list[StaffUser]:
    """By name: the staff page and `flask staff list`."""
    return list(db.session.execute(db.select(StaffUser).order_by(StaffUser.username)).scalars())


