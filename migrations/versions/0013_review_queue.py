"""the review queue: a verification's review status and the decisions on it

Revision ID: 0013_review_queue
Revises: 0012_retention_and_redaction
Create Date: 2026-11-26 19:40:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0013_review_queue'
down_revision = '0012_retention_and_redaction'
branch_labels = None
depends_on = None


def upgrade():
    pass  # placeholder: filled in by the work this revision is named for


def downgrade():
    pass
