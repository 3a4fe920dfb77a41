"""encrypt claims, tokens, codes and webhook bodies; keyed hashes for search

Revision ID: 0011_encryption_at_rest
Revises: 0010_staff_roles_and_audit
Create Date: 2026-11-26 19:40:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0011_encryption_at_rest'
down_revision = '0010_staff_roles_and_audit'
branch_labels = None
depends_on = None


def upgrade():
    pass  # placeholder: filled in by the work this revision is named for


def downgrade():
    pass
