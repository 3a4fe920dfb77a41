"""Completing a sign-in: the one place a staff member becomes signed in, whatever proved who they are.

A password (`/staff/sign-in`) and the bank's single sign-on (`app/staff/sso.py`) both end here, so what holds
after a sign-in holds for both: a new session (nothing from before it survives, so no fixation), the 8-hour
clock started, the audit entry saying how the person proved who they are, and the landing page their role may
open. Whether the provider already checked a second factor is recorded in the session, for a second-factor
step that comes between proving and landing.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, redirect, session
from flask_login import login_user
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.plumbing.database import db, utcnow
from app.rules import audit
from app.staff.auth import SIGNED_IN_AT
from app.staff.models import StaffUser
from app.staff.roles import home_for, may_open

# In the session: whether the provider said it checked a second factor (its ID token's `amr` or `acr`).
SECOND_FACTOR_FROM_PROVIDER = "second_factor_from_provider"

PASSWORD = "password"
SINGLE_SIGN_ON = "single sign-on"


def complete_sign_in(user: StaffUser, *, second_factor_from_provider: bool, method: str,
                     next_target: str | None = None) -> Response:
    """Sign `user` in (their identity is proven by `method`) and send them where they may go."""
    session.clear()
    login_user(user)
    session.permanent = True
    session[SIGNED_IN_AT] = int(time.time())
    session[SECOND_FACTOR_FROM_PROVIDER] = second_factor_from_provider
    user.last_sign_in_at = utcnow()
    audit.note(audit.Action.SIGN_IN, subject=user.username,
               detail=sign_in_detail(method, break_glass=user.break_glass,
                                     second_factor_from_provider=second_factor_from_provider))
    db.session.commit()
    return redirect(landing(next_target, user.role))


def sign_in_detail(method: str, *, break_glass: bool, second_factor_from_provider: bool) -> str:
    """How the person proved who they are, as the audit log says it (the break-glass account stands out)."""
    if method == SINGLE_SIGN_ON:
        factor = "the provider checked a second factor" if second_factor_from_provider else \
            "the provider reported no second factor"
        return f"{SINGLE_SIGN_ON}; {factor}"
    return f"{method}, break-glass account" if break_glass else method


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
