"""The phone page: the PASSID mobile app, played by a person in a browser.

It opens a request from its deep link or its 8-character code, shows the
consent screen (who is asking, for what, for how long), and fulfils or
declines it as the chosen sandbox profile. It also mints and revokes one-time
share tokens for the manual flow. It calls the same functions the API does.
"""

from __future__ import annotations

import re

from babel import Locale
from flask import abort, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, lazy_gettext
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.plumbing.database import db, utcnow
from app.sandbox import DEMO_SLOT, bridge, webhooks
from app.sandbox.blueprint import bp
from app.sandbox.errors import ApiError
from app.sandbox.identifiers import normalise_code, normalise_token
from app.sandbox.models import SandboxInstitution, SandboxRequest, SandboxShareToken
from app.sandbox.profiles import PERMISSIONS, PROFILES, Profile

# Lazy: worded in the language of the request that shows them, not of the import.
PERMISSION_WORDS = {
    "full_score": lazy_gettext("Your financial stability score (FSI) and its tier"),
    "income_verified": lazy_gettext("Whether your income is verified, and its band"),
    "identity_verified": lazy_gettext("Whether your identity is verified"),
    "sanctions_clear": lazy_gettext("Whether you are clear of sanctions lists"),
    "payment_reliability": lazy_gettext("How reliably you pay your bills"),
    "savings_consistency": lazy_gettext("How consistently you save"),
    "fraud_risk": lazy_gettext("Your fraud risk level (low, medium or high)"),
}


def profile_label(profile: Profile) -> str:
    """A sandbox person as the phone lists them ("Amani (Kenya → United Kingdom), tier A"): the countries of
    their corridor in the page's language, from Babel's names."""
    origin, destination = profile.corridor.split("→")
    names = (get_locale() or Locale("en")).territories
    return _("%(name)s (%(origin)s → %(destination)s), tier %(tier)s", name=profile.display_name.split(" ")[0],
             origin=names.get(origin, origin), destination=names.get(destination, destination), tier=profile.tier)


@bp.context_processor
def _phone_words() -> dict[str, object]:
    return {"profile_label": profile_label}


_DEEP_LINK_REQUEST = re.compile(r"[?&]r=(req_[A-Za-z0-9]+)")


@bp.get("/phone")
def phone_home() -> str | Response:
    request_id = request.args.get("r")
    if request_id:
        return redirect(url_for("sandbox.phone_request", request_id=request_id))
    return render_template("sandbox/phone_home.html", error=None, entered="")


@bp.post("/phone/open")
def phone_open() -> ResponseReturnValue:
    """Accept what a person pastes: the 8-character code or the whole deep link."""
    entered = request.form.get("code", "")[:300]
    deep_link = _DEEP_LINK_REQUEST.search(entered)
    if deep_link:
        return redirect(url_for("sandbox.phone_request", request_id=deep_link.group(1)))
    code = normalise_code(entered)
    if code is None:
        return _home_error(entered, _("Type the 8-character code shown beside the QR, like AB3X-7YQM."))
    try:
        request_row = bridge.find_request_by_code(code)
    except ApiError:
        return _home_error(entered, _("No verification request has that code. Check it and try again."))
    return redirect(url_for("sandbox.phone_request", request_id=request_row.id))


def _home_error(entered: str, message: str) -> tuple[str, int]:
    return render_template("sandbox/phone_home.html", error=message, entered=entered), 400


@bp.get("/phone/request/<request_id>")
def phone_request(request_id: str) -> str | tuple[str, int]:
    request_row = _request_or_404(request_id)
    status = request_row.effective_status(utcnow())
    if status != "pending":
        return render_template("sandbox/phone_done.html", request_row=request_row, status=status), 410
    return render_template(
        "sandbox/phone_consent.html",
        request_row=request_row,
        view=bridge.public_view(request_row),
        profiles=PROFILES,
        words=PERMISSION_WORDS,
        error=None,
    )


@bp.post("/phone/request/<request_id>")
def phone_answer(request_id: str) -> str | tuple[str, int]:
    request_row = _request_or_404(request_id)
    profile = normalise_token(request.form.get("profile", "")) or ""
    if profile not in PROFILES:
        profile = next(iter(PROFILES))
    try:
        if request.form.get("action") == "decline":
            bridge.decline_request(request_row, "Declined by the customer")
            db.session.commit()
            status = "declined"
        else:
            chosen = [p for p in request.form.getlist("permissions") if p in request_row.permissions]
            if not chosen:
                return render_template(
                    "sandbox/phone_consent.html",
                    request_row=request_row,
                    view=bridge.public_view(request_row),
                    profiles=PROFILES,
                    words=PERMISSION_WORDS,
                    error=_("Choose at least one thing to share, or decline."),
                ), 400
            bridge.fulfil_request(request_row, profile, chosen)
            webhooks.commit_and_wake()
            status = "completed"
    except ApiError as gone:
        db.session.rollback()
        request_row = _request_or_404(request_id)
        return render_template(
            "sandbox/phone_done.html",
            request_row=request_row,
            status=request_row.effective_status(utcnow()),
            note=_("This request was already answered or has run out, so your answer was not recorded."),
        ), gone.status
    return render_template("sandbox/phone_done.html", request_row=request_row, status=status)


def _request_or_404(request_id: str) -> SandboxRequest:
    try:
        return bridge.find_request(request_id)
    except ApiError:
        abort(_missing())


def _missing() -> Response:
    """A link or token the sandbox does not know: a phone page in the customer's language, not Werkzeug's."""
    return make_response(render_template("sandbox/phone_missing.html"), 404)


@bp.route("/phone/share", methods=["GET", "POST"])
def phone_share() -> str | tuple[str, int]:
    """Mint a one-time share token, as the app's "share manually" screen does.

    It names no institution but the demo one (filled in): a stranger must not learn who else uses
    this sandbox. Any other institution is reached by typing its id, which its owner got when it
    onboarded.
    """
    demo = db.session.execute(
        db.select(SandboxInstitution).filter_by(demo_slot=DEMO_SLOT)
    ).scalar_one_or_none()
    entered = demo.id if demo is not None else ""
    minted: SandboxShareToken | None = None
    error = None
    status = 200
    if request.method == "POST":
        profile = normalise_token(request.form.get("profile", "")) or ""
        entered = request.form.get("institution", "").strip()[:64]
        institution = None if "\x00" in entered or not entered else db.session.get(SandboxInstitution, entered)
        chosen = [p for p in request.form.getlist("permissions") if p in PERMISSIONS]
        if profile not in PROFILES or institution is None or not chosen:
            error, status = _("Choose a profile, an institution and at least one thing to share."), 400
            if entered and institution is None:
                error = _("Choose a profile, an institution and at least one thing to share. No institution has "
                          "the id you typed.")
        else:
            minted = bridge.mint_share_token(profile, institution, chosen, None)
            db.session.commit()
    return render_template(
        "sandbox/phone_share.html",
        demo=demo,
        entered_institution=entered if "\x00" not in entered else "",
        profiles=PROFILES,
        permissions=PERMISSIONS,
        words=PERMISSION_WORDS,
        minted=minted,
        error=error,
    ), status


@bp.post("/phone/share/revoke")
def phone_revoke() -> tuple[str, int]:
    token = normalise_token(request.form.get("token", "")) or ""
    share = db.session.get(SandboxShareToken, token)
    if share is None:
        abort(_missing())
    bridge.revoke_share_token(share.profile, token)
    db.session.commit()
    return render_template("sandbox/phone_revoked.html", token=token), 200
