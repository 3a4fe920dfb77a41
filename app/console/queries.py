"""What the console reads from our own tables: verifications, their outcomes, webhook receipts and rejections.

The search and summary rules are plain functions so they can be tested
without a request; the queries beside them only apply those rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import LazyString, lazy_gettext, ngettext
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import func

from app.console.history_filters import STATUS_NAMES, HistoryFilters
from app.plumbing.database import db
from app.plumbing.encryption import lookup_hashes
from app.plumbing.staff_formatting import console_moment, console_number, console_time_pattern
from app.rules import review
from app.rules.notifications import NotificationDelivery
from app.rules.outcomes import OutcomeReport
from app.rules.review import ReviewDecision
from app.rules.verifications import FinalStatus, Source, Verification
from app.rules.webhook_receipts import (
    CONTRACT_EVENT_TYPES,
    OTHER_EVENT_TYPE,
    REJECTION_RESULTS,
    SIGNATURE_RESULTS,
    Handling,
    WebhookReceipt,
    WebhookRejection,
)

PER_PAGE = 25
LOOKUP_BATCH = 500  # ids in one IN (…): well inside every database's limit on bound parameters
# Rejected calls are counted per hour, verdict and claimed type: at most 20 rows an hour, so the newest
# few dozen cover the last hours of even a flood.
REJECTION_ROWS = 48

# Keyed by Source, so a new source without a name here fails a test instead of printing its raw value.
SOURCE_NAMES: dict[Source, LazyString] = {
    Source.QR: lazy_gettext("QR code"),
    Source.MANUAL: lazy_gettext("Manual entry"),
    Source.BRANCH: lazy_gettext("Branch counter"),
    Source.WEBHOOK: lazy_gettext("Webhook"),
    Source.CLI: lazy_gettext("CLI"),
}


def status_name(status: str) -> str:
    """The status in the staff member's language, or its code when unknown."""
    try:
        return str(STATUS_NAMES[FinalStatus(status)])
    except ValueError:
        return status
KNOWN_EVENT_TYPES = CONTRACT_EVENT_TYPES

_PASSID_PREFIX = re.compile(r"^\s*passid[\s-]+", re.IGNORECASE)


def normalise_query(raw: str | None) -> str:
    """A search for a token or code, reduced to the letters and digits we compare.

    Staff type what the customer reads out: any case, with or without dashes,
    spaces or the `PASSID-` prefix. Only [A-Z0-9] survives, which also means
    nothing in it can act as a LIKE wildcard.
    """
    text = _PASSID_PREFIX.sub("", (raw or "")[:100])
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def can_take_outcome(row: Verification) -> bool:
    """PASSID accepts outcomes only for tokens this institution verified with approval."""
    return row.status == FinalStatus.COMPLETED and bool(row.token)


@dataclass(frozen=True)
class HistoryPage:
    rows: list[Verification]
    outcomes: dict[str, OutcomeReport]  # by token
    pagination: Pagination
    decisions: dict[str, ReviewDecision]  # review decisions, by result id


# What a reference loses to `normalise_query` besides case; a reference is the institution's own id, so
# staff type "loan-42", "LOAN 42" or "loan_42" for the same application.
_REFERENCE_SEPARATORS = ("-", " ", "_", ".", "/", ":", "#")


def _comparable_reference() -> Any:
    """The reference as `normalise_query` leaves a search: upper case, without the usual separators."""
    column: Any = func.upper(func.coalesce(Verification.reference, ""))
    for separator in _REFERENCE_SEPARATORS:
        column = func.replace(column, separator, "")
    return column


def verification_history(query: str, page: int, filters: HistoryFilters | None = None) -> HistoryPage:
    """Newest first, 25 to a page, searched (`history_select`) and filtered."""
    select = history_select(query, filters or HistoryFilters())
    pagination = db.paginate(select, page=page, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    rows = list(pagination.items)
    return HistoryPage(
        rows=rows, outcomes=outcomes_by_token(row.token for row in rows), pagination=pagination,
        decisions=review.decisions_for([row.id for row in rows]),
    )


def history_select(query: str, filters: HistoryFilters) -> Any:
    """The history's rows, newest first: `query` (already normalised) is a whole token or code, or any part
    of a session's reference, and `filters` narrow them. The page and the CSV export both read this.

    Tokens and codes are stored encrypted, so they are matched whole, by their keyed hash
    (app/plumbing/encryption.py): a part of one finds nothing, the whole in any case, with or without dashes does.
    """
    select = db.select(Verification).order_by(Verification.created_at.desc(), Verification.id)
    select = filters.apply(select)
    if query:
        hashes = lookup_hashes(query)
        select = select.where(
            Verification.token_hash.in_(hashes)
            | Verification.code_hash.in_(hashes)
            | _comparable_reference().like(f"%{query}%")
        )
    return select


def outcomes_by_token(tokens: Iterable[str | None]) -> dict[str, OutcomeReport]:
    """The outcome reports of these tokens, by token (a page's 25, or an export's thousands, in batches).

    Matched by keyed hash under every key of the ring, so a report hashed under a newer key than its
    verification (between adding a key and rotating) is still found.
    """
    token_of_hash = {hashed: token for token in {token for token in tokens if token}
                     for hashed in lookup_hashes(token)}
    wanted = sorted(token_of_hash)
    outcomes: dict[str, OutcomeReport] = {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        batch = wanted[start:start + LOOKUP_BATCH]
        found = db.session.execute(db.select(OutcomeReport).where(OutcomeReport.token_hash.in_(batch))).scalars()
        outcomes.update({token_of_hash[report.token_hash]: report for report in found if report.token_hash})
    return outcomes


def clean_filter(value: str | None, allowed: tuple[str, ...] | None = None, max_length: int = 40) -> str:
    """A query-string filter kept only when it could match something; anything else means 'all'."""
    value = (value or "").strip()[:max_length]
    if (allowed is not None and value not in allowed) or "\x00" in value:  # no stored value holds a NUL
        return ""
    return value


def webhook_receipts(event_type: str, signature: str, page: int) -> Pagination:
    """The stored (valid) events, newest first; a rejection filter matches none of them."""
    select = db.select(WebhookReceipt).order_by(WebhookReceipt.received_at.desc(), WebhookReceipt.id.desc())
    if event_type:
        select = select.where(WebhookReceipt.event_type == event_type)
    if signature:
        select = select.where(WebhookReceipt.signature_result == signature)
    return db.paginate(select, page=page, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)


def notification_deliveries(page: int) -> Pagination:
    """The notifications sent (or still to send) to the bank's backend, newest first."""
    select = db.select(NotificationDelivery).order_by(
        NotificationDelivery.created_at.desc(), NotificationDelivery.event_id)
    return db.paginate(select, page=page, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)


# How an outgoing delivery's status reads on the notification log; the code is what is stored.
DELIVERY_STATUS_NAMES: dict[str, LazyString] = {
    "pending": lazy_gettext("pending"),
    "delivered": lazy_gettext("delivered"),
    "failed": lazy_gettext("failed"),
}


def delivery_status_name(status: str) -> str:
    """The delivery status in the staff member's language, or its code when unknown."""
    return str(DELIVERY_STATUS_NAMES.get(status, status))


# How a stored event's handling reads on the webhook log; the code is what is stored.
HANDLING_NAMES: dict[Handling, LazyString] = {
    Handling.PENDING: lazy_gettext("pending"),
    Handling.HANDLED: lazy_gettext("handled"),
    Handling.FAILED: lazy_gettext("failed"),
    Handling.ERASED: lazy_gettext("about an erased person: nothing kept"),
}


def handling_name(handling: str) -> str:
    """The handling status in the staff member's language, or its code when unknown."""
    try:
        return str(HANDLING_NAMES[Handling(handling)])
    except ValueError:
        return handling


def rejection_summary(calls: int, signature_result: str) -> str:
    """"12 calls with a bad signature": what a row of counts means, in words (whole sentences per result and
    plural form, for translators)."""
    count = console_number(calls)  # the plural form follows `calls`; the text shows it formatted
    if signature_result == "invalid":
        return ngettext("%(count)s call with a bad signature", "%(count)s calls with a bad signature", calls,
                        count=count)
    if signature_result == "missing":
        return ngettext("%(count)s call with no signature", "%(count)s calls with no signature", calls, count=count)
    if signature_result == "malformed":
        return ngettext("%(count)s call with a malformed signature header",
                        "%(count)s calls with a malformed signature header", calls, count=count)
    if signature_result == "too_large":
        return ngettext("%(count)s call with a body too large to check",
                        "%(count)s calls with a body too large to check", calls, count=count)
    return ngettext("%(count)s call rejected", "%(count)s calls rejected", calls, count=count)


def hour_range(hour: datetime) -> str:
    """"2026-11-26 14:00–15:00 UTC": the hour a count covers, in the request's language."""
    start = console_moment(hour, console_time_pattern())
    end = console_moment(hour + timedelta(hours=1), "HH:mm")
    return _("%(start)s–%(end)s UTC", start=start, end=end)


def rejection_counts(event_type: str, signature: str) -> list[WebhookRejection]:
    """The counts of rejected calls, newest hour first, under the same filters as the events."""
    if signature and signature not in REJECTION_RESULTS:
        return []  # "valid": rejected calls are by definition not
    select = db.select(WebhookRejection).order_by(
        WebhookRejection.hour.desc(), WebhookRejection.calls.desc(), WebhookRejection.id
    )
    if event_type:
        select = select.where(WebhookRejection.event_type == event_type)
    if signature:
        select = select.where(WebhookRejection.signature_result == signature)
    return list(db.session.execute(select.limit(REJECTION_ROWS)).scalars())


def event_types_seen() -> list[str]:
    """The filter's choices: the contract's three types plus whatever else has arrived."""
    seen = db.session.execute(
        db.select(WebhookReceipt.event_type).where(WebhookReceipt.event_type.is_not(None)).distinct()
    ).scalars()
    other = db.session.execute(
        db.select(WebhookRejection.id).where(WebhookRejection.event_type == OTHER_EVENT_TYPE).limit(1)
    ).first()
    return sorted(set(KNOWN_EVENT_TYPES) | set(seen) | ({OTHER_EVENT_TYPE} if other else set()))


__all__ = [
    "PER_PAGE",
    "REJECTION_RESULTS",
    "SIGNATURE_RESULTS",
    "SOURCE_NAMES",
    "STATUS_NAMES",
    "status_name",
    "HistoryPage",
    "can_take_outcome",
    "clean_filter",
    "delivery_status_name",
    "event_types_seen",
    "history_select",
    "hour_range",
    "normalise_query",
    "notification_deliveries",
    "outcomes_by_token",
    "rejection_counts",
    "rejection_summary",
    "verification_history",
    "webhook_receipts",
]
