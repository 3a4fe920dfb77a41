"""The verdicts in the staff member's language: Flask-Babel's staff catalogue, the console's dates and numbers.

Kept out of `verdicts` so that module imports no Flask; the console page and `flask passid checklist` pass
`STAFF_WORDING` to `evaluate_checklist`, so both say what they said before the checklist had a package.
"""

from __future__ import annotations

from flask_babel import gettext

from app.golive.verdicts import Wording
from app.plumbing.staff_formatting import console_number, console_time

STAFF_WORDING = Wording(gettext=gettext, time=console_time, number=console_number)
