"""The console's redaction page (admins only): erase one person's data at once, with the reason recorded.

The erasing itself is `app.rules.retention.redact`, the same call as `flask passid redact`. The page asks for a
reason and an explicit confirmation, because nothing brings the data back; it shows which verifications
the redaction will reach (the same person's, by token and session) before anything is erased.

A verification made for one of the institution's references also offers "every record of this reference"
(`app.rules.retention.redact_reference`, as `flask passid redact --reference`): each verification and session
carrying it, for an erasure request the bank filed under its own reference.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext, ngettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional, Regexp

from app.console.routes import _stop, bp
from app.rules import verifications
from app.rules.retention import (
    REASON_MAX,
    AlreadyRedacted,
    Erased,
    Redaction,
    RedactionRefused,
    UnknownResult,
    redact,
    redact_reference,
)
from app.staff.roles import Role, require_role


class RedactionForm(FlaskForm):
    reason = TextAreaField(lazy_gettext("Reason"), validators=[
        InputRequired(lazy_gettext("Say why this person's data is erased.")),
        Length(max=REASON_MAX, message=lazy_gettext("At most %(max)d characters.", max=REASON_MAX)),
        # as `clean_reason` refuses it: no database column takes one
        Regexp(r"\A[^\x00]*\Z", message=lazy_gettext("The reason cannot contain a NUL character.")),
    ])
    # "person": this verification and the same person's; "reference": every record of the row's reference.
    scope = StringField(default="person", validators=[
        Optional(), AnyOf(("person", "reference"), message=lazy_gettext("Choose what to erase."))])
    confirm = BooleanField(
        lazy_gettext("I understand that this erases this person's claims, tokens, codes and webhook bodies for good."),
        validators=[DataRequired(lazy_gettext("Tick the box to confirm the erasure."))],
    )


def erased_in_words(erased: Erased) -> str:
    """`Erased.describe()` in the staff member's language (that one stays English: the audit detail and the CLI)."""
    return ", ".join((
        ngettext("%(num)d verification", "%(num)d verifications", erased.verifications),
        ngettext("%(num)d webhook body", "%(num)d webhook bodies", erased.webhook_bodies),
        ngettext("%(num)d outcome report", "%(num)d outcome reports", erased.outcome_reports),
        ngettext("%(num)d session link", "%(num)d session links", erased.session_links),
        ngettext("%(num)d review note", "%(num)d review notes", erased.review_notes),
        *([ngettext("%(num)d session", "%(num)d sessions", erased.sessions)] if erased.sessions else []),
    ))


@bp.route("/verifications/<result_id>/redact", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def redaction(result_id: str) -> tuple[str, int] | Response:
    row = verifications.find(result_id[:40])
    if row is None:
        _stop(404, _("No verification has this id."))
    form = RedactionForm()
    if row.redacted_at is not None:
        return render_template("console/redaction.html", row=row, form=None), 200
    if not form.is_submitted():
        return render_template("console/redaction.html", row=row, form=form), 200
    reason = " ".join((form.reason.data or "").split())
    form.reason.data = reason
    if not form.validate() or not reason:
        if not reason and not form.reason.errors:
            form.reason.errors = [_("Say why this person's data is erased.")]
        return render_template("console/redaction.html", row=row, form=form,
                               problem=_("Please correct the highlighted fields.")), 422
    if form.scope.data == "reference" and not row.reference:
        form.scope.errors = [_("This verification has no reference.")]
        return render_template("console/redaction.html", row=row, form=form,
                               problem=_("Please correct the highlighted fields.")), 422
    try:
        done = _erase(row, reason, by_reference=form.scope.data == "reference")
    except AlreadyRedacted:  # a colleague was quicker: the wanted state holds
        flash(_("This verification had already been redacted."), "success")
        return redirect(url_for("console.verification", result_id=row.id), code=303)
    except UnknownResult:
        _stop(404, _("No verification has this id."))
    except RedactionRefused:  # every record of the reference erased meanwhile by a colleague: the wanted state
        flash(_("Every record of this reference had already been erased."), "success")
        return redirect(url_for("console.verification", result_id=row.id), code=303)
    flash(_message(done, by_reference=form.scope.data == "reference"), "success")
    return redirect(url_for("console.verification", result_id=row.id), code=303)


def _erase(row: verifications.Verification, reason: str, *, by_reference: bool) -> Redaction:
    if by_reference:
        assert row.reference is not None
        return redact_reference(row.reference, reason)
    return redact(row.id, reason)


def _message(done: Redaction, *, by_reference: bool) -> str:
    erased = erased_in_words(done.erased)
    if by_reference:
        return _("Erased every record of this reference: %(erased)s.", erased=erased)
    others = len(done.result_ids) - 1
    if others:
        message = ngettext("Redacted: %(erased)s (%(num)d more verification of the same person).",
                           "Redacted: %(erased)s (%(num)d more verifications of the same person).",
                           others, erased=erased)
    else:
        message = _("Redacted: %(erased)s.", erased=erased)
    return message
