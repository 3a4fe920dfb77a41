"""`flask passid webhook-test`: PASSID sends a test event, and we watch it arrive with a valid signature."""

from __future__ import annotations

import time

import click

from app.passid import PassidError
from app.plumbing.database import db
from app.plumbing.passid_connection import passid_client
from app.rules import audit
from app.rules.webhook_receipts import receipt_for_event


@click.command("webhook-test")
@click.option("--wait", default=15.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for the test event to reach this app (0: do not wait).")
def webhook_test_command(wait: float) -> None:
    """Ask PASSID to send a test webhook, and check it arrives here with a valid signature."""
    try:
        event_id = passid_client().send_test_webhook()
    except PassidError as error:
        raise click.ClickException(f"PASSID did not take the test webhook: {error}") from None
    audit.record(audit.Action.TEST_WEBHOOK_SENT, subject=event_id, actor=audit.CLI_ACTOR)
    click.echo(f"sent  test webhook {event_id}")
    if wait <= 0:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        receipt = receipt_for_event(event_id)
        db.session.rollback()  # end the read so the next one sees the receiver's commits
        if receipt is not None:
            if receipt.signature_result != "valid":
                raise click.ClickException(
                    f"it arrived, but its signature was {receipt.signature_result}: "
                    "PASSID_WEBHOOK_SECRET must equal the secret saved with PASSID"
                )
            click.echo("received  signature valid")
            return
        time.sleep(0.2)
    raise click.ClickException(
        f"not received here within {wait:g}s: check the webhook URL registered with PASSID (flask passid checklist)"
    )
