"""`flask passid purge` and `redact`: the retention purge on demand, and one person's erasure now."""

from __future__ import annotations

import click

from app.config import current_settings
from app.rules import audit
from app.rules.retention import (
    AlreadyRedacted,
    RedactionRefused,
    UnknownResult,
    clean_reason,
    purge,
    redact,
    redact_reference,
    retention_cutoff,
)


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be erased, and erase nothing.")
def purge_command(dry_run: bool) -> None:
    """Erase what is older than PASSID_RETENTION_DAYS now, as the daily background purge does."""
    cutoff = retention_cutoff()
    erased = purge(dry_run=dry_run, actor=audit.CLI_ACTOR)
    days = current_settings().retention_days
    if dry_run:
        click.echo(f"dry run, nothing erased. Older than {days} days ({cutoff:%Y-%m-%d %H:%M} UTC), "
                   f"a purge would erase: {erased.describe()}")
    else:
        click.echo(f"erased (older than {days} days, before {cutoff:%Y-%m-%d %H:%M} UTC): {erased.describe()}")


@click.command("redact")
@click.argument("result_id", required=False)
@click.option("--reference", help="Erase every record of this reference of yours instead (each verification and "
              "session carrying it, and every person they reach), for an erasure request filed under it.")
@click.option("--reason", required=True, help="Why (recorded on the row and in the audit log; 1–500 characters). "
              "Name the request, not the person: the audit log is never erased.")
def redact_command(result_id: str | None, reference: str | None, reason: str) -> None:
    """Erase one person's data now: the verification RESULT_ID (or --reference REF) and everything tied to it."""
    if (result_id is None) == (reference is None):
        raise click.UsageError("name either a RESULT_ID or --reference REF (not both)")
    try:
        reason = clean_reason(reason)
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--reason") from None
    if "\x00" in (result_id or ""):  # no id holds one, and PostgreSQL refuses to even look one up
        raise click.ClickException(str(UnknownResult(result_id or "")))
    try:
        if reference is not None:
            done = redact_reference(reference, reason, actor=audit.CLI_ACTOR)
        else:
            done = redact((result_id or "").strip(), reason, actor=audit.CLI_ACTOR)
    except AlreadyRedacted as already:  # the wanted state holds: said, and not an error for a script
        click.echo(str(already))
        return
    except RedactionRefused as refused:
        raise click.ClickException(str(refused)) from None
    if reference is not None:
        click.echo(f"redacted  every record of the reference {reference.strip()!r}: "
                   f"{', '.join(done.result_ids) or 'no verification'}")
    else:
        others = done.result_ids[1:]
        click.echo(f"redacted  {done.result_ids[0]}" + (f" and {len(others)} more of the same person: "
                                                        f"{', '.join(others)}" if others else ""))
    click.echo(f"  erased: {done.erased.describe()}")
