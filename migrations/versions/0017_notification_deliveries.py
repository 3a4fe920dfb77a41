"""the bank's notifications: one outbox row per event sent to PASSID_NOTIFY_URL

Revision ID: 0017_notification_deliveries
Revises: 0016_verdicts_and_session_cancel
Create Date: 2026-12-05 22:00:00

Signed events to the bank's backend (`app.rules.notifications`) go through the same delivery engine as the
sandbox's webhooks (`app.plumbing.outbound_delivery`), over a table of their own: the same delivery columns
(the body and its signature fixed when the event is made, attempts, the next attempt's time, the lease a
pass claims), plus the event's key, unique, so the same end of the same session is one event however often
it is reported, and whether it is a test event. Bodies carry ids, references, status and verdicts only:
no claims, no tokens, so nothing here is encrypted.

Downgrade drops the table, with any delivery still pending.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017_notification_deliveries'
down_revision = '0016_verdicts_and_session_cancel'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notification_delivery',
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('event_key', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('test', sa.Boolean(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id'),
    sa.UniqueConstraint('event_key', name='uq_notification_delivery_event_key'),
    )
    op.create_index('ix_notification_delivery_due', 'notification_delivery', ['status', 'next_attempt_at'])
    op.create_index('ix_notification_delivery_created_at', 'notification_delivery', ['created_at'])


def downgrade():
    op.drop_index('ix_notification_delivery_created_at', table_name='notification_delivery')
    op.drop_index('ix_notification_delivery_due', table_name='notification_delivery')
    op.drop_table('notification_delivery')
