"""What the customer reads: deny reasons and claims in plain, translatable words.

The sanctions hard deny is deliberately worded like any other failure:
telling a customer they matched a watch-list is tipping-off. Staff and the
institution's backend still get the real reason from the result record.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from typing import Any

from babel import Locale
from babel.numbers import NumberPattern, format_currency
from flask_babel import LazyString, format_decimal, format_percent, lazy_gettext, ngettext
from flask_babel import gettext as _

from app.config import RISK_ASSESSMENT_PERMISSIONS
from app.passid import DenyReason, restrict_claims
from app.plumbing.i18n import request_locale
from app.rules.verifications import FinalStatus

NEUTRAL_DECLINE = DenyReason.HARD_DENY_SANCTIONS_MATCH


# What each permission lets the bank see, in the customer's words, for the first screen ("What Demo Bank will
# see"). The same sentences the PASSID app's consent screen shows (the sandbox phone, app/sandbox/phone.py,
# which imports nothing of ours): the customer reads the same list here and in the app, in every language.
PERMISSION_WORDS: dict[str, LazyString] = {
    "full_score": lazy_gettext("Your financial stability score (FSI) and its tier"),
    "income_verified": lazy_gettext("Whether your income is verified, and its band"),
    "identity_verified": lazy_gettext("Whether your identity is verified"),
    "sanctions_clear": lazy_gettext("Whether you are clear of sanctions lists"),
    "payment_reliability": lazy_gettext("How reliably you pay your bills"),
    "savings_consistency": lazy_gettext("How consistently you save"),
    "fraud_risk": lazy_gettext("Your fraud risk level (low, medium or high)"),
}


def what_the_bank_sees(permissions: Iterable[str]) -> list[str]:
    """The requested permissions as the customer reads them, in the contract's order; one PASSID adds later
    and we have no words for yet is left out rather than shown as a code."""
    return [str(PERMISSION_WORDS[p]) for p in permissions if p in PERMISSION_WORDS]


def deny_message(reason: str | None, institution_name: str) -> str:
    """The customer's words for a deny reason; a reason PASSID adds later reads as a plain failure."""
    # Keyed by DenyReason, a StrEnum: the reason as stored (a plain string) finds its member's entry.
    messages: dict[str, str] = {
        DenyReason.TOKEN_NOT_FOUND: _(
            "We couldn't find that token. Check it, or create a new share in the PASSID app and try again."
        ),
        DenyReason.TOKEN_EXPIRED: _("That token has expired. Create a fresh share in the PASSID app and try again."),
        DenyReason.TOKEN_REVOKED: _(
            "That token was revoked in the PASSID app. Create a new share in the app to continue."
        ),
        DenyReason.TOKEN_ALREADY_USED: _(
            "That token has already been used — each token works once. Create a new share in the PASSID app."
        ),
        DenyReason.INSTITUTION_MISMATCH: _(
            "That token was made for a different organisation. In the PASSID app, create a new share "
            "for %(name)s.",
            name=institution_name,
        ),
        NEUTRAL_DECLINE: _(
            "We can't complete this verification here. Please contact %(name)s to continue your application.",
            name=institution_name,
        ),
    }
    return messages.get(reason or "", _("We couldn't verify that token. Please try again."))


def request_end_message(status: FinalStatus) -> str:
    if status == FinalStatus.EXPIRED:
        return _("This code has expired. Generate a new code to try again.")
    return _("The request was declined in the PASSID app. You can start again whenever you're ready.")


# PASSID's income bands: "GBP 40k-60k" (docs: passid-api.md, claims table).
_INCOME_BAND = re.compile(r"^([A-Z]{3}) (\d{1,6})k-(\d{1,6})k$")


def _whole_currency_pattern(locale: Locale) -> NumberPattern:
    """The locale's own currency pattern (symbol side, spacing, grouping) without the decimals.

    A band's amounts are whole thousands, so "£1,500,000.00" would only add noise; a compact
    format ("£2M") would round the verified band until it is wrong, and "¤#,##0" would put the
    symbol first where the locale puts it last ("1.500.000 £" in German)."""
    pattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (0, 0)
    return pattern


def income_band_text(band: str) -> str:
    """An income band's amounts written in full as the customer's locale writes money
    ("£1,500,000 to £2,000,000", "1 500 000 £GB à 2 000 000 £GB"): the customer sees exactly the band
    PASSID verified. A band in another shape is shown as PASSID sent it rather than guessed at."""
    match = _INCOME_BAND.match(band.strip())
    if match is None:
        return band
    currency, low, high = match.group(1), int(match.group(2)) * 1000, int(match.group(3)) * 1000
    locale = request_locale()
    pattern = _whole_currency_pattern(locale)

    def money(amount: int) -> str:
        return format_currency(amount, currency, format=pattern, locale=locale, currency_digits=False)

    return _("%(low)s to %(high)s", low=money(low), high=money(high))


def _score(value: Any, highest: float) -> float | None:
    """A claim's score if it is a finite number from 0 to `highest` (passid-api.md), else None.

    Claims are not validated on the way in, and PASSID answering nonsense (None, "n/a", NaN, 1e300)
    must cost the customer one line, not a 500 from Babel. A number sent as a string still counts;
    a bool does not, though Python calls it an int."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):  # "n/a"; an int too large for a float
        return None
    return number if math.isfinite(number) and 0 <= number <= highest else None


def minutes_left_sentences(seconds_remaining: int) -> dict[str, str]:
    """What the countdown's screen-reader line says as each whole minute begins, keyed by minutes left.

    widget.js cannot choose a plural form (Arabic has six, Polish three), so the server renders every
    sentence the countdown can need, from the request's time to live down to one minute: a handful,
    since a request lasts minutes. The script announces `sentences[m]` when m minutes are left."""
    return {str(minutes): ngettext("%(num)d minute left", "%(num)d minutes left", minutes)
            for minutes in range(seconds_remaining // 60, 0, -1)}


def claim_lines(claims: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """One line per claim the institution received, with True/False for a tick or a cross."""
    lines: list[tuple[str, bool | None]] = []
    # Yes/no claims only when PASSID sent true or false: the text "false" must not read as a tick.
    if isinstance(claims.get("income_verified"), bool):
        if claims["income_verified"]:
            band = claims.get("income_band")
            lines.append((_("Income verified (%(band)s)", band=income_band_text(str(band))) if band
                          else _("Income verified"), True))
        else:
            lines.append((_("Income not verified"), False))
    if isinstance(claims.get("identity_verified"), bool):
        ok = claims["identity_verified"]
        lines.append((_("Identity verified") if ok else _("Identity not verified"), ok))
    if isinstance(claims.get("sanctions_clear"), bool):
        ok = claims["sanctions_clear"]
        lines.append((_("Clear of sanctions lists") if ok else _("Sanctions check needs review"), ok))
    # A score outside its range is left out: there is no true sentence to say about it.
    reliability = _score(claims.get("payment_reliability"), 1)
    if reliability is not None:
        lines.append((_("Pays on time %(percent)s of the time", percent=format_percent(reliability)), None))
    savings = _score(claims.get("savings_consistency"), 100)
    if savings is not None:
        lines.append((_("Savings consistency %(score)s out of 100", score=format_decimal(savings)), None))
    if "fraud_risk" in claims:
        risk = {"low": _("low"), "medium": _("medium"), "high": _("high")}.get(
            str(claims["fraud_risk"]), str(claims["fraud_risk"])
        )
        lines.append((_("Fraud risk: %(risk)s", risk=risk), claims["fraud_risk"] == "low"))
    return lines


def customer_claims(claims: dict[str, Any], shown: Iterable[str]) -> dict[str, Any]:
    """The claims the customer's own success screen draws (score badge, tier, lines): those of the permissions
    the bank chose to show (`shown`, PASSID_CUSTOMER_CLAIMS), never its own risk assessment (fraud risk,
    sanctions) whatever `shown` says: how their screening came out is the bank's to tell, and for sanctions
    telling is tipping-off."""
    return restrict_claims(claims, [p for p in shown if p not in RISK_ASSESSMENT_PERMISSIONS])


def token_format_message() -> str:
    return _(
        "That doesn't look like a PASSID token. It has 12 or 16 letters and numbers, "
        "like PASSID-AB3X-7YQM-K9PQ-3MNX."
    )


def rate_limited_message() -> str:
    return _("Too many attempts from this device. Please wait a minute, then try again.")


def view_over_message() -> str:
    """An old poll or resume URL of a finished request: the result is no longer shown (no hint what it was)."""
    return _("This verification has finished. Start again to verify.")
