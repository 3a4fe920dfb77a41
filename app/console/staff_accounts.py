"""The console's staff page (admins only): every account, and the changes `flask staff` can make.

The rules (and the audit entries) are `app.staff.accounts`'s, shared with the CLI; here each form
is parsed, the change made, and the page shown again with what happened or why it was refused.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired

from app.console.routes import bp
from app.plumbing.database import db
from app.plumbing.page_refusals import stop_with_page
from app.staff import accounts, factors
from app.staff.accounts import AccountRefused
from app.staff.models import StaffUser
from app.staff.roles import ROLE_NAMES, Role, require_role, role_name

ROLE_CHOICES = [(role.value, ROLE_NAMES[role]) for role in Role]


class NewAccountForm(FlaskForm):
    username = StringField(lazy_gettext("Name"), validators=[InputRequired(lazy_gettext("Give the account a name."))])
    role = StringField(lazy_gettext("Role"),  # parse_role says which exist
                       validators=[InputRequired(lazy_gettext("Choose a role."))])
    password = PasswordField(lazy_gettext("Password"),
                             validators=[InputRequired(lazy_gettext("Give the account a password."))])


class PasswordForm(FlaskForm):
    password = PasswordField(lazy_gettext("New password"),
                             validators=[InputRequired(lazy_gettext("Type the new password."))])


class RoleForm(FlaskForm):
    role = StringField(lazy_gettext("Role"),  # parse_role says which exist
                       validators=[InputRequired(lazy_gettext("Choose a role."))])


def _page(status: int = 200, *, new_account: NewAccountForm | None = None,
          problem: str | None = None) -> tuple[str, int]:
    return render_template(
        "console/staff.html",
        accounts=accounts.all_accounts(),
        factors_of=factors.factors_of,
        new_account=new_account or NewAccountForm(formdata=None),
        role_choices=ROLE_CHOICES,
        min_password=accounts.MIN_PASSWORD_LENGTH,
        problem=problem,
    ), status


def _account(staff_id: int) -> StaffUser:
    user = db.session.get(StaffUser, staff_id)
    if user is None:
        stop_with_page(404, "console/message.html", message=_("No staff account has this id."))
    return user


def _form_problem(form: FlaskForm) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def _done(message: str) -> Response:
    flash(message, "success")
    return redirect(url_for("console.staff_accounts"), code=303)


@bp.get("/staff")
@require_role(Role.ADMIN)
def staff_accounts() -> tuple[str, int]:
    return _page()


@bp.post("/staff")
@require_role(Role.ADMIN)
def create_staff_account() -> tuple[str, int] | Response:
    form = NewAccountForm()
    if not form.validate_on_submit():
        return _page(422, new_account=form, problem=_form_problem(form))
    try:
        user = accounts.create_account(form.username.data or "", accounts.parse_role(form.role.data),
                                       form.password.data or "", by=current_user)
    except AccountRefused as error:
        return _page(422, new_account=form, problem=str(error))
    return _done(_("Created %(name)s (%(role)s).", name=user.username, role=role_name(user.role)))


@bp.post("/staff/<int:staff_id>/password")
@require_role(Role.ADMIN)
def reset_staff_password(staff_id: int) -> tuple[str, int] | Response:
    user, form = _account(staff_id), PasswordForm()
    if not form.validate_on_submit():
        return _page(422, problem=_form_problem(form))
    try:
        accounts.reset_password(user, form.password.data or "", by=current_user)
    except AccountRefused as error:
        return _page(422, problem=_("%(name)s: %(problem)s", name=user.username, problem=str(error)))
    return _done(_("New password set for %(name)s; their sessions have ended.", name=user.username))


@bp.post("/staff/<int:staff_id>/role")
@require_role(Role.ADMIN)
def change_staff_role(staff_id: int) -> tuple[str, int] | Response:
    user, form = _account(staff_id), RoleForm()
    if not form.validate_on_submit():
        return _page(422, problem=_form_problem(form))
    try:
        role = accounts.parse_role(form.role.data)
    except AccountRefused as error:
        return _page(422, problem=str(error))
    try:
        changed = accounts.change_role(user, role, by=current_user)
    except AccountRefused as error:
        return _page(409, problem=str(error))
    if not changed:
        return _done(_("%(name)s already is %(role)s.", name=user.username, role=role_name(user.role)))
    return _done(_("%(name)s is now %(role)s; their sessions have ended.", name=user.username,
                   role=role_name(user.role)))


@bp.post("/staff/<int:staff_id>/disable")
@require_role(Role.ADMIN)
def disable_staff_account(staff_id: int) -> tuple[str, int] | Response:
    user = _account(staff_id)
    try:
        accounts.disable(user, by=current_user)
    except AccountRefused as error:
        return _page(409, problem=str(error))
    return _done(_("Disabled %(name)s; their sessions have ended.", name=user.username))


@bp.post("/staff/<int:staff_id>/enable")
@require_role(Role.ADMIN)
def enable_staff_account(staff_id: int) -> Response:
    user = _account(staff_id)
    accounts.enable(user, by=current_user)
    return _done(_("Enabled %(name)s.", name=user.username))


@bp.post("/staff/<int:staff_id>/second-factor/reset")
@require_role(Role.ADMIN)
def reset_staff_second_factor(staff_id: int) -> tuple[str, int] | Response:
    user = _account(staff_id)
    try:
        reset = accounts.reset_second_factor(user, by=current_user)
    except AccountRefused as error:
        return _page(409, problem=str(error))
    if not reset:
        return _done(_("%(name)s has no second factor to reset.", name=user.username))
    return _done(_("Second factor reset for %(name)s; their sessions have ended.", name=user.username))
