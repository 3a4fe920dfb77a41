"""Flask-Login for staff sessions, Flask-WTF CSRF on every staff form.

The public widget, the webhook receiver and the sandbox are exempt from
CSRF: they use no cookie session at all, so there is nothing to forge.
"""

from __future__ import annotations

from flask import Flask, flash, redirect, render_template, request, session, url_for
from flask.sansio.blueprints import Blueprint
from flask_babel import gettext
from flask_login import LoginManager, current_user
from flask_login.utils import login_url
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response

from app.plumbing import password_accounts
from app.plumbing.database import db
from app.staff.accounts import password_accounts as list_password_accounts
from app.staff.factors import needs_second_factor
from app.staff.models import StaffUser, parse_session_id
from app.staff.roles import may_open, role_name
from app.staff.signing_in import (
    SECOND_FACTOR,
    SIGNED_IN_AT,
    STAFF_SESSION_LIFETIME,
    pending_account,
    signed_in_lately,
)
from app.staff.sso import init_sso

login_manager = LoginManager()
csrf = CSRFProtect()


def init_staff(app: Flask, *, csrf_exempt: tuple[Blueprint, ...]) -> None:
    # Set, not setdefault: Flask already defines it (31 days), so setdefault would keep a month-long cookie.
    # Flask enforces it on the server too, from the cookie's signed timestamp.
    app.config["PERMANENT_SESSION_LIFETIME"] = STAFF_SESSION_LIFETIME
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    login_manager.init_app(app)
    login_manager.login_view = "staff.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.localize_callback = gettext  # flashed in the staff member's language
    login_manager.session_protection = "strong"
    login_manager.unauthorized_handler(_unauthorized)
    csrf.init_app(app)
    for blueprint in csrf_exempt:
        csrf.exempt(blueprint)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.add_template_global(_may_open, "may_open")
    app.add_template_global(role_name, "role_name")  # the staff list, the audit log, the 403 page
    init_sso(app)  # the bank's provider, when configured
    password_accounts.offer(app, list_password_accounts)  # for the go-live checklist


def _may_open(endpoint: str) -> bool:
    """For the staff nav: whether the signed-in account may open `endpoint`."""
    return current_user.is_authenticated and may_open(endpoint, current_user.role)


@login_manager.user_loader
def _load_user(session_id: str) -> StaffUser | None:
    """The signed-in account, unless its sessions were ended (sign-out, new password or role, disabled), or it
    needs a second factor this session has not passed (PASSID_STAFF_MFA changed, or a factor was enrolled, since)."""
    parsed = parse_session_id(session_id)
    if parsed is None:
        return None
    user_id, session_version = parsed
    if not signed_in_lately(session.get(SIGNED_IN_AT)):
        return None
    user = db.session.get(StaffUser, user_id)
    if user is None or user.disabled_at is not None:  # disabling ends the sessions too: a second lock
        return None
    if user.session_version != session_version:
        return None
    if not session.get(SECOND_FACTOR) and needs_second_factor(user):
        return None
    return user


def _unauthorized() -> Response:
    """Not signed in: a pending sign-in goes back to its second-factor step (or enrolment), and nowhere else;
    anyone else to the sign-in page, with `next` (Flask-Login's own behaviour)."""
    if pending_account() is not None:
        return redirect(url_for("staff.second_factor"))
    flash(gettext(login_manager.login_message), login_manager.login_message_category)
    return redirect(login_url("staff.sign_in", next_url=request.url))


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    return render_template("staff/form_expired.html", reason=error.description), 400
