"""rate-limit counters shared by every app process

Revision ID: 0006_rate_limit_counters
Revises: 0005_webhook_rejections
Create Date: 2026-11-26 14:30:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0006_rate_limit_counters'
down_revision = '0005_webhook_rejections'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
