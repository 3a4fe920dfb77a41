"""Changing staff accounts: create, reset a password, change a role, disable, enable.

One set of rules for `flask staff …` and the console's staff page. Each change is committed with its
audit entry, and a change to what an account may do (disabled, new password, new role) also ends
its open sessions, so a cookie issued before the change cannot outlive it.

`by` is the staff member making the change in the console, None for an operator's `flask` command
(audited as the CLI). An admin cannot disable their own account or give up their own admin role in
the console: the console is then never left without an admin who can undo a mistake. The CLI, run
by whoever holds the server, may do either (it is also how a locked-out bank gets an admin back).

Accounts made by single sign-on (`account_from_provider`) have no password: none can be set on them, here or
by the CLI, or a leaver the provider no longer signs in would keep a way in. With PASSID_LOCAL_PASSWORDS off,
new passwords are for the one break-glass admin only, which only the CLI makes (`make_break_glass`).
"""

from __future__ import annotations

from flask_babel import gettext as _

from app.config import current_settings
from app.plumbing.database import db, utcnow
from app.rules import audit
from app.staff import factors
from app.staff.models import NO_PASSWORD, StaffUser, find_staff
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


def _local_passwords_on() -> None:
    if not current_settings().local_passwords:
        raise AccountRefused(_("Local passwords are off: staff sign in through single sign-on, and their accounts "
                               "are made when they first do. Only the break-glass account has a password."))


def create_account(name: str, role: Role, password: str, *, by: StaffUser | None) -> StaffUser:
    _local_passwords_on()
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
    if user.single_sign_on:
        raise AccountRefused(_("%(name)s signs in through single sign-on and has no password here.",
                               name=user.username))
    if not user.break_glass:
        _local_passwords_on()
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
    if user.break_glass:
        raise AccountRefused(_("The break-glass account is always an administrator."))
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


def account_from_provider(issuer: str, subject: str, name: str, role: Role | None) -> StaffUser:
    """The account the bank's provider just signed in (`subject` at `issuer`), made or brought up to date.

    Made on first sign-in with the role the bank's claim gives; on later ones its role follows the claim (a
    change ends its other sessions). Raises AccountRefused when the claim gives no role (and then ends the
    account's open sessions too: the bank has taken its role away), when the account is disabled here, or
    when its name is already a local account's (never taken over: it may be the break-glass admin). Nothing
    is committed: the caller commits the account with its sign-in, or the refusal with its audit entry.
    """
    user = linked_account(issuer, subject)
    if role is None:
        if user is not None:
            user.end_sessions()
        raise AccountRefused(_("The bank's sign-in service gives you no role in PASSID Verify. Ask your "
                               "administrator to add you to one of its staff groups."))
    if user is None:
        name = clean_name(name)
        if find_staff(name) is not None:
            raise AccountRefused(_("The name %(name)s already belongs to another staff account here. Ask an "
                                   "administrator to rename or remove it.", name=name))
        user = StaffUser(username=name, role=role.value, password_hash=NO_PASSWORD, sso_issuer=issuer,
                         sso_subject=subject)
        db.session.add(user)
        audit.note(audit.Action.STAFF_CREATED, subject=name, detail=f"role {role}, by single sign-on",
                   actor=audit.SYSTEM_ACTOR)
    elif user.disabled_at is not None:
        raise AccountRefused(_("Your staff account is disabled. Ask an administrator."))
    elif user.role != role:
        before = user.role
        user.role = role.value
        user.end_sessions()
        audit.note(audit.Action.STAFF_ROLE_CHANGED, subject=user.username,
                   detail=f"{before} → {role}, from single sign-on", actor=audit.SYSTEM_ACTOR)
    db.session.flush()  # the id and session version the sign-in's cookie carries
    return user


def linked_account(issuer: str, subject: str) -> StaffUser | None:
    """The account single sign-on made for `subject` at `issuer`, if there is one."""
    return db.session.execute(
        db.select(StaffUser).filter_by(sso_issuer=issuer, sso_subject=subject)
    ).scalar_one_or_none()


def make_break_glass(name: str, password: str) -> tuple[StaffUser, bool]:
    """The one break-glass admin: made (True), or given a new password when it exists (False).

    It signs in with a password when PASSID_LOCAL_PASSWORDS is off, for the day the provider is down. Only the
    CLI makes it (whoever holds the server); there is one, so another name is refused while it exists.
    """
    name = clean_name(name)
    check_password(password)
    current = db.session.execute(db.select(StaffUser).filter_by(break_glass=True)).scalar_one_or_none()
    if current is not None and current.username != name:
        raise AccountRefused(_("%(name)s is already the break-glass account: give it a new password, or disable "
                               "it first.", name=current.username))
    if current is not None:
        current.set_password(password)
        current.end_sessions()
        audit.note(audit.Action.STAFF_PASSWORD_RESET, subject=name, detail="break-glass account",
                   actor=audit.CLI_ACTOR)
        db.session.commit()
        return current, False
    if find_staff(name) is not None:
        raise AccountRefused(_("There is already a staff account named %(name)s.", name=name))
    user = StaffUser(username=name, role=Role.ADMIN.value, break_glass=True)
    user.set_password(password)
    db.session.add(user)
    audit.note(audit.Action.STAFF_CREATED, subject=name, detail="role admin, break-glass account",
               actor=audit.CLI_ACTOR)
    db.session.commit()
    return user, True


def password_accounts() -> list[str]:
    """Enabled accounts that sign in with a password and are not the break-glass one (the go-live checklist)."""
    return list(db.session.execute(
        db.select(StaffUser.username)
        .where(StaffUser.sso_subject.is_(None), StaffUser.disabled_at.is_(None), StaffUser.break_glass.is_(False))
        .order_by(StaffUser.username)
    ).scalars())


def reset_second_factor(user: StaffUser, *, by: StaffUser | None) -> bool:
    """Forget every passkey, authenticator app and recovery code of another account, and its lock; False when it
    had none. Its sessions end; where its role needs a second factor, its next sign-in enrols one again.

    For the staff member who lost their devices (an admin's console, or the CLI when no admin can sign in).
    An admin resets their own factors from their own page, one by one, never all at once from here.
    """
    if by is not None and by.id == user.id:
        raise AccountRefused(_("Change your own second factor from your own sign-in page."))
    had = factors.factors_of(user.id)
    locked = factors.locked_until(user) is not None
    if not (had.any or had.recovery_codes_left or locked):
        return False
    factors.delete_all(user)
    user.end_sessions()
    audit.note(audit.Action.SECOND_FACTOR_RESET, subject=user.username, actor=_actor(by),
               detail=f"{len(had.passkeys)} passkeys, authenticator app {'yes' if had.totp else 'no'}, "
                      f"{had.recovery_codes_left} recovery codes{', was locked' if locked else ''}")
    db.session.commit()
    return True


def all_accounts() -> list[StaffUser]:
    """By name: the staff page and `flask staff list`."""
    return list(db.session.execute(db.select(StaffUser).order_by(StaffUser.username)).scalars())


