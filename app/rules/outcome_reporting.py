"""Reporting one outcome to PASSID and keeping our copy: shared by the console and the CLI.

PASSID takes one outcome per token. A second report is not a failure to show
in red: it means the answer is already on record, so the caller gets the
earlier report to show instead. Our copy is written only after PASSID has
accepted the report, so a failed call leaves nothing half-written.

A token whose person was erased (`app.rules.tombstones`) is not reported at all: the
erasure asked that nothing more about them be kept or passed on, and PASSID's
calibration can do without one loan. An erase that lands while the report is
on its way to PASSID keeps nothing of it here either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from app.passid import DuplicateOutcome, PassidClient
from app.rules import tombstones
from app.rules.outcomes import ErasedToken, OutcomeReport, find_report, save_report


@dataclass(frozen=True)
class OutcomeEntry:
    outcome: str
    product_type: str
    amount: Decimal
    currency: str
    notes: str | None


@dataclass(frozen=True)
class Reported:
    report: OutcomeReport


@dataclass(frozen=True)
class PersonErased:
    """The token's person was erased: nothing was sent to PASSID (or, in a race, nothing kept of it)."""


@dataclass(frozen=True)
class AlreadyReported:
    """`earlier` is None when the report was made elsewhere (another system, the dashboard)
    and its `outcome.reported` webhook has not reached us."""

    earlier: OutcomeReport | None


def report_outcome(
    client: PassidClient, token: str, entry: OutcomeEntry, *, recorded: Callable[[OutcomeReport], object]
) -> Reported | AlreadyReported | PersonErased:
    """Report, or say it was already reported or its person erased. Any other PassidError propagates.

    `recorded` adds the report's audit entry, committed with our copy (`save_report`).
    """
    if tombstones.refused(token=token) is not None:
        return PersonErased()
    earlier = find_report(token)
    if earlier is not None:
        # Our copy exists only once PASSID accepted a report, so asking again could only give 409.
        return AlreadyReported(earlier)
    try:
        receipt = client.report_outcome(
            token,
            entry.outcome,
            entry.product_type,
            float(entry.amount),
            currency=entry.currency,
            notes=entry.notes or None,
        )
    except DuplicateOutcome:
        return AlreadyReported(find_report(token))
    try:
        report = save_report(
            token=receipt.token,
            outcome=receipt.outcome.value,
            product_type=receipt.product_type,
            amount=receipt.amount,
            currency=receipt.currency,
            notes=entry.notes or None,
            fsi_score=receipt.fsi_score_at_decision,
            tier=receipt.tier,
            reported_at=receipt.reported_at,
            outcome_id=receipt.outcome_id,
            recorded=recorded,
        )
    except ErasedToken:
        return PersonErased()
    return Reported(report)
