"""The history as CSV (analysts): the rows the page's search and filters select, all of them, audited.

What a file holds is decided here, not by the request: the record of each verification (ids, times,
source, status, the institution's reference and session, the tier, the review and the outcome), and
the person's claims only when the analyst ticks "include the claims". A redacted (or retention-purged)
row exports no claims whichever is asked, since it has none left. Each export adds an audit entry
(the filters, whether claims were in it, how many rows) in the same commit as nothing else: the file
itself is not stored.

The export is a POST with the CSRF token, not a link: an act the audit log records, which can put
personal data in a downloads folder, must not be something another site can set off with an <img>.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from flask import request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.console import queries
from app.console.history_filters import BadFilter, HistoryFilters, parse_filters
from app.console.routes import bp
from app.passid import CLAIM_FIELDS
from app.plumbing.csv_export import csv_response
from app.plumbing.database import db, utcnow
from app.plumbing.page_refusals import stop_with_page
from app.plumbing.staff_formatting import console_number
from app.rules import audit, review
from app.rules.outcomes import OutcomeReport
from app.rules.verifications import Verification
from app.staff.roles import Role, require_role

# Rows in one file. A bank's busiest month of verifications fits; more than that is asked for in
# narrower date ranges, and the analyst is told so instead of being handed a silently cut file.
EXPORT_MAX_ROWS = 10_000

# Column names and values stay English (codes, ISO times) whatever language the console speaks: auditors'
# tools read these files by name, so they must not change with the analyst's browser.
RECORD_COLUMNS = [
    "id", "created_at", "source", "status", "verdict", "reference", "session_id", "tier",
    "review_status", "review_decided_by", "review_decided_at", "outcome_reported",
]
# Every claim field of the contract, in its order; the tier is already a record column.
CLAIM_COLUMNS = [name for fields in CLAIM_FIELDS.values() for name in fields if name != "tier"]


@bp.context_processor
def _export_cap() -> dict[str, int]:
    """The history page states the cap beside its export button."""
    return {"export_max_rows": EXPORT_MAX_ROWS}


class TooManyRows(Exception):
    """More rows match than one export holds; the message says how many and what to do."""


def export_header(with_claims: bool) -> list[str]:
    return RECORD_COLUMNS + (CLAIM_COLUMNS if with_claims else [])


def export_rows(query: str, filters: HistoryFilters, with_claims: bool) -> list[list[Any]]:
    """The file's rows, newest first, exactly as the page selects them; TooManyRows beyond the cap."""
    select = queries.history_select(query, filters)
    rows: list[Verification] = list(db.session.execute(select.limit(EXPORT_MAX_ROWS + 1)).scalars())
    if len(rows) > EXPORT_MAX_ROWS:
        raise TooManyRows(_(
            "More than %(max)s verifications match; one export holds at most %(max)s. "
            "Narrow the dates (or another filter) and export each part.", max=console_number(EXPORT_MAX_ROWS)
        ))
    outcomes = queries.outcomes_by_token(row.token for row in rows)
    decisions = review.decisions_for([row.id for row in rows])
    return [_line(row, outcomes, decisions, with_claims) for row in rows]


def _line(
    row: Verification, outcomes: dict[str, OutcomeReport], decisions: dict[str, review.ReviewDecision],
    with_claims: bool,
) -> list[Any]:
    report = outcomes.get(row.token) if row.token else None
    decided = decisions.get(row.id)
    line: list[Any] = [
        row.id, row.created_at, row.source, row.status, row.verdict, row.reference, row.session_id, row.tier,
        row.review_status, decided.decided_by if decided else None, decided.decided_at if decided else None,
        report.outcome if report else row.reported_outcome,
    ]
    if with_claims:
        claims = None if row.redacted_at is not None else row.claims
        line += [(claims or {}).get(name) for name in CLAIM_COLUMNS]
    return line


def _wants_claims(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "on", "true", "yes")


def _filename(now: datetime) -> str:
    return f"passid-history-{now:%Y%m%d-%H%M%S}.csv"


@bp.post("/history.csv")
@require_role(Role.ANALYST)
def history_csv() -> Response:
    form = request.form
    query = queries.normalise_query(form.get("q", "")[:100])
    try:
        filters = parse_filters(form)
    except BadFilter as bad:
        _refuse(str(bad))
    with_claims = _wants_claims(form.get("claims"))
    try:
        lines = export_rows(query, filters, with_claims)
    except TooManyRows as too_many:
        _refuse(str(too_many))
    audit.note(audit.Action.HISTORY_EXPORTED, detail=export_detail(filters, bool(query), with_claims, len(lines)))
    db.session.commit()
    return csv_response(_filename(utcnow()), export_header(with_claims), lines)


def export_detail(filters: HistoryFilters, searched: bool, with_claims: bool, count: int) -> str:
    """The audit entry's words. A search term may be a token, which never goes into the log: only whether
    there was one."""
    return (
        f"filters: {filters.describe()}; search: {'yes' if searched else 'none'}; "
        f"claims {'included' if with_claims else 'not included'}; {count} row{'' if count == 1 else 's'}"
    )


def _refuse(message: str) -> NoReturn:
    stop_with_page(400, "console/message.html", message=message)
