"""The funnel page and its CSV (analysts): what `app.rules.funnel` counted, for a period of UTC days.

Widgets shown, verifications started and how each ended, as counts and rates, overall and by channel,
language and device class, with the median and p90 time from start to result. Nothing in it is about a
person, so opening it adds no audit entry and its CSV is a plain link, unlike the history's export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NoReturn

from babel import Locale, UnknownLocaleError
from flask import render_template, request
from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.console.chart import funnel_chart_svg, percent
from app.console.history_filters import BadFilter, parse_day
from app.console.routes import bp
from app.plumbing.csv_export import csv_response
from app.plumbing.database import utcnow
from app.plumbing.i18n import request_locale
from app.plumbing.page_refusals import stop_with_page
from app.plumbing.staff_formatting import console_number
from app.rules import funnel
from app.rules.decision import VERDICT_NAMES, VERDICTS
from app.rules.funnel import NO_JAVASCRIPT, Counts, FunnelReport, Outcome
from app.rules.retention import retention_cutoff
from app.staff.roles import Role, require_role

DEFAULT_DAYS = 30  # the period shown when none is asked for: the last 30 days, today included

STEP_NAMES: dict[str, LazyString] = {
    "shown": lazy_gettext("Widgets shown"),
    "started": lazy_gettext("Verifications started"),
    Outcome.APPROVED: lazy_gettext("Approved"),
    Outcome.DENIED: lazy_gettext("Denied"),
    Outcome.DECLINED: lazy_gettext("Declined"),
    Outcome.EXPIRED: lazy_gettext("Expired"),
    Outcome.ABANDONED: lazy_gettext("Abandoned"),
    "in_progress": lazy_gettext("In progress"),
}
BREAKDOWN_TITLES: dict[str, LazyString] = {
    "channel": lazy_gettext("By channel"),
    "locale": lazy_gettext("By language"),
    "device": lazy_gettext("By device class"),
}
BREAKDOWN_COLUMNS: dict[str, LazyString] = {
    "channel": lazy_gettext("Channel"),
    "locale": lazy_gettext("Language"),
    "device": lazy_gettext("Device class"),
}
VALUE_NAMES: dict[str, dict[str, LazyString]] = {
    "channel": {
        funnel.Channel.EMBED: lazy_gettext("Embedded widget"),
        funnel.Channel.HOSTED: lazy_gettext("Hosted session page"),
        funnel.Channel.BRANCH: lazy_gettext("Branch counter"),
        NO_JAVASCRIPT: lazy_gettext("of which without JavaScript"),
    },
    "device": {
        funnel.Device.PHONE: lazy_gettext("Phone layout"),
        funnel.Device.DESKTOP: lazy_gettext("Desktop layout"),
        funnel.Device.UNKNOWN: lazy_gettext("Not known (no JavaScript, or the counter)"),
    },
}


@dataclass(frozen=True)
class Period:
    """The UTC days asked for (both included); `clamped` when the first was moved up to the oldest day kept."""

    first_day: date
    last_day: date
    clamped: bool = False

    def as_args(self) -> dict[str, str]:
        return {"from": self.first_day.isoformat(), "to": self.last_day.isoformat()}


def oldest_day_kept() -> date:
    """The first day the funnel still holds: the retention purge deletes older counts with the rest."""
    return retention_cutoff(utcnow()).date()


def parse_period(args: Mapping[str, str], today: date, oldest: date) -> Period:
    """`from` and `to` (YYYY-MM-DD, UTC); the last DEFAULT_DAYS days without them. A day before the oldest
    kept is moved up to it (said on the page): nothing older exists. BadFilter for a day that is not one, or a
    range that ends before it starts."""
    last = parse_day(args, "to") or today
    first = parse_day(args, "from") or _days_before(last, DEFAULT_DAYS - 1)
    if first > last:
        raise BadFilter(_("The “from” date is after the “to” date."))
    if first >= oldest:
        return Period(first, last)
    return Period(oldest, max(last, oldest), clamped=True)


def _days_before(day: date, days: int) -> date:
    try:
        return day - timedelta(days=days)
    except OverflowError:  # a "to" in the first days of year 1
        return date.min


def _period() -> Period:
    try:
        return parse_period(request.args, utcnow().date(), oldest_day_kept())
    except BadFilter as bad:
        _refuse(str(bad))


def _refuse(message: str) -> NoReturn:
    stop_with_page(400, "console/message.html", message=message)


def value_name(breakdown: str, value: str) -> str:
    """A breakdown's value as staff read it; a language by its name in theirs ("French (fr)")."""
    known = VALUE_NAMES.get(breakdown, {}).get(value)
    if known is not None:
        return str(known)
    if breakdown == "locale":
        try:
            name = Locale.parse(value, sep="-").get_display_name(request_locale())
        except (ValueError, UnknownLocaleError):
            return value
        return f"{name} ({value})" if name else value
    return value


def seconds_text(seconds: float | None) -> str:
    """12 → "12 s"; None → "—"."""
    return "—" if seconds is None else _("%(seconds)s s", seconds=console_number(seconds))


@bp.get("/funnel")
@require_role(Role.ANALYST)
def funnel_page() -> str:
    period = _period()
    found = funnel.report(period.first_day, period.last_day)
    names = {step: str(name) for step, name in STEP_NAMES.items()}
    return render_template(
        "console/funnel.html",
        period=period,
        found=found,
        chart=funnel_chart_svg(found.total, names),
        names=names,
        outcomes=funnel.OUTCOMES,
        verdicts=VERDICTS,
        verdict_names=VERDICT_NAMES,
        breakdown_titles=BREAKDOWN_TITLES,
        breakdown_columns=BREAKDOWN_COLUMNS,
        value_name=value_name,
        percent=percent,
        seconds_text=seconds_text,
        answered=[names[outcome] for outcome in funnel.ANSWERED],
        abandon_minutes=int(funnel.ABANDON_AFTER.total_seconds() // 60),
    )


# --- CSV -----------------------------------------------------------------------------------------

# Codes, not words, whatever language the console speaks (as the history's export): tools read these by name.
CSV_COLUMNS = [
    "first_day", "last_day", "breakdown", "value", "shown", "started", "start_rate",
    *(outcome.value for outcome in Outcome), "in_progress", *(f"{outcome.value}_rate" for outcome in Outcome),
    *(f"verdict_{verdict}" for verdict in VERDICTS), "answered", "median_seconds", "p90_seconds",
]


def _rate(value: float | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def csv_rows(found: FunnelReport) -> list[list[Any]]:
    """The whole period first ("all"), then every breakdown's rows, as the page shows them."""
    rows = [("all", "all", found.total)] + [(breakdown, value, counts) for breakdown, values in found.breakdowns()
                                            for value, counts in values.items()]
    return [_csv_line(found, breakdown, value, counts) for breakdown, value, counts in rows]


def _csv_line(found: FunnelReport, breakdown: str, value: str, counts: Counts) -> list[Any]:
    median = counts.median_seconds
    return [
        found.first_day.isoformat(), found.last_day.isoformat(), breakdown, value, counts.shown, counts.started,
        _rate(counts.start_rate), *(counts.outcomes[outcome] for outcome in Outcome), counts.in_progress,
        *(_rate(counts.rate(outcome)) for outcome in Outcome),
        *(counts.verdicts.get(verdict, 0) for verdict in VERDICTS),
        len(counts.seconds), None if median is None else f"{median:g}", counts.p90_seconds,
    ]


@bp.get("/funnel.csv")
@require_role(Role.ANALYST)
def funnel_csv() -> Response:
    period = _period()
    found = funnel.report(period.first_day, period.last_day)
    filename = f"passid-funnel-{period.first_day:%Y%m%d}-{period.last_day:%Y%m%d}.csv"
    return csv_response(filename, CSV_COLUMNS, csv_rows(found))
