"""`flask passid rotate-data-key`: every stored secret re-encrypted under the first key of PASSID_DATA_KEY."""

from __future__ import annotations

import click

from app.plumbing import encryption
from app.plumbing.database import db
from app.rules import audit


@click.command("rotate-data-key")
def rotate_data_key_command() -> None:
    """Re-encrypt every stored claim, token, code and webhook body under the first key of PASSID_DATA_KEY.

    Run once every server encrypts with NEW (PASSID_DATA_KEY=NEW, PASSID_DATA_KEYS_DECRYPT_ONLY=OLD), then
    drop OLD everywhere (docs/data-protection.md, "Rotating it").
    """
    ring = encryption.keyring()
    try:
        with db.engine.connect() as connection:
            counts = encryption.rotate_all(connection, ring)
    except encryption.DataKeyError as problem:
        raise click.ClickException(f"{problem}: list the key those rows were encrypted with after the new one"
                                   ) from None
    detail = ", ".join(f"{table} {rows}" for table, rows in counts.items())
    audit.note(audit.Action.DATA_KEY_ROTATED, actor=audit.CLI_ACTOR,
               detail=f"re-encrypted under key 1 of {len(ring.keys)}: {detail}")
    db.session.commit()
    for table, rows in counts.items():
        click.echo(f"re-encrypted  {table}: {rows} rows")
    click.echo(f"done: every encrypted value is now under the first of {len(ring.keys)} key(s); once every "
               "server encrypts with that key, the others can be removed from PASSID_DATA_KEY and "
               "PASSID_DATA_KEYS_DECRYPT_ONLY")
