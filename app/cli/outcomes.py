"""`flask passid outcome`: what happened to the loan behind a verified token, reported to PASSID and kept here."""

from __future__ import annotations

import click

from app.cli.tokens import token_argument
from app.config import current_settings
from app.passid import NotFound, PassidError
from app.plumbing.database import db
from app.plumbing.encryption import lookup_hashes
from app.plumbing.passid_connection import passid_client
from app.rules import audit
from app.rules.outcome_entry import MAX_PRODUCT_TYPE, notes_problem, outcome_label, parse_amount, parse_currency
from app.rules.outcome_reporting import AlreadyReported, OutcomeEntry, PersonErased, report_outcome
from app.rules.outcomes import OUTCOME_MEANINGS
from app.rules.verifications import Verification


def _result_id_of(token: str) -> str | None:
    """The audit log names a verification by its result id, never by its token: the newest row for it."""
    return db.session.execute(
        db.select(Verification.id).where(Verification.token_hash.in_(lookup_hashes(token)))
        .order_by(Verification.created_at.desc()).limit(1)
    ).scalar_one_or_none()


def _outcome_choices() -> list[str]:
    return [str(outcome) for outcome in OUTCOME_MEANINGS]  # the values: click matches enum members by name


@click.command(
    "outcome",
    epilog="Outcomes: repaid (in full, on schedule), no_default (active, nothing missed), delinquent (30+ days "
    "past due), defaulted (90+ days past due or written off), fraud_confirmed, account_closed (by you, not a "
    "default), other (explain with --notes).",
)
@click.argument("token")
@click.argument("outcome", type=click.Choice(_outcome_choices()))
@click.option("--product", "product_type", required=True, help="Product type, e.g. personal_loan.")
@click.option("--amount", required=True, help="Amount lent, digits only (2500 or 2500.50).")
@click.option("--currency", default=None, help="ISO-4217 code; PASSID_DEFAULT_CURRENCY (USD unless set) if omitted.")
@click.option("--notes", default=None, help="Required for 'other'; at most 1000 characters.")
def outcome_command(token: str, outcome: str, product_type: str, amount: str, currency: str | None,
                    notes: str | None) -> None:
    """Report what happened to the loan behind a verified TOKEN (one outcome per token)."""
    token = token_argument(token)
    product_type = product_type.strip()
    if not 1 <= len(product_type) <= MAX_PRODUCT_TYPE:
        raise click.BadParameter(f"1–{MAX_PRODUCT_TYPE} characters", param_hint="--product")
    currency = currency or current_settings().default_currency
    try:
        entry = OutcomeEntry(outcome, product_type, parse_amount(amount), parse_currency(currency),
                             (notes or "").strip() or None)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    problem = notes_problem(outcome, notes or "")
    if problem:
        raise click.BadParameter(problem, param_hint="--notes")
    try:
        result = report_outcome(passid_client(), token, entry, recorded=lambda report: audit.note(
            audit.Action.OUTCOME_REPORTED, subject=_result_id_of(token), detail=report.outcome,
            actor=audit.CLI_ACTOR))
    except NotFound:
        raise click.ClickException(
            f"PASSID has no approved verification of {token} for this institution, so it takes no outcome for it"
        ) from None
    except PassidError as error:
        raise click.ClickException(f"the outcome was not reported: {error}") from None
    if isinstance(result, PersonErased):
        raise click.ClickException(f"the person behind {token} was erased: no outcome is reported or kept about them")
    if isinstance(result, AlreadyReported):
        earlier = result.earlier
        if earlier is None:
            click.echo(f"already reported  {token}: PASSID holds an outcome made elsewhere; we have no copy yet")
        else:
            click.echo(
                f"already reported  {token}: {outcome_label(earlier.outcome)} · {earlier.product_type} · "
                f"{earlier.amount_value:.2f} {earlier.currency} ({earlier.reported_at:%Y-%m-%d %H:%M} UTC)"
            )
        return
    report = result.report
    at_decision = f" (score {report.fsi_score}, tier {report.tier} at decision)" if report.fsi_score else ""
    click.echo(
        f"reported  {token}: {outcome_label(report.outcome)} · {report.product_type} · "
        f"{report.amount_value:.2f} {report.currency}{at_decision}"
    )
