"""What an outcome report must hold, checked the same way in the console's form and in `flask passid outcome`.

Messages are written for the person at the desk: what is wrong and what to type instead.
"""

from __future__ import annotations

import re
from decimal import Decimal

from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _

MAX_NOTES = 1000
MAX_PRODUCT_TYPE = 80  # our copy's column width
MAX_AMOUNT = Decimal("1000000000000")
_AMOUNT = re.compile(r"^\d{1,13}(\.\d{1,4})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# The outcome codes' names for staff (app.rules.outcomes keeps the English meanings for the CLI's help).
OUTCOME_LABELS: dict[str, LazyString] = {
    "repaid": lazy_gettext("Repaid"),
    "no_default": lazy_gettext("No default"),
    "delinquent": lazy_gettext("Delinquent"),
    "defaulted": lazy_gettext("Defaulted"),
    "fraud_confirmed": lazy_gettext("Fraud confirmed"),
    "account_closed": lazy_gettext("Account closed"),
    "other": lazy_gettext("Other"),
}


def outcome_label(outcome: str) -> str:
    """`fraud_confirmed` → `Fraud confirmed`, in the staff member's language (the code when unknown)."""
    label = OUTCOME_LABELS.get(outcome)
    return str(label) if label is not None else outcome.replace("_", " ").capitalize()


def parse_amount(raw: str) -> Decimal:
    """A non-negative amount in plain digits; raises ValueError with the reason to show."""
    text = raw.strip()
    if not _AMOUNT.match(text):
        raise ValueError(_("Enter the amount in digits only, like 2500 or 2500.50 (no commas or currency signs)."))
    amount = Decimal(text)
    if amount > MAX_AMOUNT:
        raise ValueError(_("That amount is too large; check it and try again."))
    return amount


def parse_currency(raw: str) -> str:
    text = raw.strip().upper()
    if not _CURRENCY.match(text):
        raise ValueError(_("Use a three-letter ISO-4217 currency code, like USD, GBP or KES."))
    return text


def notes_problem(outcome: str | None, notes: str) -> str | None:
    """PASSID requires notes for "other" and takes at most 1000 characters."""
    if len(notes) > MAX_NOTES:
        return _("Notes can be at most %(max)d characters (you have %(num)d).", max=MAX_NOTES, num=len(notes))
    if outcome == "other" and not notes.strip():
        return _('Explain the outcome in the notes: "Other" needs a few words.')
    return None
