"""Sign in and sign out."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.plumbing.database import db, utcnow
from app.plumbing.rate_limits import limiter, sign_in_limit
from app.rules import audit
from app.staff.auth import SIGNED_IN_AT
from app.staff.models import check_sign_in
from app.staff.roles import home_for, may_open

bp = Blueprint("staff", __name__)


class SignInForm(FlaskForm):
    username = StringField(lazy_gettext("Username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=256)])


@bp.errorhandler(429)
def too_many_sign_ins(error: Exception) -> tuple[str, int]:
    message = _("Too many sign-in attempts from this device. Wait a minute and try again.")
    return render_template("staff/sign_in.html", form=SignInForm(), error=message), 429


def _landing(target: str | None, role: str) -> str:
    """`next` when it is a page of this site the account may open, else its role's home page."""
    path = _safe_next(target)
    if path is None:
        return home_for(role)
    try:
        endpoint, _arguments = current_app.url_map.bind("localhost").match(urlsplit(path).path, method="GET")
    except HTTPException:  # no such page (or a redirect to one): home instead
        return home_for(role)
    return path if may_open(str(endpoint), role) else home_for(role)


def _safe_next(target: str | None) -> str | None:
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


@bp.route("/staff/sign-in", methods=["GET", "POST"])
@limiter.limit(sign_in_limit, methods=["POST"])
def sign_in() -> str | Response | tuple[str, int]:
    form = SignInForm()
    if form.validate_on_submit():
        tried = form.username.data or ""
        check = check_sign_in(tried, form.password.data or "")
        user = check.user
        if user is not None:
            session.clear()
            login_user(user)
            session.permanent = True
            session[SIGNED_IN_AT] = int(time.time())
            user.last_sign_in_at = utcnow()
            audit.note(audit.Action.SIGN_IN, subject=user.username)
            db.session.commit()
            return redirect(_landing(request.args.get("next"), user.role))
        # Nobody proved who they are, so the actor is "an unknown user" (a typed "system" must not pose as the
        # app); an account the attempt named is its subject. The name tried (a typo of a real one, or a
        # password typed in the wrong box) is kept as data in the detail, which admins alone read.
        audit.record(audit.Action.SIGN_IN_FAILED, actor=audit.UNKNOWN_ACTOR, subject=check.account,
                     detail=check.audit_detail(tried))
        return render_template("staff/sign_in.html", form=form, error=_("Wrong username or password.")), 401
    status = 400 if request.method == "POST" else 200
    return render_template("staff/sign_in.html", form=form, error=None), status


@bp.post("/staff/sign-out")
@login_required
def sign_out() -> Response:
    """End the session on the server too: a copy of this cookie (or this account's on another device) stops working."""
    current_user.end_sessions()
    audit.note(audit.Action.SIGN_OUT, subject=current_user.username)
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("staff.sign_in"))
