"""encrypt claims, tokens, codes and webhook bodies; keyed hashes for search

Revision ID: 0011_encryption_at_rest
Revises: 0010_staff_roles_and_audit
Create Date: 2026-11-26 19:40:00

The schema first (encrypted columns widened to Text or kept binary, the keyed-hash columns, the clear
tier, the webhook receipt's request id and token hash, the outcome's score renamed so that no claim's
name is a column of ours), then every row already stored is encrypted under the key the app runs
with (PASSID_DATA_KEY, or the one generated into instance/), its hashes and tier filled in.
Downgrade decrypts them back into the old columns.

Old clear copies can survive in free pages of the database file (and in backups): after upgrading a
database that held data, run VACUUM (SQLite) or VACUUM FULL (PostgreSQL).
"""
import json

import sqlalchemy as sa
from alembic import op
from flask import current_app

from app.plumbing import encryption

# revision identifiers, used by Alembic.
revision = '0011_encryption_at_rest'
down_revision = '0010_staff_roles_and_audit'
branch_labels = None
depends_on = None

_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}

# What this revision encrypts, as its own copy: the app's list (encryption.ENCRYPTED_TABLES) may grow
# with later revisions, and this one must keep doing exactly what it did.
_TABLES = (
    encryption.EncryptedTable(
        "verification", "id", "created_at",
        text_columns=("token", "claims_json", "permissions_json", "code", "deny_reason", "decline_reason",
                      "recommendation", "corridor"),
        hashes=(("token_hash", "token"), ("code_hash", "code")),
    ),
    encryption.EncryptedTable(
        "outcome_report", "id", "id",
        text_columns=("token", "amount", "notes", "score_at_decision"),
        hashes=(("token_hash", "token"),),
    ),
    encryption.EncryptedTable("webhook_receipt", "id", "id", bytes_columns=("body",)),
    encryption.EncryptedTable("verification_session", "id", "created_at", text_columns=("permissions_json",)),
)


def _keyring():
    """The keyring the app installed (`flask db upgrade` runs inside its app context).

    Only asked for when there are rows to rewrite: the standalone sandbox (`flask --app app.sandbox
    db upgrade`) has no keyring, and none of our rows either.
    """
    ring = current_app.extensions.get(encryption.EXTENSION)
    if ring is None:
        raise RuntimeError("rows to encrypt but no PASSID_DATA_KEY: run `flask --app app db upgrade`")
    return ring


def _has_rows(connection) -> bool:
    return any(connection.execute(sa.text(f"SELECT 1 FROM {spec.name} LIMIT 1")).first()
               for spec in _TABLES)


def _text(table, column, length, **kw):
    """Widen a clear column to Text (PostgreSQL's USING for a number)."""
    table.alter_column(column, existing_type=length, type_=sa.Text(), **kw)


def upgrade():
    with op.batch_alter_table('verification', schema=None) as batch_op:
        batch_op.drop_index('ix_verification_code')
        batch_op.drop_index('ix_verification_token')
        for column, old in (('code', sa.String(9)), ('token', sa.String(19)), ('deny_reason', sa.String(40)),
                            ('decline_reason', sa.String(200)), ('recommendation', sa.String(20)),
                            ('corridor', sa.String(20))):
            _text(batch_op, column, old, existing_nullable=True)
        batch_op.add_column(sa.Column('code_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('tier', sa.String(length=1), nullable=True))
        batch_op.create_index('ix_verification_code_hash', ['code_hash'], unique=False)
        batch_op.create_index('ix_verification_token_hash', ['token_hash'], unique=False)
        batch_op.create_index('ix_verification_tier', ['tier'], unique=False)

    # The token's unique constraint: unnamed when 0003 made it (PostgreSQL calls it outcome_report_token_key,
    # SQLite nothing, which the naming convention names for the batch copy), named after a downgrade.
    unique = next(constraint.get('name') or 'uq_outcome_report_token'
                  for constraint in sa.inspect(op.get_bind()).get_unique_constraints('outcome_report')
                  if constraint['column_names'] == ['token'])
    with op.batch_alter_table('outcome_report', schema=None, naming_convention=_NAMING) as batch_op:
        batch_op.drop_constraint(unique, type_='unique')
        _text(batch_op, 'token', sa.String(19), existing_nullable=False)
        _text(batch_op, 'amount', sa.String(40), existing_nullable=False)
        batch_op.alter_column('fsi_score', new_column_name='score_at_decision', existing_type=sa.Integer(),
                              type_=sa.Text(), existing_nullable=True, postgresql_using='fsi_score::text')
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_outcome_report_token_hash', ['token_hash'], unique=True)

    with op.batch_alter_table('webhook_receipt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_webhook_receipt_request_id', ['request_id'], unique=False)
        batch_op.create_index('ix_webhook_receipt_token_hash', ['token_hash'], unique=False)

    connection = op.get_bind()
    if not _has_rows(connection):
        return
    ring = _keyring()
    _fill_tiers(connection)
    _fill_receipt_subjects(connection, ring)
    how = encryption.encryption_of_clear_rows(ring)
    for spec in _TABLES:
        encryption.rewrite_table(connection, ring, spec, how, commit=False)


def _fill_tiers(connection) -> None:
    """The clear tier, from the claims while they are still clear."""
    rows = connection.execute(sa.text(
        "SELECT id, claims_json FROM verification WHERE claims_json IS NOT NULL")).all()
    for row_id, claims_json in rows:
        try:
            claims = json.loads(claims_json)
        except ValueError:
            continue
        tier = claims.get("tier") if isinstance(claims, dict) else None
        if isinstance(tier, str) and len(tier) == 1:
            connection.execute(sa.text("UPDATE verification SET tier = :tier WHERE id = :id"),
                               {"tier": tier, "id": row_id})


def _fill_receipt_subjects(connection, ring) -> None:
    """Each stored event's request id and token hash, from its body while it is still clear."""
    rows = connection.execute(sa.text("SELECT id, body FROM webhook_receipt WHERE body IS NOT NULL")).all()
    for row_id, body in rows:
        try:
            data = json.loads(bytes(body)).get("data") or {}
        except (ValueError, AttributeError):
            continue
        if not isinstance(data, dict):
            continue
        request_id, token = data.get("requestId"), data.get("token")
        connection.execute(
            sa.text("UPDATE webhook_receipt SET request_id = :request_id, token_hash = :token_hash WHERE id = :id"),
            {"id": row_id,
             "request_id": request_id if isinstance(request_id, str) and len(request_id) <= 64 else None,
             "token_hash": ring.search_hash(token) if isinstance(token, str) else None})


def downgrade():
    connection = op.get_bind()
    if _has_rows(connection):
        ring = _keyring()
        how = encryption.decryption(ring)
        for spec in _TABLES:
            encryption.rewrite_table(connection, ring, spec, how, commit=False)

    with op.batch_alter_table('webhook_receipt', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_receipt_token_hash')
        batch_op.drop_index('ix_webhook_receipt_request_id')
        batch_op.drop_column('token_hash')
        batch_op.drop_column('request_id')

    with op.batch_alter_table('outcome_report', schema=None) as batch_op:
        batch_op.drop_index('ix_outcome_report_token_hash')
        batch_op.drop_column('token_hash')
        batch_op.alter_column('score_at_decision', new_column_name='fsi_score', existing_type=sa.Text(),
                              type_=sa.Integer(), existing_nullable=True,
                              postgresql_using='score_at_decision::integer')
        batch_op.alter_column('amount', existing_type=sa.Text(), type_=sa.String(40), existing_nullable=False)
        batch_op.alter_column('token', existing_type=sa.Text(), type_=sa.String(19), existing_nullable=False)
        batch_op.create_unique_constraint('outcome_report_token_key', ['token'])

    with op.batch_alter_table('verification', schema=None) as batch_op:
        batch_op.drop_index('ix_verification_tier')
        batch_op.drop_index('ix_verification_token_hash')
        batch_op.drop_index('ix_verification_code_hash')
        batch_op.drop_column('tier')
        batch_op.drop_column('token_hash')
        batch_op.drop_column('code_hash')
        for column, old in (('code', sa.String(9)), ('token', sa.String(19)), ('deny_reason', sa.String(40)),
                            ('decline_reason', sa.String(200)), ('recommendation', sa.String(20)),
                            ('corridor', sa.String(20))):
            batch_op.alter_column(column, existing_type=sa.Text(), type_=old, existing_nullable=True)
        batch_op.create_index('ix_verification_token', ['token'], unique=False)
        batch_op.create_index('ix_verification_code', ['code'], unique=False)
