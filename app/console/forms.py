"""The console's forms (Flask-WTF, so each carries its CSRF token).

Messages are written for the person at the desk: what is wrong and what to
type instead, because a rejected form is re-shown with them next to the field.
"""

from __future__ import annotations

from decimal import InvalidOperation

from flask_babel import LazyString, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, ValidationError

from app.config import current_settings
from app.rules.outcome_entry import MAX_PRODUCT_TYPE, OUTCOME_LABELS, notes_problem, parse_amount, parse_currency
from app.rules.outcomes import OUTCOME_MEANINGS

# What the page says each outcome means, under its name (`app.rules.outcome_entry.OUTCOME_LABELS`).
OUTCOME_MEANING_TEXTS: dict[str, LazyString] = {
    "repaid": lazy_gettext("Loan repaid in full, on schedule"),
    "no_default": lazy_gettext("Still active, no missed payments to date"),
    "delinquent": lazy_gettext("30+ days past due, not yet defaulted"),
    "defaulted": lazy_gettext("90+ days past due or written off"),
    "fraud_confirmed": lazy_gettext("Identity or application fraud confirmed"),
    "account_closed": lazy_gettext("Account closed by the institution (not a default)"),
    "other": lazy_gettext("Not covered by the above — explain in the notes"),
}


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
    # The bank's own currency (PASSID_DEFAULT_CURRENCY), read when the form is drawn: staff type another only
    # for a loan in a foreign currency.
    currency = StringField(lazy_gettext("Currency"), default=lambda: current_settings().default_currency)
    notes = TextAreaField(lazy_gettext("Notes"))

    def validate_amount(self, field: StringField) -> None:
        try:
            self.amount_value = parse_amount(field.data or "")
        except (ValueError, InvalidOperation) as error:
            raise ValidationError(str(error)) from None

    def validate_currency(self, field: StringField) -> None:
        try:
            field.data = parse_currency(field.data or current_settings().default_currency)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_notes(self, field: TextAreaField) -> None:
        problem = notes_problem(self.outcome.data, field.data or "")
        if problem:
            raise ValidationError(problem)
