"""staff sessions end on the server (session version)

Revision ID: 0004_staff_sessions
Revises: 0003_back_office
Create Date: 2026-11-26 14:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_staff_sessions'
down_revision = '0003_back_office'
branch_labels = None
depends_on = None


def upgrade():
    # server_default: existing accounts start at version 1 (their old cookies carry no version and
    # are refused anyway, so everyone signs in once after this upgrade). batch_alter_table lets
    # SQLite take the change; PostgreSQL gets a plain ALTER TABLE.
    with op.batch_alter_table('staff_user') as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='1'))


def downgrade():
    with op.batch_alter_table('staff_user') as batch_op:
        batch_op.drop_column('session_version')
