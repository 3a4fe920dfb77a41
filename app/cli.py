"""Operator commands: `flask passid …`."""

from __future__ import annotations

import click
from flask import Flask, current_app

from app.passid_connection import passid_connection


def init_app(app: Flask) -> None:
    app.cli.add_command(passid_group)


@click.group("passid")
def passid_group() -> None:
    """Talk to PASSID (live or the embedded sandbox)."""


@passid_group.command("demo")
def demo_command() -> None:
    """Onboard the demo institution on the embedded sandbox (once) and print where to go."""
    connection = passid_connection()
    base = current_app.config["PUBLIC_BASE_URL"]
    click.echo("PASSID Verify for Flask")
    where = " (embedded sandbox)" if connection.sandbox else ""
    click.echo(f"  PASSID API:        {connection.base_url}{where}")
    if connection.institution_id:
        name = current_app.config["PASSID_INSTITUTION_NAME"]
        click.echo(f"  Demo institution:  {name} ({connection.institution_id})")
    click.echo(f"  Sandbox phone:     {base}/sandbox/phone")
    click.echo(f"  Share a token:     {base}/sandbox/phone/share")
    click.echo(f"  Health:            {base}/healthz")
