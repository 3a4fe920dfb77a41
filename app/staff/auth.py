"""Flask-Login for staff sessions, Flask-WTF CSRF on every staff form.

The public widget, the webhook receiver and the sandbox are exempt from
CSRF: they use no cookie session at all, so there is nothing to forge.
"""

from __future__ import annotations

import time
from datetime import timedelta

import click
from flask import Flask, render_template, session
from flask.sansio.blueprints import Blueprint
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect

from app.database import db
from app.staff.models import StaffUser, find_staff, parse_session_id

login_manager = LoginManager()
csrf = CSRFProtect()

MIN_PASSWORD_LENGTH = 12
STAFF_SESSION_LIFETIME = timedelta(hours=8)
SIGNED_IN_AT = "signed_in_at"  # in the session: when the password was checked (epoch seconds)


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
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    for blueprint in csrf_exempt:
        csrf.exempt(blueprint)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.cli.add_command(staff_group)


@login_manager.user_loader
def _load_user(session_id: str) -> StaffUser | None:
    """The signed-in account, unless its sessions were ended (sign-out, password change) since this cookie."""
    parsed = parse_session_id(session_id)
    if parsed is None:
        return None
    user_id, session_version = parsed
    if not signed_in_lately(session.get(SIGNED_IN_AT)):
        return None
    user = db.session.get(StaffUser, user_id)
    return user if user is not None and user.session_version == session_version else None


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


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    return render_template("staff/form_expired.html", reason=error.description), 400


@click.group("staff")
def staff_group() -> None:
    """Staff accounts for branch mode and the console."""


@staff_group.command("create")
@click.argument("username")
@click.password_option(help="At least 12 characters; prompted for when omitted.")
def create_staff(username: str, password: str) -> None:
    """Create a staff account (or reset its password, which signs that account out everywhere)."""
    name = username.strip().lower()
    if not 1 <= len(name) <= 80:
        raise click.BadParameter("must be 1–80 characters", param_hint="USERNAME")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(f"must be at least {MIN_PASSWORD_LENGTH} characters", param_hint="password")
    user = find_staff(name)
    created = user is None
    if user is None:
        user = StaffUser(username=name)
        db.session.add(user)
    else:
        user.end_sessions()  # a new password signs out whoever held the old one
    user.set_password(password)
    db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} staff account {name!r}.")
