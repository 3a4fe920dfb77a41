"""`flask passid demo`: the first command a newcomer runs (`make run` runs it too)."""

from __future__ import annotations

import click

from app.config import current_settings
from app.plumbing.database import db
from app.plumbing.passid_connection import passid_connection
from app.staff.models import StaffUser


@click.command("demo")
def demo_command() -> None:
    """Onboard the demo institution on the embedded sandbox (once) and print where to go.

    With a PASSID_BASE_URL (live, or PASSID's hosted sandbox) there is no sandbox here: it onboards
    nothing, calls nothing and prints no sandbox pages, since they would not answer.
    """
    embedded = current_settings().embedded_sandbox
    connection = passid_connection()  # embedded: onboards the demo institution on first use
    base = current_settings().public_base_url
    click.echo("PASSID Verify for Flask")
    where = " (embedded sandbox)" if embedded else ""
    click.echo(f"  PASSID API:        {connection.base_url}{where}")
    if embedded and connection.institution_id:
        name = current_settings().institution_name
        click.echo(f"  Demo institution:  {name} ({connection.institution_id})")
        if connection.sandbox:
            # The key a newcomer's backend sends as X-Institution-Key, shown on the operator's own
            # terminal because no page or log ever shows it. Only the demo institution's sandbox key:
            # a configured key (live or not) has no institution id here and is never printed.
            click.echo(f"  Institution key:   {connection.api_key}   (sandbox; X-Institution-Key for /api/…)")
    click.echo(f"  Widget:            {base}/verify")
    click.echo(f"  Branch counter:    {base}/branch/   (staff)")
    click.echo(f"  Console:           {base}/console/  (staff)")
    if embedded:
        click.echo(f"  Sandbox phone:     {base}/sandbox/phone")
        click.echo(f"  Share a token:     {base}/sandbox/phone/share")
    click.echo(f"  Health:            {base}/healthz")
    if not db.session.execute(db.select(StaffUser.id).limit(1)).first():
        click.echo("  No staff account yet: .venv/bin/flask --app app staff create YOUR-NAME --role admin")
        if current_settings().staff_mfa != "off":
            click.echo("  (an admin sets up a second factor at first sign-in: an authenticator app, or a passkey"
                       f" on {base.replace('127.0.0.1', 'localhost')})")
