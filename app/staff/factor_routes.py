"""The second factor's pages: the sign-in step, a first enrolment, and each staff member's own page.

The sign-in step and a first enrolment serve a *pending* sign-in (`app.staff.signing_in`): the password
held, nobody is signed in yet. Enrolling (a passkey or an authenticator app) serves either that pending
sign-in, for an account that has no factor yet, or a signed-in account from its own page; which one is
`_enrolling`'s to say. Passkeys need JavaScript (static/staff/passkeys.js speaks JSON to the views
below); authenticator codes and recovery codes are plain forms.

Adding or removing a factor from one's own page signs the account out everywhere else (this session
stays), as a new password does: a session opened with the old factors does not outlive them.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from werkzeug.wrappers import Response

from app.config import current_settings
from app.plumbing.database import db
from app.plumbing.rate_limits import limiter, second_factor_limit
from app.plumbing.staff_formatting import console_time
from app.rules import audit
from app.staff import factors, passkeys, recovery_codes, signing_in, totp
from app.staff.auth import login_manager
from app.staff.factors import AUTHENTICATOR_APP, PASSKEY, RECOVERY_CODE, FactorRefused, passkey_detail
from app.staff.models import StaffUser
from app.staff.roles import home_for
from app.staff.routes import TOO_MANY, bp, too_many_sign_ins

JSON = dict[str, Any]
# One budget per client address for every second-factor answer (codes, passkeys, enrolment codes) together.
second_factor_answers = limiter.shared_limit(second_factor_limit, scope="second_factor")


@bp.errorhandler(429)
def too_many(error: Exception) -> Response | tuple[str, int] | tuple[Response, int]:
    """Every 429 of the staff pages: JSON for the passkey calls, the page a form came from otherwise."""
    if request.is_json:
        return jsonify(error=str(TOO_MANY)), 429
    user = signing_in.pending_account()
    if request.endpoint == "staff.second_factor_code" and user is not None:
        return _challenge_page(user, error=str(TOO_MANY), status=429)
    return too_many_sign_ins()


def _unauthorized() -> Response:
    """What Flask-Login answers a request without a signed-in account (`app.staff.auth`)."""
    response: Response = login_manager.unauthorized()
    return response


def _me() -> StaffUser:
    """The signed-in account itself, not Flask-Login's proxy to it (signing it in again must not point at itself)."""
    user: StaffUser = current_user._get_current_object()
    return user


def _pending() -> StaffUser:
    """The account of a pending sign-in, or the request ends at the sign-in page."""
    user = signing_in.pending_account()
    if user is None:
        abort(redirect(url_for("staff.sign_in")))
    return user


def _enrolling() -> StaffUser:
    """The account a new factor is for: the signed-in one, or a pending sign-in's that has none yet.

    A pending sign-in for an account that already has a factor must pass it first: enrolling another
    would be a way round it.
    """
    if current_user.is_authenticated:
        return _me()
    user = signing_in.pending_account()
    if user is None or factors.has_second_factor(user.id):
        abort(_unauthorized())
    return user


def _after_enrolment(user: StaffUser, method: str) -> str:
    """Where the browser goes once a factor is added: signed in (a first enrolment), then the recovery codes."""
    if not current_user.is_authenticated:
        signing_in.finish_sign_in(user, second_factor=method)
        return url_for("staff.recovery_codes")
    _keep_only_this_session(user)
    signing_in.mark_second_factor_passed(method)
    return url_for("staff.recovery_codes") if not factors.recovery_codes_left(user.id) else url_for("staff.account")


def _keep_only_this_session(user: StaffUser) -> None:
    """End the account's other sessions (their cookies name the old session version) and keep this one."""
    user.end_sessions()
    db.session.commit()
    db.session.refresh(user)
    login_user(user)


def _json_body() -> JSON:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(make_response(jsonify(error=_("The browser sent no passkey answer.")), 400))
    return body


def _locked_sentence(user: StaffUser) -> str | None:
    until = factors.locked_until(user)
    if until is None:
        return None
    return _("Too many wrong answers: this account's second factor is locked until %(time)s. "
             "An administrator can reset it.", time=console_time(until))


# --- the sign-in step --------------------------------------------------------------------------------


def _challenge_page(user: StaffUser, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    return render_template(
        "staff/second_factor.html", account=user, factors=factors.factors_of(user.id),
        passkeys_here=passkeys.usable_here(), locked=_locked_sentence(user), error=error,
    ), status


@bp.get("/staff/sign-in/second-factor")
def second_factor() -> Response | tuple[str, int]:
    user = _pending()
    if not factors.has_second_factor(user.id):
        return redirect(url_for("staff.enrol"))
    return _challenge_page(user)


@bp.post("/staff/sign-in/second-factor")
@second_factor_answers
def second_factor_code() -> Response | tuple[str, int]:
    """An authenticator code, or a recovery code (`method=recovery`)."""
    user = _pending()
    recovery = request.form.get("method") == "recovery"
    locked = _locked_sentence(user)
    if locked:
        factors.note_failure(user, RECOVERY_CODE if recovery else AUTHENTICATOR_APP, "answered while locked")
        return _challenge_page(user, error=locked, status=423)
    typed = request.form.get("code", "")
    if recovery:
        if recovery_codes.use(user, typed):
            return redirect(signing_in.finish_sign_in(user, second_factor=RECOVERY_CODE))
        method, why = RECOVERY_CODE, "not an unused recovery code of this account"
        error = _("That is not an unused recovery code of this account.")
    else:
        checked = totp.check(user, typed)
        if checked == "ok":
            return redirect(signing_in.finish_sign_in(user, second_factor=AUTHENTICATOR_APP))
        method = AUTHENTICATOR_APP
        why = "a code already used" if checked == "replayed" else "wrong code"
        error = (_("That code has been used already. Wait for the next one in your app.") if checked == "replayed"
                 else _("Wrong code. Type the six digits your authenticator app shows now."))
    if factors.note_failure(user, method, why):
        error = _locked_sentence(user) or error
    return _challenge_page(user, error=error, status=401)


@bp.post("/staff/sign-in/passkey/options")
def passkey_sign_in_options() -> Response:
    user = _pending()
    return Response(passkeys.authentication_options(user), mimetype="application/json")


@bp.post("/staff/sign-in/passkey")
@second_factor_answers
def passkey_sign_in() -> Response | tuple[Response, int]:
    user = _pending()
    body = _json_body()
    locked = _locked_sentence(user)
    if locked:
        factors.note_failure(user, PASSKEY, "answered while locked")
        return jsonify(error=locked), 423
    try:
        passkey = passkeys.authenticate(user, body.get("credential"))
    except passkeys.PasskeyFailed as failed:
        factors.note_failure(user, PASSKEY, failed.why)
        return jsonify(error=_locked_sentence(user) or str(failed)), 401
    return jsonify(redirect=signing_in.finish_sign_in(user, second_factor=passkey_detail(passkey.name)))


@bp.get("/staff/sign-in/enrol")
def enrol() -> Response | str:
    """A first enrolment, for an account that must have a second factor and has none: this page, and nowhere else."""
    if current_user.is_authenticated:
        return redirect(url_for("staff.account"))
    user = _pending()
    if factors.has_second_factor(user.id):
        return redirect(url_for("staff.second_factor"))
    return render_template("staff/enrol.html", account=user, passkeys_here=passkeys.usable_here(),
                           default_passkey_name=passkeys.default_name(user))


# --- enrolling: a first one at sign-in, or more from one's own page ----------------------------------


@bp.route("/staff/second-factor/app", methods=["GET", "POST"])
@limiter.shared_limit(second_factor_limit, scope="second_factor", methods=["POST"])
def totp_setup() -> Response | tuple[str, int]:
    """An authenticator app: the QR code and the secret, then a first code to prove the app holds it."""
    user = _enrolling()
    try:
        secret = totp.start(user)
    except FactorRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for("staff.account"))
    error = None
    if request.method == "POST":
        if totp.confirm(user, request.form.get("code")):
            return redirect(_after_enrolment(user, AUTHENTICATOR_APP))
        error = _("Wrong code. Check that the app shows this account, then type the six digits it shows now.")
    uri = totp.provisioning_uri(user, secret)
    page = render_template("staff/totp_setup.html", account=user, qr=totp.qr_svg(uri), secret=totp.grouped(secret),
                           error=error, signed_in=current_user.is_authenticated)
    return _no_store(page, 422 if error else 200)


@bp.post("/staff/second-factor/passkeys/options")
def passkey_register_options() -> Response:
    user = _enrolling()
    return Response(passkeys.registration_options(user), mimetype="application/json")


@bp.post("/staff/second-factor/passkeys")
@second_factor_answers
def passkey_register() -> Response | tuple[Response, int]:
    user = _enrolling()
    body = _json_body()
    try:
        passkey = passkeys.register(user, body.get("credential"), str(body.get("name") or ""))
    except FactorRefused as refused:
        return jsonify(error=str(refused)), 400
    flash(_("Passkey “%(name)s” added.", name=passkey.name), "success")
    return jsonify(redirect=_after_enrolment(user, PASSKEY))


# --- one's own page ----------------------------------------------------------------------------------


def _no_store(page: str, status: int = 200) -> Response:
    """A page holding a secret (an authenticator secret, recovery codes): kept by no cache, shown once."""
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/staff/account")
@login_required
def account() -> str:
    user = _me()
    return render_template(
        "staff/account.html", factors=factors.factors_of(user.id), passkeys_here=passkeys.usable_here(),
        required=factors.role_requires_second_factor(user.role, current_settings().staff_mfa),
        default_passkey_name=passkeys.default_name(user), home=home_for(user.role),
    )


def _refuse_last(user: StaffUser) -> bool:
    """Whether removing one factor would leave an account that needs one with none."""
    have = factors.factors_of(user.id)
    return len(have.passkeys) + int(have.totp) <= 1 and not factors.may_remove_last_factor(user)


def _removed(user: StaffUser, what: str) -> None:
    """Audit, drop the recovery codes if no factor is left, and end the account's other sessions."""
    audit.note(audit.Action.SECOND_FACTOR_REMOVED, subject=user.username, detail=what)
    db.session.flush()
    if not factors.has_second_factor(user.id):
        factors.delete_all(user)
    _keep_only_this_session(user)


@bp.post("/staff/account/passkeys/<int:passkey_id>/remove")
@login_required
def remove_passkey(passkey_id: int) -> Response:
    user = _me()
    if _refuse_last(user):
        flash(_("Your role needs a second factor: add another before removing the last one."), "error")
        return redirect(url_for("staff.account"), code=303)
    passkey = passkeys.remove(user, passkey_id)
    if passkey is None:
        abort(404)
    _removed(user, passkey_detail(passkey.name))
    flash(_("Passkey “%(name)s” removed; your other sessions have ended.", name=passkey.name), "success")
    return redirect(url_for("staff.account"), code=303)


@bp.post("/staff/account/app/remove")
@login_required
def remove_totp() -> Response:
    user = _me()
    if _refuse_last(user):
        flash(_("Your role needs a second factor: add another before removing the last one."), "error")
        return redirect(url_for("staff.account"), code=303)
    if totp.remove(user):
        _removed(user, AUTHENTICATOR_APP)
        flash(_("Authenticator app removed; your other sessions have ended."), "success")
    return redirect(url_for("staff.account"), code=303)


@bp.route("/staff/account/recovery-codes", methods=["GET", "POST"], endpoint="recovery_codes")
@login_required
def recovery_codes_page() -> Response | str:
    """How many are left and a button to make new ones; the new ones are shown on the answer, once."""
    user = _me()
    if not factors.has_second_factor(user.id):
        return redirect(url_for("staff.account"))
    codes = recovery_codes.create(user) if request.method == "POST" else None
    page = render_template("staff/recovery_codes.html", codes=codes, left=factors.recovery_codes_left(user.id),
                           home=home_for(user.role))
    return _no_store(page)
