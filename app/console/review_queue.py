"""The review queue's pages (analysts): what is waiting, for how long and why, and the form that decides.

Routes parse, call `app.rules.review` and render. The page offers only the decisions an item allows (a
sanctions match: "do not proceed"), and the server refuses any other, whatever the request says.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from app.console import queries
from app.console.routes import bp, page_number
from app.plumbing import encryption
from app.plumbing.database import utcnow
from app.rules import audit, review
from app.rules.decision import ReviewStatus
from app.staff.roles import Role, require_role


def shown_detail(result_ids: list[str], limit: int = 500) -> str:
    """The audit entry's detail for a page of the queue: the result ids it showed, as many as fit in `limit`
    characters (the column's size), then "… and N more"."""
    detail = ", ".join(result_ids)
    for named in range(len(result_ids) - 1, -1, -1):
        if len(detail) <= limit:
            return detail
        detail = ", ".join(result_ids[:named]) + f" … and {len(result_ids) - named} more"
    return detail


@encryption.listing_unreadable_rows
def _queue_page(status: int = 200, problem: str | None = None, problem_for: str | None = None) -> tuple[str, int]:
    waiting = review.pending(page_number())
    page = render_template(
        "console/review_queue.html",
        waiting=waiting,
        pagination=waiting,
        page_args={},
        now=utcnow(),
        waiting_for=review.waiting_for,
        reasons=review.reasons,
        allowed_decisions=review.allowed_decisions,
        decision_names=review.DECISION_NAMES,
        sources=queries.SOURCE_NAMES,
        note_max=review.NOTE_MAX,
        problem=problem,
        problem_for=problem_for,
    )
    # The reasons come from each person's claims: a view of everyone on the page. Recorded once it is
    # rendered (the entry's commit would otherwise expire the rows the page reads, one query each).
    if waiting.items:
        audit.record(audit.Action.CLAIMS_VIEWED, subject="review queue",
                     detail=shown_detail([row.id for row in waiting.items]))
    return page, status


@bp.get("/review")
@require_role(Role.ANALYST)
def review_queue() -> tuple[str, int]:
    return _queue_page()


@bp.post("/review/<result_id>")
@require_role(Role.ANALYST)
def review_decide(result_id: str) -> tuple[str, int] | Response:
    # The CSRF token was checked app-wide (Flask-WTF's CSRFProtect) before this view runs; the two
    # fields have one rule, `review.parse_decision`, which also says what is wrong in a sentence.
    try:
        entry = review.parse_decision(request.form.get("decision"), request.form.get("note"))
        decided = review.decide(result_id[:40], entry, current_user.username)
    except review.ReviewRefused as refused:
        return _queue_page(refused.status, str(refused), result_id)
    flash(_("Recorded: %(decision)s for %(id)s.", decision=str(review.DECISION_NAMES[ReviewStatus(decided.decision)]),
            id=result_id), "success")
    return redirect(url_for("console.review_queue"), code=303)
