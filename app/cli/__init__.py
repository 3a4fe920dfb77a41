"""Operator commands: `flask passid …` and `flask staff …`, one module per kind of work.

Every command talks to PASSID through the same client as the web pages, so
it works against the live API and the embedded sandbox alike. A failure is
one readable line and a non-zero exit status, never a traceback.

Commands call the same rules as the console (`app.rules`, `app.golive`), never the console itself.
"""

from __future__ import annotations

import click
from flask import Flask

from app.cli.checklist import checklist_command
from app.cli.data_keys import rotate_data_key_command
from app.cli.demo import demo_command
from app.cli.erasure import purge_command, redact_command
from app.cli.outcomes import outcome_command
from app.cli.staff import staff_group
from app.cli.verifications import session_command, verify_command
from app.cli.webhooks import webhook_test_command


@click.group("passid")
def passid_group() -> None:
    """Talk to PASSID (live or the embedded sandbox)."""


for command in (demo_command, verify_command, session_command, outcome_command, webhook_test_command,
                checklist_command, purge_command, redact_command, rotate_data_key_command):
    passid_group.add_command(command)


def init_app(app: Flask) -> None:
    app.cli.add_command(passid_group)
    app.cli.add_command(staff_group)
