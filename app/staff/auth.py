"""Flask-Login for staff sessions, Flask-WTF CSRF on every staff form.

The public widget, the webhook receiver and the sandbox are exempt from
CSRF: they use no cookie session at all, so there is nothing to forge.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask, render_template
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect

from app.database import db
from app.staff.models import StaffUser, find_staff

login_manager = LoginManager()
csrf = CSRFProtect()

MIN_PASSWORD_LENGTH = 12


def init_staff(app: Flask, *, csrf_exempt: tuple[str, ...]) -> None:
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=8))
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
def _load_user(user_id: str) -> StaffUser | None:
    return db.session.get(StaffUser, int(user_id)) if user_id.isdigit() else None


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    return render_template("staff/form_expired.html", reason=error.description), 400


@click.group("staff")
def staff_group() -> None:
    """Staff accounts for branch mode and the console."""


@staff_group.command("create")
@click.argument("username")
@click.password_option(help="At least 12 characters; prompted for when omitted.")
def create_staff(username: str, password: str) -> None:
    """Create a staff account (or reset its password)."""
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
    user.set_password(password)
    db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} staff account {name!r}.")
