"""CSV downloads from the console, safe to open in a spreadsheet.

A cell that begins with = + - @ (or a tab or carriage return, which some spreadsheets skip before
reading the formula) is run as a formula when the file is opened: an institution reference or a
staff name typed as `=HYPERLINK(...)` would reach the analyst's machine as live code (CSV or
"formula" injection, OWASP). Every such cell gets a leading apostrophe, which spreadsheets show as
text and which a reader of the raw file can still recognise.

Every cell is also quoted, header included: a spreadsheet set to split on ";" would otherwise cut an
unquoted `a;=1+1` into a cell of its own that starts with `=`, where the apostrophe is out of reach.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from flask import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """One value as CSV text: None as empty, times as ISO 8601 (UTC), formulas defused."""
    if value is None:
        return ""
    text = value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: list[str], rows: Iterable[Iterable[object]]) -> str:
    """The whole document (header first), every cell through `cell` and in quotes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([cell(name) for name in header])
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue()


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[object]]) -> Response:
    """A download of `rows` under `filename`, never cached (it holds what only staff may see)."""
    response = Response(csv_text(header, rows), mimetype="text/csv")
    response.content_type = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
