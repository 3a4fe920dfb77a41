"""The audit log: who did what to whose data, when, and from where. Append-only.

Auditors ask two questions of a verification front-end: who saw this customer's data, and who
decided what about them. Every such act adds one `AuditEntry` in the same transaction as the act
itself, so an act without its entry (or an entry without its act) cannot be committed.

There is no update or delete path in the app, and the database refuses both too (triggers made by
migration 0010), so a compromised page cannot tidy the log after itself. An entry never holds a
claim: it names the subject by id (a result id, a staff name, an event id) and says what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from flask import has_request_context, request
from flask_babel import LazyString, lazy_gettext
from flask_login import current_user
from sqlalchemy import DateTime, Integer, Select, String
from sqlalchemy.orm import Mapped, mapped_column

from app.plumbing.database import Model, db, end_of, start_of, utcnow


class Action(StrEnum):
    """Every kind of act the log records; the console's filter lists these."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    CLAIMS_VIEWED = "claims_viewed"  # a branch result or a console detail showed a person's claims
    OUTCOME_REPORTED = "outcome_reported"
    REVIEW_DECIDED = "review_decided"
    REDACTED = "redacted"
    RETENTION_PURGED = "retention_purged"
    HISTORY_EXPORTED = "history_exported"
    AUDIT_EXPORTED = "audit_exported"
    STAFF_CREATED = "staff_created"
    STAFF_ROLE_CHANGED = "staff_role_changed"
    STAFF_PASSWORD_RESET = "staff_password_reset"
    STAFF_DISABLED = "staff_disabled"
    STAFF_ENABLED = "staff_enabled"
    TEST_WEBHOOK_SENT = "test_webhook_sent"
    TEST_NOTIFICATION_SENT = "test_notification_sent"
    DATA_KEY_ROTATED = "data_key_rotated"
    SECOND_FACTOR_ENROLLED = "second_factor_enrolled"  # a passkey or an authenticator app added
    SECOND_FACTOR_REMOVED = "second_factor_removed"  # by the staff member, from their own page
    SECOND_FACTOR_RESET = "second_factor_reset"  # by an admin or the CLI: every factor of an account
    SECOND_FACTOR_FAILED = "second_factor_failed"  # a wrong, replayed or refused code or passkey answer
    SECOND_FACTOR_LOCKED = "second_factor_locked"  # too many wrong answers in a row
    RECOVERY_CODES_CREATED = "recovery_codes_created"
    RECOVERY_CODE_USED = "recovery_code_used"


# What the console's audit log page shows for each action; the code itself is what is stored, filtered on and
# exported (CSV), and stays English.
ACTION_NAMES: dict[Action, LazyString] = {
    Action.SIGN_IN: lazy_gettext("Signed in"),
    Action.SIGN_IN_FAILED: lazy_gettext("Sign-in failed"),
    Action.SIGN_OUT: lazy_gettext("Signed out"),
    Action.CLAIMS_VIEWED: lazy_gettext("Claims viewed"),
    Action.OUTCOME_REPORTED: lazy_gettext("Outcome reported"),
    Action.REVIEW_DECIDED: lazy_gettext("Review decided"),
    Action.REDACTED: lazy_gettext("Data erased"),
    Action.RETENTION_PURGED: lazy_gettext("Purged after the retention period"),
    Action.HISTORY_EXPORTED: lazy_gettext("History exported"),
    Action.AUDIT_EXPORTED: lazy_gettext("Audit log exported"),
    Action.STAFF_CREATED: lazy_gettext("Staff account created"),
    Action.STAFF_ROLE_CHANGED: lazy_gettext("Staff role changed"),
    Action.STAFF_PASSWORD_RESET: lazy_gettext("Staff password reset"),
    Action.STAFF_DISABLED: lazy_gettext("Staff account disabled"),
    Action.STAFF_ENABLED: lazy_gettext("Staff account enabled"),
    Action.TEST_WEBHOOK_SENT: lazy_gettext("Test webhook sent"),
    Action.TEST_NOTIFICATION_SENT: lazy_gettext("Test notification sent"),
    Action.DATA_KEY_ROTATED: lazy_gettext("Data key rotated"),
    Action.SECOND_FACTOR_ENROLLED: lazy_gettext("Second factor added"),
    Action.SECOND_FACTOR_REMOVED: lazy_gettext("Second factor removed"),
    Action.SECOND_FACTOR_RESET: lazy_gettext("Second factors reset"),
    Action.SECOND_FACTOR_FAILED: lazy_gettext("Second factor failed"),
    Action.SECOND_FACTOR_LOCKED: lazy_gettext("Second factor locked"),
    Action.RECOVERY_CODES_CREATED: lazy_gettext("Recovery codes created"),
    Action.RECOVERY_CODE_USED: lazy_gettext("Recovery code used"),
}


def action_name(code: str) -> str:
    """The action's name for the page, or its code when the code is one this version does not know."""
    try:
        return str(ACTION_NAMES[Action(code)])
    except ValueError:
        return code


# Who acted when no staff member did: an operator's `flask` command, or the app's own schedule.
CLI_ACTOR = "cli"
SYSTEM_ACTOR = "system"
# Who tried to sign in and failed: nobody the app knows, whatever name was typed (that is data, in the
# detail). So the actor column only ever holds a real account, the CLI or the system, and a typed
# "system" or "=HYPERLINK(…)" cannot pose as one.
UNKNOWN_ACTOR = "(unknown user)"
# Names no staff account may take (`app.staff.accounts.clean_name`), so an actor always means one thing.
RESERVED_ACTORS = frozenset({CLI_ACTOR, SYSTEM_ACTOR, UNKNOWN_ACTOR})


class AuditEntry(Model):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80), index=True)  # a staff name, CLI_ACTOR or SYSTEM_ACTOR
    actor_role: Mapped[str | None] = mapped_column(String(10))  # the staff member's role at the time
    address: Mapped[str | None] = mapped_column(String(64))  # the client address (after trusted proxies)
    action: Mapped[str] = mapped_column(String(40), index=True)  # an Action
    subject: Mapped[str | None] = mapped_column(String(80), index=True)  # a result id, staff name, event id…
    detail: Mapped[str | None] = mapped_column(String(500))  # what happened, in words; never a claim


def note(action: Action, *, subject: str | None = None, detail: str | None = None,
         actor: str | None = None) -> AuditEntry:
    """Add an entry to the current transaction; the caller's commit stores it with the act it records.

    The actor is the signed-in staff member unless `actor` names another (CLI_ACTOR, SYSTEM_ACTOR,
    UNKNOWN_ACTOR); the address is the request's, when there is one.
    """
    staff = current_user if has_request_context() and current_user.is_authenticated else None
    entry = AuditEntry(
        at=utcnow(),
        actor=_printable(actor or (staff.username if staff is not None else SYSTEM_ACTOR), 80),
        actor_role=staff.role if staff is not None and actor is None else None,
        address=(request.remote_addr or None) if has_request_context() else None,
        action=Action(action).value,
        subject=_printable(subject, 80) or None,
        detail=_printable(detail, 500) or None,
    )
    db.session.add(entry)
    return entry


def _printable(text: str | None, limit: int) -> str:
    """At most `limit` characters, control characters shown as "?".

    A failed sign-in's detail holds whatever name was typed: PostgreSQL refuses NUL in text, and a
    line break would let a typed name forge a second line in a log viewer or an export.
    """
    return "".join(char if char.isprintable() else "?" for char in (text or "")[:limit])


def record(action: Action, *, subject: str | None = None, detail: str | None = None,
           actor: str | None = None) -> AuditEntry:
    """`note` and commit at once: for acts that change nothing else (a page view, a failed sign-in)."""
    entry = note(action, subject=subject, detail=detail, actor=actor)
    db.session.commit()
    return entry


@dataclass(frozen=True)
class Filters:
    """What the console's audit log is narrowed to; empty fields match everything."""

    action: str = ""  # an Action's value
    actor: str = ""  # exactly (staff names are stored in lower case)
    subject: str = ""  # exactly: a result id, a staff name, an event id
    since: date | None = None  # from this day (UTC), inclusive
    until: date | None = None  # to this day (UTC), inclusive

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (the pager and the CSV link keep them)."""
        args = {"action": self.action, "actor": self.actor, "subject": self.subject,
                "from": self.since.isoformat() if self.since else "",
                "to": self.until.isoformat() if self.until else ""}
        return {key: value for key, value in args.items() if value}


def matching(filters: Filters) -> Select[tuple[AuditEntry]]:
    """The entries `filters` selects, newest first."""
    select = db.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if filters.action:
        select = select.where(AuditEntry.action == filters.action)
    if filters.actor:
        select = select.where(AuditEntry.actor == filters.actor)
    if filters.subject:
        select = select.where(AuditEntry.subject == filters.subject)
    if filters.since:
        select = select.where(AuditEntry.at >= start_of(filters.since))
    stop = end_of(filters.until) if filters.until else None
    if stop is not None:
        select = select.where(AuditEntry.at < stop)
    return select
