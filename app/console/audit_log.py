"""The console's audit log (admins only): read it, filter it, export it as CSV.

Reading only: nothing here (nor anywhere in the app) changes or removes an entry. Exporting is
itself an act an auditor asks about (the file leaves the app), so it adds an entry of its own, and
is a POST with the CSRF token, as the history export is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from flask import render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.console.queries import PER_PAGE
from app.console.routes import bp, page_number
from app.plumbing.csv_export import csv_response
from app.plumbing.database import db, utcnow
from app.rules import audit
from app.staff.roles import Role, require_role

# CSV column names and values stay English whatever the page speaks: auditors' tools read them by name.
CSV_HEADER = ["at_utc", "actor", "actor_role", "address", "action", "subject", "detail"]


class FilterProblem(ValueError):
    """A filter that cannot mean anything; the message says what to type instead."""


def _day(raw: str, refusal: str) -> date | None:
    """`refusal` is the whole sentence to show when `raw` is no day (one per field, for translators)."""
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FilterProblem(refusal) from None


def parse_filters(args: Mapping[str, str]) -> audit.Filters:
    """The filters from a query string; an unknown action or a date that is no date is a FilterProblem
    (an auditor must never take "everything" for the answer to a mistyped filter)."""
    if any("\x00" in value for value in args.values()):  # PostgreSQL cannot even compare text holding one
        raise FilterProblem(_("A filter cannot contain a NUL character."))
    action = args.get("action", "").strip()
    if action and action not in set(audit.Action):
        raise FilterProblem(_("Choose an action from the list."))
    filters = audit.Filters(
        action=action,
        actor=args.get("actor", "").strip().lower()[:80],
        subject=args.get("subject", "").strip()[:80],
        since=_day(args.get("from", "").strip()[:10],
                   _("The from date is a day written as YYYY-MM-DD, like 2026-11-26.")),
        until=_day(args.get("to", "").strip()[:10], _("The to date is a day written as YYYY-MM-DD, like 2026-11-26.")),
    )
    if filters.since and filters.until and filters.since > filters.until:
        raise FilterProblem(_("The from date is after the to date."))
    return filters


@bp.get("/audit")
@require_role(Role.ADMIN)
def audit_log() -> tuple[str, int]:
    try:
        filters = parse_filters(request.args)
    except FilterProblem as problem:
        return render_template("console/audit.html", entries=None, filters=None, problem=str(problem),
                               actions=list(audit.Action), action_name=audit.action_name, args=request.args), 400
    entries = db.paginate(audit.matching(filters), page=page_number(), per_page=PER_PAGE, max_per_page=PER_PAGE,
                          error_out=False)
    return render_template("console/audit.html", entries=entries, filters=filters, problem=None,
                           actions=list(audit.Action), action_name=audit.action_name, args=filters.as_args(),
                           page_args=filters.as_args(),
                           pagination=entries), 200


@bp.post("/audit.csv")
@require_role(Role.ADMIN)
def audit_csv() -> Response | tuple[str, int]:
    """The page's export form, posted with its CSRF token (a GET is 405): a link would let another site make
    an admin's browser download the log, and write the words of its choosing into it as filters."""
    try:
        filters = parse_filters(request.form)
    except FilterProblem as problem:
        return render_template("console/message.html", message=str(problem)), 400
    rows = [
        [entry.at, entry.actor, entry.actor_role, entry.address, entry.action, entry.subject, entry.detail]
        for entry in db.session.execute(audit.matching(filters)).scalars()
    ]
    described = " ".join(f"{key}={value}" for key, value in filters.as_args().items()) or "no filters"
    audit.record(audit.Action.AUDIT_EXPORTED, detail=f"{len(rows)} entries; {described}")
    return csv_response(f"audit-log-{utcnow():%Y%m%d-%H%M}.csv", CSV_HEADER, rows)
