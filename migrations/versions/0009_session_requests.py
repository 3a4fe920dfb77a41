"""the QR requests created inside a session, so their webhook records them for it

Revision ID: 0009_session_requests
Revises: 0008_verification_sessions
Create Date: 2026-11-27 10:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009_session_requests'
down_revision = '0008_verification_sessions'
branch_labels = None
depends_on = None


def upgrade():
    # One row per Generate QR inside a session: the webhook of a request whose customer closed the tab
    # before the next poll learns the session from here (the poll learns it from its signed options).
    op.create_table('session_request',
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )


def downgrade():
    op.drop_table('session_request')
