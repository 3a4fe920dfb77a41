"""The back-office console, staff only: history, outcomes, performance, webhook and notification logs, go-live.

Every route is guarded by role (`require_role`: analysts and admins; the go-live
checklist, the audit log and staff management admins only); every form carries a
CSRF token (Flask-WTF, enforced app-wide for staff pages). Routes parse, call and render; what to
show is decided in `queries`, `app.rules.outcome_reporting`, `chart` and `app.golive`.
Claims never travel in a URL: pages link by result id, and the only query
strings are a search term, filters and a page number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from app.config import current_settings
from app.console import queries
from app.console.chart import cohort_chart_svg, has_observations, percent
from app.console.forms import OUTCOME_MEANING_TEXTS, OutcomeForm
from app.console.history_filters import FILTER_CHOICES, REVIEW_NAMES, BadFilter, parse_filters
from app.golive.facts import gather_facts
from app.golive.verdicts import evaluate_checklist
from app.golive.wording import STAFF_WORDING
from app.passid import NotFound, PassidError, ValidationError
from app.plumbing import encryption
from app.plumbing.page_refusals import stop_with_page
from app.plumbing.passid_connection import passid_client
from app.plumbing.staff_formatting import console_time
from app.rules import audit, notifications, verifications
from app.rules.claims_summary import claims_summary
from app.rules.customer_wording import claim_lines
from app.rules.decision import VERDICT_NAMES, recommendation_name
from app.rules.outcome_entry import outcome_label
from app.rules.outcome_reporting import AlreadyReported, OutcomeEntry, PersonErased, report_outcome
from app.rules.outcomes import OUTCOME_MEANINGS, OutcomeReport, find_report
from app.rules.verifications import Verification
from app.staff.roles import Role, require_role

bp = Blueprint("console", __name__, url_prefix="/console")


@bp.after_request
def never_store(response: Response) -> Response:
    """Console pages show people's data (and the audit log): none of it stays in a browser's cache, where
    it would outlive the recorded view and come back with the Back button after signing out."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_global("status_name")
def status_name(status: str) -> str:
    """A verification's status as staff read it (the code stays in class names and exports)."""
    return queries.status_name(status)


@bp.app_template_filter("console_time")
def console_time_filter(moment: datetime | None, seconds: bool = False) -> str:
    """Stored times are naive UTC; say so on the page, in the staff member's language
    (`app.plumbing.staff_formatting`)."""
    return console_time(moment, seconds)


@bp.app_template_global("unreadable_row")
def unreadable_row(row: object) -> bool:
    """A listed row this server's keys cannot decrypt (`encryption.listing_unreadable_rows`): marked, not shown."""
    return encryption.unreadable(row)


# Past any real history (25 million rows in), and well inside the 64-bit OFFSET every database takes.
MAX_PAGE = 1_000_000


def page_number() -> int:
    """The `page` asked for, 1 to MAX_PAGE: one typed (or forged) as nonsense, below 1 or past any OFFSET a
    database can take reads as the nearest page, which is empty past the last (never a 500). Every console
    list pages through this."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


@bp.url_value_preprocessor
def _no_impossible_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """An id in a path that no row can have is not found, before any query: PostgreSQL refuses a NUL in
    any text it compares, and no database compares a number past 64 bits."""
    for name, value in (values or {}).items():
        if (isinstance(value, str) and "\x00" in value) or (isinstance(value, int) and not 0 <= value < 2**63):
            _stop(404, _("No verification has this id.") if name == "result_id" else _("Nothing here has this id."))


# --- history -----------------------------------------------------------------------------------


@bp.get("/")
@require_role(Role.ANALYST)
@encryption.listing_unreadable_rows
def history() -> str:
    query = request.args.get("q", "")[:100]
    try:
        filters = parse_filters(request.args)
    except BadFilter as bad:
        _stop(400, str(bad))
    found = queries.verification_history(queries.normalise_query(query), page_number(), filters)
    return render_template(
        "console/history.html",
        query=query,
        found=found,
        filters=filters,
        filter_choices=FILTER_CHOICES,
        review_names=REVIEW_NAMES,
        verdict_names=VERDICT_NAMES,
        page_args={**({"q": query} if query else {}), **filters.as_args()},
        can_take_outcome=queries.can_take_outcome,
        sources=queries.SOURCE_NAMES,
        outcome_label=outcome_label,
    )


# --- one verification --------------------------------------------------------------------------


def shows_personal_data(row: Verification, report: OutcomeReport | None) -> bool:
    """Whether the detail page shows anything about the person: a token or code, a deny or decline reason
    (a sanctions match is as telling as a claim), a recommendation, claims, or an outcome's amount and notes.
    Only a row with none of them (an erased one) is opened without an audit entry."""
    return bool(row.claims_json or row.token or row.code or row.deny_reason or row.decline_reason
                or row.recommendation or row.corridor or report is not None)


@bp.get("/verifications/<result_id>")
@require_role(Role.ANALYST)
def verification(result_id: str) -> str:
    """The one console page that shows what is about a person; every view of it is in the audit log."""
    row = verifications.find(result_id[:40])
    if row is None:
        _stop(404, _("No verification has this id."))
    claims = row.claims
    report = find_report(row.token) if row.token else None
    if shows_personal_data(row, report):
        audit.record(audit.Action.CLAIMS_VIEWED, subject=row.id, detail="console detail")
    return render_template(
        "console/verification.html",
        row=row,
        claims=claims,
        lines=claim_lines(claims or {}),
        summary=claims_summary(claims),
        recommendation=recommendation_name(row.recommendation) if row.recommendation else None,
        decision=verifications.verdict_of(row),
        report=report,
        sources=queries.SOURCE_NAMES,
        outcome_label=outcome_label,
        can_take_outcome=queries.can_take_outcome(row),
    )


# --- outcome reporting -------------------------------------------------------------------------


def _reportable(result_id: str) -> verifications.Verification:
    row = verifications.find(result_id)
    if row is None:
        _stop(404, _("No verification has this id."))
    elif not queries.can_take_outcome(row):
        _stop(409, _("Only an approved verification with a token can take an outcome."))
    return row


def _stop(status: int, message: str) -> NoReturn:
    stop_with_page(status, "console/message.html", message=message)


def _outcome_page(row: Verification, form: OutcomeForm | None, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(
        "console/outcome.html",
        row=row,
        form=form,
        meanings={code: OUTCOME_MEANING_TEXTS.get(code, text) for code, text in OUTCOME_MEANINGS.items()},
        outcome_label=outcome_label,
        **context,
    ), status


@bp.route("/verifications/<result_id>/outcome", methods=["GET", "POST"])
@require_role(Role.ANALYST)
def outcome(result_id: str) -> tuple[str, int] | Response:
    row = _reportable(result_id)
    assert row.token is not None
    earlier = find_report(row.token)
    if earlier is not None:
        return _outcome_page(row, None, already=AlreadyReported(earlier))
    form = OutcomeForm()
    if request.method == "GET":
        return _outcome_page(row, form)
    if not form.validate_on_submit():
        return _outcome_page(row, form, 422, problem=_("Please correct the highlighted fields."))
    entry = OutcomeEntry(
        outcome=form.outcome.data,
        product_type=form.product_type.data,
        amount=form.amount_value,
        currency=form.currency.data,
        notes=(form.notes.data or "").strip() or None,
    )
    try:
        result = report_outcome(passid_client(), row.token, entry, recorded=lambda report: audit.note(
            audit.Action.OUTCOME_REPORTED, subject=row.id, detail=report.outcome))
    except ValidationError as error:
        field = {"productType": "product_type"}.get(error.field or "", error.field or "")
        if field in form and field != "csrf_token":
            form[field].errors = [*form[field].errors, _("PASSID refused this: %(message)s", message=error.message)]
        return _outcome_page(row, form, 422, problem=_("PASSID refused the report: %(message)s", message=error.message))
    except NotFound:
        return _outcome_page(row, form, 409, problem=_(
            "PASSID has no approved verification of this token for us, so it cannot take an outcome for it."))
    except PassidError:
        current_app.logger.warning("report_outcome failed", exc_info=True)
        return _outcome_page(row, form, 502, problem=_(
            "PASSID could not be reached, or did not answer in time. Nothing was saved here; try again in a moment."))
    if isinstance(result, PersonErased):  # erased since this page was opened
        _stop(410, _("This person was erased: no outcome is reported or kept about them."))
    if isinstance(result, AlreadyReported):
        return _outcome_page(row, None, already=result)
    flash(_("Outcome reported: %(outcome)s.", outcome=outcome_label(result.report.outcome)), "success")
    return redirect(url_for("console.outcome", result_id=row.id), code=303)


# --- performance -------------------------------------------------------------------------------


@bp.get("/performance")
@require_role(Role.ANALYST)
def performance() -> tuple[str, int]:
    try:
        report = passid_client().cohorts()
    except PassidError:
        current_app.logger.warning("cohorts failed", exc_info=True)
        return render_template("console/performance.html", report=None), 502
    return render_template(
        "console/performance.html",
        report=report,
        chart=cohort_chart_svg(report),
        observed=has_observations(report),
        percent=percent,
    ), 200


# --- webhook log -------------------------------------------------------------------------------


@bp.get("/webhooks")
@require_role(Role.ANALYST)
@encryption.listing_unreadable_rows
def webhook_log() -> str:
    event_type = queries.clean_filter(request.args.get("type"))
    signature = queries.clean_filter(request.args.get("signature"), queries.SIGNATURE_RESULTS)
    return render_template(
        "console/webhooks.html",
        receipts=queries.webhook_receipts(event_type, signature, page_number()),
        rejections=queries.rejection_counts(event_type, signature),
        rejection_summary=queries.rejection_summary,
        handling_name=queries.handling_name,
        hour_range=queries.hour_range,
        event_type=event_type,
        signature=signature,
        page_args={key: value for key, value in (("type", event_type), ("signature", signature)) if value},
        event_types=queries.event_types_seen(),
        signature_results=queries.SIGNATURE_RESULTS,
    )


# --- outgoing notifications --------------------------------------------------------------------


@bp.get("/notifications")
@require_role(Role.ANALYST)
def notification_log() -> str:
    """Beside the webhook log (what PASSID sent us): what we sent the bank's backend, and how it went."""
    return render_template(
        "console/notifications.html",
        configured=notifications.configured(),
        notify_url=current_settings().notify_url,
        deliveries=queries.notification_deliveries(page_number()),
        delivery_status_name=queries.delivery_status_name,
        page_args={},
        form=FlaskForm(),
    )


@bp.post("/notifications/test")
@require_role(Role.ADMIN)
def send_test_notification() -> Response:
    event_id = notifications.send_test_event()
    if event_id is None:
        flash(_("Notifications are off: set PASSID_NOTIFY_URL and PASSID_NOTIFY_SECRET first."), "error")
    else:
        audit.record(audit.Action.TEST_NOTIFICATION_SENT, subject=event_id)
        flash(_("Test event %(id)s queued. Reload in a few seconds to see how it went.", id=event_id), "success")
    return redirect(url_for("console.notification_log"), code=303)


# --- go-live checklist -------------------------------------------------------------------------


def _untrusted_https_claim() -> bool:
    """X-Forwarded-Proto says https, yet the app does not believe it.

    A proxy the app trusts (PASSID_TRUSTED_PROXIES, applied by ProxyFix) has already made
    `request.is_secure` true; otherwise the header is anyone's to send and
    HSTS and secure cookies stay off, so the checklist names the setting.
    """
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return forwarded == "https" and not request.is_secure


@bp.get("/go-live")
@require_role(Role.ADMIN)
def checklist() -> str:
    facts = gather_facts(https=request.is_secure, https_claimed_by_untrusted_proxy=_untrusted_https_claim())
    items = evaluate_checklist(facts, STAFF_WORDING)
    return render_template("console/checklist.html", items=items, form=FlaskForm())


@bp.post("/go-live/test-webhook")
@require_role(Role.ADMIN)
def send_test_webhook() -> Response:
    try:
        event_id = passid_client().send_test_webhook()
    except PassidError as error:
        current_app.logger.warning("send_test_webhook failed", exc_info=True)
        flash(_("PASSID did not take the test webhook: %(error)s", error=str(error)), "error")
    else:
        audit.record(audit.Action.TEST_WEBHOOK_SENT, subject=event_id)
        flash(_("Test webhook %(id)s sent. Reload in a few seconds to see it checked.", id=event_id), "success")
    return redirect(url_for("console.checklist"), code=303)
