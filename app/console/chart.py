"""The console's charts (calibration by tier, the funnel), drawn on the server as inline SVG.

No JavaScript and no chart library: five pairs of bars (or eight funnel steps) are a few dozen SVG
elements, and drawing them here keeps the console free of scripts (our CSP
allows none inline) and lets a test check the picture without a browser.
Colours are SVG presentation attributes, not `style`, for the same CSP.

Accessibility: each picture is one `role="img"` with a <title> and a <desc>
that says in words what the bars show; the page repeats the numbers in a
table beneath it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from babel.numbers import format_percent
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup, escape

from app.passid import CohortReport, CohortTier
from app.plumbing.i18n import request_locale
from app.plumbing.staff_formatting import console_number
from app.rules.funnel import Counts, Outcome

WIDTH, HEIGHT = 640, 340
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 56, 70
OBSERVED_FILL = "#006b43"
EXPECTED_FILL = "#ffffff"
EXPECTED_STROKE = "#14213d"
INK, MUTED, GRID = "#14213d", "#4a5160", "#d5d9e0"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# Axis tops whose quarters are round percentages.
_SCALE_TOPS = (0.02, 0.04, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def percent(rate: float | None) -> str:
    """0.0425 → '4.25%' (French '4,25 %'), 0.02 → '2%', None → '—': Babel, in the request's language
    (English outside a request, as in unit tests)."""
    if rate is None:
        return "—"
    locale = request_locale()
    # The locale's own percent pattern (French and German put a space before the sign), with up to
    # two decimals so a small tier's 6.67% does not read as 7%.
    pattern = copy.copy(locale.percent_formats[None])
    pattern.frac_prec = (0, 2)
    return format_percent(rate, pattern, locale=locale)


def has_observations(report: CohortReport) -> bool:
    return any(tier.observed_default_rate is not None for tier in report.tiers)


def scale_top(tiers: Sequence[CohortTier]) -> float:
    """The smallest round axis top that fits every bar."""
    highest = max(
        [rate for tier in tiers for rate in (tier.observed_default_rate, tier.expected_default_rate) if rate],
        default=0.0,
    )
    return next((top for top in _SCALE_TOPS if highest <= top), 1.0)


def describe(report: CohortReport) -> str:
    """The chart in words, for the <desc> (what a screen reader announces)."""
    parts = []
    for tier in report.tiers:
        if tier.observed_default_rate is None:
            parts.append(ngettext(
                "Tier %(tier)s: no outcomes reported yet, expected %(expected)s, %(num)d verification.",
                "Tier %(tier)s: no outcomes reported yet, expected %(expected)s, %(num)d verifications.",
                tier.verifications, tier=tier.tier, expected=percent(tier.expected_default_rate)))
            continue
        outcomes = ngettext("%(num)d outcome", "%(num)d outcomes", tier.outcomes_reported)
        parts.append(ngettext(
            "Tier %(tier)s: observed %(observed)s from %(outcomes)s, expected %(expected)s, %(num)d verification.",
            "Tier %(tier)s: observed %(observed)s from %(outcomes)s, expected %(expected)s, %(num)d verifications.",
            tier.verifications, tier=tier.tier, observed=percent(tier.observed_default_rate), outcomes=outcomes,
            expected=percent(tier.expected_default_rate)))
    lead = [] if has_observations(report) else [
        _("No outcomes have been reported yet, so only expected rates are drawn.")]
    return " ".join(lead + parts)


def _text(x: float, y: float, content: str, *, size: int = 12, anchor: str = "middle",
          fill: str = INK, weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
        f'font-weight="{weight}">{escape(content)}</text>'
    )


def cohort_chart_svg(report: CohortReport, *, chart_id: str = "cohort-chart") -> Markup:
    """Observed vs expected default rate by tier, with counts under each tier."""
    tiers = list(report.tiers)
    top = scale_top(tiers)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base_y = TOP + plot_h

    def y_for(rate: float) -> float:
        return base_y - plot_h * min(max(rate, 0.0), top) / top

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    title = _("Default rate by tier: observed against expected")  # outside the f-string, so Babel extracts it
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="console-chart" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-labelledby="{escape(title_id)} {escape(desc_id)}" font-family="{FONT}">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(describe(report))}</desc>',
    ]
    # Legend: shape and outline differ as well as colour, so it reads in grey scale too.
    out.append(f'<rect x="{LEFT}" y="12" width="14" height="14" fill="{OBSERVED_FILL}"/>')
    out.append(_text(LEFT + 20, 24, _("Observed default rate"), anchor="start"))
    out.append(
        f'<rect x="{LEFT + 200}" y="12" width="14" height="14" fill="{EXPECTED_FILL}" '
        f'stroke="{EXPECTED_STROKE}" stroke-width="1.5" stroke-dasharray="4 2"/>'
    )
    out.append(_text(LEFT + 220, 24, _("Expected default rate"), anchor="start"))

    for step in range(5):
        rate = top * step / 4
        y = y_for(rate)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(_text(LEFT - 6, y + 4, percent(rate), size=11, anchor="end", fill=MUTED))
    out.append(f'<line x1="{LEFT}" y1="{base_y}" x2="{WIDTH - RIGHT}" y2="{base_y}" stroke="{INK}"/>')

    group_w = plot_w / max(len(tiers), 1)
    bar_w = min(34.0, group_w / 3)
    for index, tier in enumerate(tiers):
        centre = LEFT + group_w * (index + 0.5)
        observed_x, expected_x = centre - bar_w - 2, centre + 2
        if tier.observed_default_rate is not None:
            y = y_for(tier.observed_default_rate)
            out.append(
                f'<rect data-series="observed" data-tier="{escape(tier.tier)}" x="{observed_x:.1f}" y="{y:.1f}" '
                f'width="{bar_w:.1f}" height="{base_y - y:.1f}" fill="{OBSERVED_FILL}"/>'
            )
            out.append(_text(observed_x + bar_w / 2, y - 4, percent(tier.observed_default_rate), size=11))
        else:
            out.append(_text(observed_x + bar_w / 2, base_y - 4, "—", size=11, fill=MUTED))
        if tier.expected_default_rate is not None:
            y = y_for(tier.expected_default_rate)
            out.append(
                f'<rect data-series="expected" data-tier="{escape(tier.tier)}" x="{expected_x:.1f}" y="{y:.1f}" '
                f'width="{bar_w:.1f}" height="{base_y - y:.1f}" fill="{EXPECTED_FILL}" stroke="{EXPECTED_STROKE}" '
                f'stroke-width="1.5" stroke-dasharray="4 2"/>'
            )
            out.append(_text(expected_x + bar_w / 2, y - 4, percent(tier.expected_default_rate), size=11,
                             fill=MUTED))
        out.append(_text(centre, base_y + 18, _("Tier %(tier)s", tier=tier.tier), size=13, weight="bold"))
        out.append(_text(centre, base_y + 35, ngettext("%(num)d outcome", "%(num)d outcomes", tier.outcomes_reported),
                         size=11, fill=MUTED))
        out.append(_text(centre, base_y + 50, ngettext("%(num)d verified", "%(num)d verified", tier.verifications),
                         size=11, fill=MUTED))

    if not has_observations(report):
        out.append(_text(LEFT + plot_w / 2, TOP + 16, _("No outcomes reported yet — expected rates only"),
                         size=13, fill=MUTED))
    out.append("</svg>")
    return Markup("".join(out))


# --- the funnel ----------------------------------------------------------------------------------

FUNNEL_LABEL_W, FUNNEL_ROW_H, FUNNEL_TOP = 190, 30, 40
FUNNEL_PLOT_W = WIDTH - FUNNEL_LABEL_W - 220  # room on the right for "1,234 · 83.33% of widgets shown"
FUNNEL_FILLS = {
    "shown": INK, "started": INK, Outcome.APPROVED: OBSERVED_FILL, Outcome.DENIED: "#a4161a",
    Outcome.DECLINED: "#8a5a00", Outcome.EXPIRED: MUTED, Outcome.ABANDONED: "#767d8a", "in_progress": EXPECTED_FILL,
}


def funnel_steps(counts: Counts, names: dict[str, str]) -> list[tuple[str, str, int, str | None]]:
    """(step, its name, count, its share in words) for every bar: shown, started, each end, in progress."""
    def of_started(count: int) -> str | None:
        return _("%(rate)s of started", rate=percent(count / counts.started)) if counts.started else None

    steps: list[tuple[str, str, int, str | None]] = [
        ("shown", names["shown"], counts.shown or 0, None),
        ("started", names["started"], counts.started,
         _("%(rate)s of widgets shown", rate=percent(counts.start_rate)) if counts.start_rate is not None else None),
    ]
    steps += [(outcome.value, names[outcome.value], counts.outcomes[outcome], of_started(counts.outcomes[outcome]))
              for outcome in Outcome]
    steps.append(("in_progress", names["in_progress"], counts.in_progress, of_started(counts.in_progress)))
    return steps


def describe_funnel(counts: Counts, names: dict[str, str]) -> str:
    """The funnel in words, for the <desc>."""
    parts = []
    for _step, name, count, share in funnel_steps(counts, names):
        if share is None:
            parts.append(_("%(step)s: %(count)s.", step=name, count=console_number(count)))
        else:
            parts.append(_("%(step)s: %(count)s (%(share)s).", step=name, count=console_number(count), share=share))
    return " ".join(parts)


def funnel_chart_svg(counts: Counts, names: dict[str, str], *, chart_id: str = "funnel-chart") -> Markup:
    """One bar per step, as long as its count against the longest, with its count and share beside it.

    `names`: each step's name in the staff member's language (shown, started, each outcome, in_progress).
    """
    steps = funnel_steps(counts, names)
    height = FUNNEL_TOP + FUNNEL_ROW_H * len(steps) + 12
    longest = max(count for _step, _name, count, _share in steps) or 1
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    title = _("Widgets shown, verifications started and how they ended")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="console-chart" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{escape(title_id)} {escape(desc_id)}" font-family="{FONT}">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(describe_funnel(counts, names))}</desc>',
        _text(16, 24, title, size=13, anchor="start", weight="bold"),
    ]
    for index, (step, name, count, share) in enumerate(steps):
        y = FUNNEL_TOP + FUNNEL_ROW_H * index
        width = max(FUNNEL_PLOT_W * count / longest, 1.0)  # a hairline for zero, so the row still reads as a bar
        dashed = (f' stroke="{EXPECTED_STROKE}" stroke-width="1.5" stroke-dasharray="4 2"'
                  if step == "in_progress" else "")
        out.append(_text(FUNNEL_LABEL_W - 8, y + 19, name, anchor="end"))
        out.append(f'<rect data-step="{escape(step)}" data-count="{count}" x="{FUNNEL_LABEL_W}" y="{y + 5}" '
                   f'width="{width:.1f}" height="{FUNNEL_ROW_H - 10}" fill="{FUNNEL_FILLS[step]}"{dashed}/>')
        label = console_number(count) if share is None else f"{console_number(count)} · {share}"
        out.append(_text(FUNNEL_LABEL_W + width + 6, y + 19, label, size=11, anchor="start", fill=MUTED))
    out.append("</svg>")
    return Markup("".join(out))
