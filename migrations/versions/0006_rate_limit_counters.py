"""rate-limit counters shared by every app process

Revision ID: 0006_rate_limit_counters
Revises: 0005_webhook_rejections
Create Date: 2026-11-26 14:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_rate_limit_counters'
down_revision = '0005_webhook_rejections'
branch_labels = None
depends_on = None


def upgrade():
    # One row per limit and client (the key Flask-Limiter builds); expires_at in epoch seconds.
    # app/rate_limit_storage.py updates rows with INSERT … ON CONFLICT (key), and sweeps expired
    # rows by expires_at (hence its index).
    op.create_table(
        'rate_limit_counter',
        sa.Column('key', sa.String(length=512), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_rate_limit_counter_expires_at', 'rate_limit_counter', ['expires_at'])


def downgrade():
    op.drop_index('ix_rate_limit_counter_expires_at', table_name='rate_limit_counter')
    op.drop_table('rate_limit_counter')
