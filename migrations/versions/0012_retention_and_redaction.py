"""redaction marks, so retention and erasure keep the record of a verification

Revision ID: 0012_retention_and_redaction
Revises: 0011_encryption_at_rest
Create Date: 2026-11-26 19:40:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0012_retention_and_redaction'
down_revision = '0011_encryption_at_rest'
branch_labels = None
depends_on = None


def upgrade():
    pass  # placeholder: filled in by the work this revision is named for


def downgrade():
    pass
