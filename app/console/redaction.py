"""The console's redaction page (admins only): erase one person's data at once, with the reason recorded.

The erasing itself is `app.retention.redact`, the same call as `flask passid redact`. The page asks for a
reason and an explicit confirmation, because nothing brings the data back; it shows which verifications
the redaction will reach (the same person's, by token and session) before anything is erased.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from app import verifications
from app.console.routes import _stop, bp
from app.retention import REASON_MAX, AlreadyRedacted, UnknownResult, redact
from app.staff.roles import Role, require_role


class RedactionForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[InputRequired("Say why this person's data is erased."),
                                                 Length(max=REASON_MAX, message=f"At most {REASON_MAX} characters."),
                                                 # as `clean_reason` refuses it: no database column takes one
                                                 Regexp(r"\A[^\x00]*\Z", message="The reason cannot contain a NUL "
                                                                                   "character.")])
    confirm = BooleanField("I understand that this erases this person's claims, tokens, codes and webhook bodies "
                           "for good.", validators=[DataRequired("Tick the box to confirm the erasure.")])


@bp.route("/verifications/<result_id>/redact", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def redaction(result_id: str) -> tuple[str, int] | Response:
    row = verifications.find(result_id[:40])
    if row is None:
        _stop(404, "No verification has this id.")
    form = RedactionForm()
    if row.redacted_at is not None:
        return render_template("console/redaction.html", row=row, form=None), 200
    if not form.is_submitted():
        return render_template("console/redaction.html", row=row, form=form), 200
    reason = " ".join((form.reason.data or "").split())
    form.reason.data = reason
    if not form.validate() or not reason:
        if not reason and not form.reason.errors:
            form.reason.errors = ["Say why this person's data is erased."]
        return render_template("console/redaction.html", row=row, form=form,
                               problem="Please correct the highlighted fields."), 422
    try:
        done = redact(row.id, reason)
    except AlreadyRedacted:  # a colleague was quicker: the wanted state holds
        flash("This verification had already been redacted.", "success")
        return redirect(url_for("console.verification", result_id=row.id), code=303)
    except UnknownResult:
        _stop(404, "No verification has this id.")
    others = len(done.result_ids) - 1
    flash(f"Redacted: {done.erased.describe()}" + (f" ({others} more verification{'s' if others != 1 else ''} "
                                                   "of the same person)." if others else "."), "success")
    return redirect(url_for("console.verification", result_id=row.id), code=303)
