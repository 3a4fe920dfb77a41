"""The history's filters (status, source, dates, review status, verdict, sanctions matches), shared by the
page and its CSV export.

One parser and one `apply` for both, so an export holds exactly the rows the analyst was looking at.
Every filter is a clear column or a keyed hash (never a claim), so filtering works whatever the claims are
encrypted under. Dates are UTC calendar days, both ends included, as the page's times are shown in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _

from app.passid import DenyReason
from app.plumbing.database import end_of, start_of
from app.plumbing.encryption import lookup_hashes
from app.rules.decision import VERDICT_NAMES, VERDICTS, ReviewStatus
from app.rules.verifications import FINAL_STATUSES, FinalStatus, Source, Verification

STATUSES: tuple[str, ...] = tuple(status.value for status in FINAL_STATUSES)
SOURCES: tuple[str, ...] = tuple(source.value for source in Source)
REVIEW_STATUSES: tuple[str, ...] = tuple(status.value for status in ReviewStatus)
REVIEW_NAMES: dict[str, LazyString] = {
    ReviewStatus.PENDING: lazy_gettext("Waiting for review"),
    ReviewStatus.PROCEED: lazy_gettext("Reviewed: proceed"),
    ReviewStatus.DO_NOT_PROCEED: lazy_gettext("Reviewed: do not proceed"),
}
# A status as the page names it; the code (FinalStatus) is what is stored, filtered on and exported.
STATUS_NAMES: dict[FinalStatus, LazyString] = {
    FinalStatus.COMPLETED: lazy_gettext("completed"),
    FinalStatus.DENIED: lazy_gettext("denied"),
    FinalStatus.DECLINED: lazy_gettext("declined"),
    FinalStatus.EXPIRED: lazy_gettext("expired"),
}

# The page's select boxes (sources are named by `queries.SOURCE_NAMES`, which the page already has).
FILTER_CHOICES: dict[str, list[tuple[str, LazyString]]] = {
    "status": [(status, STATUS_NAMES[FinalStatus(status)]) for status in STATUSES],
    "review": [(status, REVIEW_NAMES[status]) for status in REVIEW_STATUSES],
    "verdict": [(verdict, VERDICT_NAMES[verdict]) for verdict in VERDICTS],
}


class BadFilter(ValueError):
    """A filter the history cannot apply; the message is the sentence to show (with a 400)."""


@dataclass(frozen=True)
class HistoryFilters:
    """What the analyst narrowed the history to; the empty value of each means "all"."""

    status: str = ""
    source: str = ""
    date_from: date | None = None
    date_to: date | None = None
    review: str = ""
    verdict: str = ""
    sanctions: bool = False  # only PASSID's sanctions hard denies

    def as_args(self) -> dict[str, str]:
        """The query-string form, for the pager's links and the export link (only the filters set)."""
        args = {
            "status": self.status,
            "source": self.source,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "review": self.review,
            "verdict": self.verdict,
            "sanctions": "1" if self.sanctions else "",
        }
        return {name: value for name, value in args.items() if value}

    def describe(self) -> str:
        """The filters in a line an auditor reads ("status=completed from=2026-11-01"), or "none"."""
        return " ".join(f"{name}={value}" for name, value in self.as_args().items()) or "none"

    def apply(self, select: Any) -> Any:
        """`select` (of Verification) narrowed to these filters."""
        if self.status:
            select = select.where(Verification.status == self.status)
        if self.source:
            select = select.where(Verification.source == self.source)
        if self.date_from:
            select = select.where(Verification.created_at >= start_of(self.date_from))
        stop = end_of(self.date_to) if self.date_to else None
        if stop is not None:
            select = select.where(Verification.created_at < stop)
        if self.review:
            select = select.where(Verification.review_status == self.review)
        if self.verdict:
            select = select.where(Verification.verdict == self.verdict)
        if self.sanctions:
            select = select.where(Verification.deny_reason_hash.in_(
                lookup_hashes(DenyReason.HARD_DENY_SANCTIONS_MATCH.value)))
        return select


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...], refusal: LazyString) -> str:
    """`refusal` is the whole sentence, with %(value)s (translators need whole sentences)."""
    value = (args.get(name) or "").strip()
    if value and value not in allowed:
        raise BadFilter(refusal % {"value": value[:40]})
    return value


def parse_day(args: Mapping[str, str], name: str) -> date | None:
    """The UTC day `args[name]` names (YYYY-MM-DD), None when empty; BadFilter when it names none (the funnel's too)."""
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        message = _("The “%(name)s” date must be a day written YYYY-MM-DD, like 2026-11-26.", name=name)
        raise BadFilter(message) from None


def parse_filters(args: Mapping[str, str]) -> HistoryFilters:
    """The filters from a query string; BadFilter for a value that could only mislead (an unknown status,
    a date that is not one, a range that ends before it starts): silently dropping one would widen an export."""
    filters = HistoryFilters(
        status=_choice(args, "status", STATUSES, lazy_gettext(
            "“%(value)s” is not a verification status; choose one from the list.")),
        source=_choice(args, "source", SOURCES, lazy_gettext("“%(value)s” is not a source; choose one from the list.")),
        date_from=parse_day(args, "from"),
        date_to=parse_day(args, "to"),
        review=_choice(args, "review", REVIEW_STATUSES, lazy_gettext(
            "“%(value)s” is not a review status; choose one from the list.")),
        verdict=_choice(args, "verdict", VERDICTS, lazy_gettext(
            "“%(value)s” is not a verdict; choose one from the list.")),
        sanctions=_choice(args, "sanctions", ("1",), lazy_gettext(
            "“%(value)s” is not a sanctions filter; tick the box or leave it empty.")) == "1",
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise BadFilter(_("The “from” date is after the “to” date."))
    return filters
