"""Completing a sign-in: the one place a staff member becomes signed in, whatever proved who they are.

A password (`/staff/sign-in`) and the bank's single sign-on (`app/staff/sso.py`) both end here, so what holds
after a sign-in holds for both: a new session (nothing from before it survives, so no fixation), the 8-hour
clock started, the audit entry saying how the person proved who they are, and the landing page their role may
open.

Between proving who they are and landing comes the second factor (`app.staff.factors`: passkeys, an
authenticator app, recovery codes). `complete_sign_in` is what a first factor calls once it holds: it signs the
account in when no second factor is needed, or when the bank's provider says it checked one and
PASSID_STAFF_MFA_FROM_PROVIDER lets that count; otherwise it keeps the sign-in *pending* in the session and sends
the browser to the second-factor step (or to enrolment, for an account that must have a factor and has none).
A pending sign-in is not a signed-in session: Flask-Login knows nobody, so every staff page answers as to a
stranger (`app.staff.auth` sends the browser back to the step it is on), and a password alone opens none.
`finish_sign_in` signs in once the second factor holds and records which one in the session (SECOND_FACTOR);
the user loader refuses a session that lacks one where the account needs one, so a session opened before a
setting or an enrolment changed cannot skip it either.
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, redirect, session, url_for
from flask_login import login_user
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.config import current_settings
from app.plumbing.database import db, utcnow
from app.rules import audit
from app.staff import factors
from app.staff.models import StaffUser, parse_session_id
from app.staff.roles import home_for, may_open

STAFF_SESSION_LIFETIME = timedelta(hours=8)
SIGNED_IN_AT = "signed_in_at"  # in the session: when the first factor was checked (epoch seconds)
# In the session: whether the provider said it checked a second factor (its ID token's `amr` or `acr`).
SECOND_FACTOR_FROM_PROVIDER = "second_factor_from_provider"
# In the session: the second factor this sign-in passed ("passkey …", "authenticator app", "recovery code", the
# provider's), where one was needed.
SECOND_FACTOR = "second_factor"
# In the session: the account whose first factor held, waiting for its second, how, since when, and `next`.
PENDING = "pending_sign_in"
# How long the second-factor step (or a first enrolment) may take before the first factor is asked again.
PENDING_LIFETIME = timedelta(minutes=15)

PASSWORD = "password"
SINGLE_SIGN_ON = "single sign-on"
PROVIDER_SECOND_FACTOR = "the provider's"


def signed_in_lately(signed_in_at: object, now: float | None = None) -> bool:
    """True within STAFF_SESSION_LIFETIME of signing in.

    Flask re-signs a permanent session's cookie on every response, so the cookie's own timestamp
    only measures time since the last request; without this, a session in use (or a stolen
    cookie replayed now and then) would never end.
    """
    if not isinstance(signed_in_at, int | float):
        return False
    age = (time.time() if now is None else now) - signed_in_at
    return 0 <= age <= STAFF_SESSION_LIFETIME.total_seconds()


def complete_sign_in(user: StaffUser, *, second_factor_from_provider: bool, method: str,
                     next_target: str | None = None) -> Response:
    """`user` proved who they are by `method`: sign them in and send them where they may go, or, where a second
    factor is needed and the provider's does not count, to the second-factor step first."""
    session.clear()
    session.permanent = True
    session[SIGNED_IN_AT] = int(time.time())
    session[SECOND_FACTOR_FROM_PROVIDER] = second_factor_from_provider
    if second_factor_from_provider and current_settings().staff_mfa_from_provider:
        return redirect(finish_sign_in(user, method=method, second_factor=PROVIDER_SECOND_FACTOR,
                                       next_target=next_target))
    if not factors.needs_second_factor(user):
        return redirect(finish_sign_in(user, method=method, second_factor=None, next_target=next_target))
    session[PENDING] = {"account": user.get_id(), "at": int(time.time()), "method": method,
                        "next": safe_next(next_target)}
    return redirect(url_for("staff.second_factor"))


def pending_account() -> StaffUser | None:
    """The account a pending sign-in is for, while it is fresh and nothing ended it (sign-out, new password…)."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not signed_in_lately(session.get(SIGNED_IN_AT)):
        return None
    at = pending.get("at")
    if not isinstance(at, int) or not 0 <= time.time() - at <= PENDING_LIFETIME.total_seconds():
        return None
    parsed = parse_session_id(str(pending.get("account", "")))
    if parsed is None:
        return None
    user = db.session.get(StaffUser, parsed[0])
    if user is None or user.disabled_at is not None or user.session_version != parsed[1]:
        return None
    return user


def finish_sign_in(user: StaffUser, *, second_factor: str | None, method: str | None = None,
                   next_target: str | None = None) -> str:
    """Sign the account in (committed with its audit entry); returns where the browser goes next.

    `method` and `next_target` default to the pending sign-in's. `second_factor` names what was passed
    ("passkey …", "authenticator app", "recovery code", the provider's), or None where none was needed.
    """
    pending = session.pop(PENDING, None)
    if isinstance(pending, dict):
        method = method or str(pending.get("method") or PASSWORD)
        next_target = next_target or pending.get("next")
    login_user(user)
    session.permanent = True
    if second_factor:
        session[SECOND_FACTOR] = second_factor
    user.last_sign_in_at = utcnow()
    factors.note_success(user)
    audit.note(audit.Action.SIGN_IN, subject=user.username,
               detail=sign_in_detail(method or PASSWORD, break_glass=user.break_glass,
                                     second_factor_from_provider=bool(session.get(SECOND_FACTOR_FROM_PROVIDER)),
                                     second_factor=second_factor))
    db.session.commit()
    return landing(next_target, user.role)


def sign_in_detail(method: str, *, break_glass: bool, second_factor_from_provider: bool,
                   second_factor: str | None = None) -> str:
    """How the person proved who they are, as the audit log says it (the break-glass account stands out), and
    the second factor of ours they passed, if any."""
    if method == SINGLE_SIGN_ON:
        factor = "the provider checked a second factor" if second_factor_from_provider else \
            "the provider reported no second factor"
        detail = f"{SINGLE_SIGN_ON}; {factor}"
    else:
        detail = f"{method}, break-glass account" if break_glass else method
    ours = second_factor if second_factor and second_factor != PROVIDER_SECOND_FACTOR else None
    return f"{detail}; second factor: {ours}" if ours else detail


def mark_second_factor_passed(method: str) -> None:
    """Record on the signed-in session that it passed a second factor (`method` names it, for nobody but us)."""
    session[SECOND_FACTOR] = method


def landing(target: str | None, role: str) -> str:
    """`next` when it is a page of this site the account may open, else its role's home page."""
    path = safe_next(target)
    if path is None:
        return home_for(role)
    try:
        endpoint, _arguments = current_app.url_map.bind("localhost").match(urlsplit(path).path, method="GET")
    except HTTPException:  # no such page (or a redirect to one): home instead
        return home_for(role)
    return path if may_open(str(endpoint), role) else home_for(role)


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: an open redirect would turn sign-in into a phishing aid."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
        # Printable ASCII, no backslash: no newline breaks the Location header (a 500 after signing in),
        # and no `/<backslash>host`, which browsers read as `//host`, leaves the site.
        and target.isascii()
        and target.isprintable()
        and "\\" not in target
    ):
        return target
    return None
