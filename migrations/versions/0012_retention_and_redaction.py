"""redaction marks, so retention and erasure keep the record of a verification

Revision ID: 0012_retention_and_redaction
Revises: 0011_encryption_at_rest
Create Date: 2026-11-26 19:40:00

A verification's personal data can now be erased while its record stays (`app.retention`): when and
why it was erased, and which outcome had been reported for it. A webhook receipt keeps its event id
without its body. An outcome report keeps its outcome without its token and amount, so both become
nullable.

Downgrade: the older schema cannot hold an outcome report without its token or amount, so those
(already erased) reports are deleted; everything else keeps its data.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012_retention_and_redaction'
down_revision = '0011_encryption_at_rest'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('verification') as batch:
        batch.add_column(sa.Column('redacted_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('redaction_reason', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('reported_outcome', sa.String(length=20), nullable=True))
        batch.create_index('ix_verification_redacted_at', ['redacted_at'])
    with op.batch_alter_table('webhook_receipt') as batch:
        batch.add_column(sa.Column('body_erased_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('outcome_report') as batch:
        batch.alter_column('token', nullable=True)
        batch.alter_column('amount', nullable=True)


def downgrade():
    op.execute("DELETE FROM outcome_report WHERE token IS NULL OR amount IS NULL")
    with op.batch_alter_table('outcome_report') as batch:
        batch.alter_column('amount', nullable=False)
        batch.alter_column('token', nullable=False)
    with op.batch_alter_table('webhook_receipt') as batch:
        batch.drop_column('body_erased_at')
    with op.batch_alter_table('verification') as batch:
        batch.drop_index('ix_verification_redacted_at')
        batch.drop_column('reported_outcome')
        batch.drop_column('redaction_reason')
        batch.drop_column('redacted_at')
