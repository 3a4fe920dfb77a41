"""rejected webhook calls counted, not stored one by one

Revision ID: 0005_webhook_rejections
Revises: 0004_staff_sessions
Create Date: 2026-11-26 14:30:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0005_webhook_rejections'
down_revision = '0004_staff_sessions'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
