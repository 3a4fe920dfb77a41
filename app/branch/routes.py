"""Branch mode: a tablet on the counter, manual entry first, staff only.

Results arrive as htmx swaps of one region and are wiped on "Next customer"
or after a configurable number of seconds; responses are `no-store`, so no
claims stay on screen, in the back/forward cache or in the browser history.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from app.config import current_settings
from app.passid import PassidError, ValidationError
from app.plumbing.htmx import htmx
from app.plumbing.i18n import chosen_locale
from app.plumbing.own_origin import own_origin
from app.plumbing.passid_connection import passid_client
from app.rules import audit, funnel, verifications
from app.rules.customer_wording import claim_lines
from app.rules.sessions import REFERENCE_MAX_LENGTH, is_usable_reference
from app.rules.token_forms import idempotency_key, submitted_token
from app.staff.roles import Role, require_role

bp = Blueprint("branch", __name__, url_prefix="/branch")


@bp.after_request
def never_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _render(template: str, status: int = 200, **context: object) -> tuple[str, int]:
    context.setdefault("reset_seconds", current_settings().branch_reset_seconds)
    return render_template(template, **context), status


def _audit_result_shown(result_id: str, where: str) -> None:
    """Who saw whose data, and where. Every result is a view of a person's: one without claims still shows
    the token and why it was denied (a sanctions match says as much about the person as a claim)."""
    audit.record(audit.Action.CLAIMS_VIEWED, subject=result_id, detail=where)


def _entry(error: str | None = None, status: int = 200, *, reference: str = "",
           reference_error: str | None = None) -> tuple[str, int]:
    template = "branch/_entry.html" if htmx else "branch/counter.html"
    return _render(template, status, nonce=secrets.token_urlsafe(16), error=error, view="entry",
                   reference=reference, reference_error=reference_error)


def _typed_reference() -> tuple[str | None, bool]:
    """The customer reference staff typed (optional): None when left blank, and whether it is usable.

    The same rule as a session's reference (`POST /api/sessions`), so the console finds a counter's
    verification and a session's alike, and erasing a reference erases both."""
    typed = request.form.get("reference", "").strip()
    if not typed:
        return None, True
    return typed, is_usable_reference(typed)


@bp.get("/")
@require_role(Role.COUNTER)
def counter() -> tuple[str, int]:
    funnel.note_shown(funnel.Channel.BRANCH, chosen_locale())
    return _entry()


@bp.get("/next")
@require_role(Role.COUNTER)
def next_customer() -> tuple[str, int]:
    """A clean entry form: the previous customer's result is gone from the page (the next one's, in the funnel)."""
    funnel.note_shown(funnel.Channel.BRANCH, chosen_locale())
    return _entry()


@bp.post("/verify")
@require_role(Role.COUNTER)
def verify() -> tuple[str, int]:
    reference, usable = _typed_reference()
    token, nonce = submitted_token()
    if not usable or token is None or nonce is None:  # each field's problem beside it, what was typed kept
        token_error = None if token is not None and nonce is not None else _(
            "That is not a PASSID token: 12 or 16 letters and numbers, like AB3X-7YQM-K9PQ-3MNX.")
        reference_error = None if usable else _(
            "A customer reference is at most %(max)d characters, on one line.", max=REFERENCE_MAX_LENGTH)
        return _entry(token_error, 422, reference=request.form.get("reference", "")[:200],
                      reference_error=reference_error)
    key = idempotency_key(nonce, token)
    permissions = list(current_settings().permissions)
    # The counter's layout is its own, not the widget's phone or desktop one: its device class is not known.
    journey = funnel.Journey(funnel.Channel.BRANCH, bool(htmx), chosen_locale(), funnel.Device.UNKNOWN)
    try:
        result = passid_client().verify(token, idempotency_key=key)
    except ValidationError:
        return _entry(_("PASSID did not accept that token format. Check it with the customer."), 422,
                      reference=reference or "")
    except PassidError:
        current_app.logger.warning("branch verify failed", exc_info=True)
        return _entry(_("PASSID could not be reached. Nothing was verified — try again in a moment."), 502,
                      reference=reference or "")
    with funnel.checking_token(journey):
        finished = verifications.record_verify_result(
            result, source=verifications.Source.BRANCH, idempotency_key=key, wanted=permissions, reference=reference
        )
    if finished.redacted_at is not None:  # the person was erased: their tombstone refused this record
        return _render("branch/_missing.html", 410, erased=True)
    claims = finished.claims
    _audit_result_shown(finished.result_id, "branch counter")
    decision = finished.decision  # the verdict recorded with it: the same one the API and the console read
    template = "branch/_result.html" if htmx else "branch/counter.html"
    return _render(
        template, view="result", decision=decision, token=result.token, claims=claims or {},
        lines=claim_lines(claims or {}), reference=reference,
    )


@bp.get("/qr")
@require_role(Role.COUNTER)
def qr() -> tuple[str, int]:
    """The widget's QR flow for customers who can scan, framed on our own page."""
    return _render("branch/qr.html", origin=own_origin())


@bp.get("/results/<result_id>")
@require_role(Role.COUNTER)
def result(result_id: str) -> tuple[str, int]:
    """The staff view of a result the framed widget just finished (QR flow)."""
    # No id holds a NUL, and PostgreSQL refuses to even look one up: not found, before any query.
    row = verifications.find(result_id) if "\x00" not in result_id else None
    if row is None or row.redacted_at is not None:  # an erased result is shown to nobody (app.rules.retention)
        return _render("branch/_missing.html", 404)
    _audit_result_shown(row.id, "branch counter, QR flow")
    decision = verifications.verdict_of(row)
    return _render(
        "branch/_result.html", view="result", decision=decision, token=row.token or row.code,
        claims=row.claims or {}, lines=claim_lines(row.claims or {}), reference=row.reference,
    )
