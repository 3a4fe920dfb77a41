"""`flask passid checklist`: the go-live checklist of the console's page, in the terminal, for scripts too."""

from __future__ import annotations

import click

from app.golive.facts import gather_facts
from app.golive.verdicts import evaluate_checklist, failed
from app.golive.wording import STAFF_WORDING


@click.command("checklist")
@click.pass_context
def checklist_command(ctx: click.Context) -> None:
    """The go-live checklist; exits non-zero while any item fails."""
    items = evaluate_checklist(gather_facts(https=None), STAFF_WORDING)
    for item in items:
        click.echo(f"[{item.label.upper()}] {item.title}")
        click.echo(f"    {item.detail}")
        if item.how_to_fix and item.verdict not in ("pass", "by_construction"):
            click.echo(f"    fix: {item.how_to_fix}")
    failures = failed(items)
    passed = sum(item.verdict == "pass" for item in items)
    click.echo(f"{passed} of {len(items)} pass, {len(failures)} fail, {len(items) - passed - len(failures)} "
               "cannot be checked from here.")
    if failures:
        ctx.exit(1)
