"""How the console writes moments and numbers: in the staff member's language (Babel), moments always in UTC.

Stored times are naive UTC. English keeps the ISO-like "2026-11-26 14:05 UTC" staff know and tests read;
French, German and Spanish get their own date order and separators from Babel's CLDR data
("26/11/2026 14:05 UTC", "26.11.26, 14:05 UTC"). Outside a request (the CLI, unit tests) it is English.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel.dates import format_datetime
from babel.numbers import format_decimal
from flask_babel import gettext as _

from app.plumbing.i18n import request_locale


def console_time_pattern(seconds: bool = False) -> str:
    """The CLDR pattern (or Babel format name) of a console time in the request's language."""
    if request_locale().language == "en":
        return "yyyy-MM-dd HH:mm:ss" if seconds else "yyyy-MM-dd HH:mm"
    return "medium" if seconds else "short"


def console_moment(moment: datetime, pattern: str) -> str:
    """`moment` (naive means UTC) in `pattern`, without the zone's name."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return format_datetime(aware, pattern, tzinfo=UTC, locale=request_locale())


def console_time(moment: datetime | None, seconds: bool = False) -> str:
    """`moment` for a console page ("" for none)."""
    if moment is None:
        return ""
    return _("%(datetime)s UTC", datetime=console_moment(moment, console_time_pattern(seconds)))


def console_number(number: float | int) -> str:
    """1234 → "1,234" (German "1.234")."""
    return format_decimal(number, locale=request_locale())
