"""The console's forms (Flask-WTF, so each carries its CSRF token).

Messages are written for the person at the desk: what is wrong and what to
type instead, because a rejected form is re-shown with them next to the field.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, ValidationError

from app.rules.outcomes import OUTCOME_MEANINGS

MAX_NOTES = 1000
MAX_PRODUCT_TYPE = 80  # our copy's column width
MAX_AMOUNT = Decimal("1000000000000")
_AMOUNT = re.compile(r"^\d{1,13}(\.\d{1,4})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


# The page's names and meanings of the outcome codes (app.rules.outcomes keeps the English meanings for the CLI).
OUTCOME_LABELS: dict[str, LazyString] = {
    "repaid": lazy_gettext("Repaid"),
    "no_default": lazy_gettext("No default"),
    "delinquent": lazy_gettext("Delinquent"),
    "defaulted": lazy_gettext("Defaulted"),
    "fraud_confirmed": lazy_gettext("Fraud confirmed"),
    "account_closed": lazy_gettext("Account closed"),
    "other": lazy_gettext("Other"),
}
OUTCOME_MEANING_TEXTS: dict[str, LazyString] = {
    "repaid": lazy_gettext("Loan repaid in full, on schedule"),
    "no_default": lazy_gettext("Still active, no missed payments to date"),
    "delinquent": lazy_gettext("30+ days past due, not yet defaulted"),
    "defaulted": lazy_gettext("90+ days past due or written off"),
    "fraud_confirmed": lazy_gettext("Identity or application fraud confirmed"),
    "account_closed": lazy_gettext("Account closed by the institution (not a default)"),
    "other": lazy_gettext("Not covered by the above — explain in the notes"),
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


class OutcomeForm(FlaskForm):
    outcome = RadioField(
        lazy_gettext("What happened?"),
        choices=[(value, OUTCOME_LABELS.get(value, value)) for value in OUTCOME_MEANINGS],
        validate_choice=False,  # AnyOf below says it in words instead of "Not a valid choice"
        validators=[
            InputRequired(lazy_gettext("Choose what happened to the loan.")),
            AnyOf(list(OUTCOME_MEANINGS), message=lazy_gettext("Choose one of the seven outcomes listed.")),
        ],
    )
    product_type = StringField(
        lazy_gettext("Product type"),
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            InputRequired(lazy_gettext("Say which product this was, for example personal_loan.")),
            Length(max=MAX_PRODUCT_TYPE,
                   message=lazy_gettext("Keep the product type under %(max)d characters.", max=MAX_PRODUCT_TYPE)),
        ],
    )
    amount = StringField(lazy_gettext("Amount"),
                         validators=[InputRequired(lazy_gettext("Enter the amount lent, for example 2500."))])
    currency = StringField(lazy_gettext("Currency"), default="USD")
    notes = TextAreaField(lazy_gettext("Notes"))

    def validate_amount(self, field: StringField) -> None:
        try:
            self.amount_value = parse_amount(field.data or "")
        except (ValueError, InvalidOperation) as error:
            raise ValidationError(str(error)) from None

    def validate_currency(self, field: StringField) -> None:
        try:
            field.data = parse_currency(field.data or "USD")
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_notes(self, field: TextAreaField) -> None:
        problem = notes_problem(self.outcome.data, field.data or "")
        if problem:
            raise ValidationError(problem)
