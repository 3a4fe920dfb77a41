"""Sign in (with a password, or through the bank's single sign-on: the first factor) and sign out.

The second factor's steps, between the first and a signed-in session: `app.staff.factor_routes`.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user, login_required, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.config import current_settings
from app.plumbing.database import db
from app.plumbing.rate_limits import limiter, sign_in_limit
from app.rules import audit
from app.staff import sso
from app.staff.accounts import AccountRefused, account_from_provider, linked_account
from app.staff.models import check_sign_in
from app.staff.signing_in import PASSWORD, SINGLE_SIGN_ON, complete_sign_in, safe_next

log = logging.getLogger(__name__)

bp = Blueprint("staff", __name__)


class SignInForm(FlaskForm):
    username = StringField(lazy_gettext("Username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=256)])


TOO_MANY = lazy_gettext("Too many sign-in attempts from this device. Wait a minute and try again.")


def too_many_sign_ins() -> tuple[str, int]:
    """The sign-in page's 429 (`app.staff.factor_routes` answers every 429 of this blueprint)."""
    return render_template("staff/sign_in.html", form=SignInForm(), error=str(TOO_MANY)), 429


@bp.route("/staff/sign-in", methods=["GET", "POST"])
@limiter.limit(sign_in_limit, methods=["POST"])
def sign_in() -> str | Response | tuple[str, int]:
    form = SignInForm()
    if form.validate_on_submit():
        tried = form.username.data or ""
        check = check_sign_in(tried, form.password.data or "")
        user = check.user
        if user is not None:
            # Signed in now, or (a second factor needed) sent to that step: a password alone opens no staff page.
            return complete_sign_in(user, second_factor_from_provider=False, method=PASSWORD,
                                    next_target=request.args.get("next"))
        # Nobody proved who they are, so the actor is "an unknown user" (a typed "system" must not pose as the
        # app); an account the attempt named is its subject. The name tried (a typo of a real one, or a
        # password typed in the wrong box) is kept as data in the detail, which admins alone read.
        audit.record(audit.Action.SIGN_IN_FAILED, actor=audit.UNKNOWN_ACTOR, subject=check.account,
                     detail=check.audit_detail(tried))
        return render_template("staff/sign_in.html", form=form, error=_("Wrong username or password.")), 401
    status = 400 if request.method == "POST" else 200
    return render_template("staff/sign_in.html", form=form, error=None), status


# Where a single sign-on started by this browser goes once it is done (a path of this site, checked again then).
SSO_NEXT = "sso_next"


@bp.post("/staff/sso/start")
@limiter.limit(sign_in_limit)
def sso_start() -> Response | tuple[str, int]:
    """Off to the bank's provider, with a new state, nonce and PKCE verifier kept in this browser's session.

    A form post with its CSRF token, not a link: nothing but a person's press starts a sign-in.
    """
    if not current_settings().single_sign_on:
        return _sso_page(404, _("Single sign-on is not set up here."))
    next_target = safe_next(request.form.get("next"))
    try:
        started = sso.authorization_redirect()
    except sso.ProviderUnavailable as problem:
        log.warning("single sign-on could not start: %s", problem)
        return _provider_down(next_target)
    session[SSO_NEXT] = next_target
    return started


@bp.get("/staff/sso/callback")
@limiter.limit(sign_in_limit)
def sso_callback() -> Response | tuple[str, int]:
    """The provider's answer: the code exchanged, the ID token checked (Authlib), the account made or updated,
    and the staff member signed in; or a page saying why not, and an audit entry."""
    if not current_settings().single_sign_on:
        return _sso_page(404, _("Single sign-on is not set up here."))
    try:
        identity = sso.identity_from_callback()
    except sso.ProviderUnavailable as problem:
        log.warning("single sign-on could not finish: %s", problem)
        return _provider_down()
    except sso.SignInRejected as rejected:
        _refused(f"single sign-on rejected: {rejected}")
        return _sso_page(400, _("The sign-in could not be completed. Start again from the sign-in page."))
    settings = current_settings()
    role = sso.role_for(identity.role_values, settings.oidc_role_map)
    try:
        user = account_from_provider(identity.issuer, identity.subject, identity.name, role)
    except AccountRefused as refusal:
        # Recorded with what the refusal changed (a role taken away ends the account's sessions), in one commit.
        why = "no role mapped from the role claim" if role is None else str(refusal)
        values = json.dumps(list(identity.role_values)[:10], ensure_ascii=False)
        linked = linked_account(identity.issuer, identity.subject)
        _refused(f"single sign-on refused: {why}; claim {settings.oidc_role_claim} {values}; "
                 f"provider user {json.dumps(identity.name[:80], ensure_ascii=False)}",
                 subject=linked.username if linked is not None else None)
        return _sso_page(403, str(refusal))
    return complete_sign_in(user, second_factor_from_provider=identity.second_factor, method=SINGLE_SIGN_ON,
                            next_target=session.get(SSO_NEXT))


def _refused(detail: str, subject: str | None = None) -> None:
    """A single sign-on that signed nobody in, in the audit log: by nobody the app knows, as any failed sign-in."""
    audit.record(audit.Action.SIGN_IN_FAILED, actor=audit.UNKNOWN_ACTOR, subject=subject, detail=detail)


def _sso_page(status: int, message: str) -> tuple[str, int]:
    return render_template("staff/sso_refused.html", message=message), status


def _provider_down(next_target: str | None = None) -> tuple[str, int]:
    """The sign-in page again, saying the provider did not answer: its password form stays for break-glass."""
    message = _("The bank's sign-in service did not answer. Try again in a few minutes. If it stays down, "
                "an administrator can sign in with the break-glass account below.")
    return render_template("staff/sign_in.html", form=SignInForm(), error=message, next_target=next_target), 503


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


@bp.post("/staff/sign-in/cancel")
def cancel_sign_in() -> Response:
    """Leave a sign-in waiting for its second factor (or its first enrolment): the password is asked again."""
    session.clear()
    return redirect(url_for("staff.sign_in"))
