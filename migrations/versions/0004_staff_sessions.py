"""staff sessions end on the server (session version)

Revision ID: 0004_staff_sessions
Revises: 0003_back_office
Create Date: 2026-11-26 14:30:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0004_staff_sessions'
down_revision = '0003_back_office'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
