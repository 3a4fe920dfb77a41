"""rejected webhook calls counted, not stored one by one

Revision ID: 0005_webhook_rejections
Revises: 0004_staff_sessions
Create Date: 2026-11-26 14:30:00

Rejected calls used to be rows of `webhook_receipt` (handling_status
'rejected'), one per call. They become counts in `webhook_rejection`, one row
per (hour, verdict, claimed event type); the existing rejected rows are folded
into those counts and deleted. The folding is done in Python so that it is
the same on SQLite and PostgreSQL (no date functions in SQL). A downgrade drops
the counts: the individual calls cannot be recreated from them.
"""
from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005_webhook_rejections'
down_revision = '0004_staff_sessions'
branch_labels = None
depends_on = None

CONTRACT_EVENT_TYPES = ("verification.completed", "verification.denied", "outcome.reported")
REJECTION_RESULTS = ("invalid", "missing", "malformed", "too_large")


def upgrade():
    rejection = op.create_table(
        'webhook_rejection',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('hour', sa.DateTime(), nullable=False),
        sa.Column('signature_result', sa.String(length=10), nullable=False),
        sa.Column('event_type', sa.String(length=40), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('refused', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(), nullable=False),
        sa.Column('last_at', sa.DateTime(), nullable=False),
        sa.Column('last_claimed_event_id', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('hour', 'signature_result', 'event_type', name='uq_webhook_rejection_bucket'),
    )
    with op.batch_alter_table('webhook_rejection', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_rejection_hour'), ['hour'], unique=False)

    _fold_rejected_receipts(rejection)


def _fold_rejected_receipts(rejection: sa.Table) -> None:
    connection = op.get_bind()
    receipt = sa.table(
        'webhook_receipt',
        sa.column('received_at', sa.DateTime()),
        sa.column('signature_result', sa.String()),
        sa.column('event_type', sa.String()),
        sa.column('claimed_event_id', sa.String()),
        sa.column('handling_status', sa.String()),
    )
    rejected = receipt.c.handling_status == 'rejected'
    buckets: dict[tuple[datetime, str, str], dict] = defaultdict(dict)
    rows = connection.execute(
        sa.select(receipt.c.received_at, receipt.c.signature_result, receipt.c.event_type, receipt.c.claimed_event_id)
        .where(rejected)
        .order_by(receipt.c.received_at)
    )
    for received_at, result, event_type, claimed_id in rows:
        key = (
            received_at.replace(minute=0, second=0, microsecond=0),
            result if result in REJECTION_RESULTS else 'invalid',
            event_type if event_type in CONTRACT_EVENT_TYPES else 'other',
        )
        bucket = buckets[key]
        bucket['calls'] = bucket.get('calls', 0) + 1
        bucket.setdefault('first_at', received_at)
        bucket['last_at'] = received_at
        bucket['last_claimed_event_id'] = claimed_id
    if buckets:
        op.bulk_insert(rejection, [
            {'hour': hour, 'signature_result': result, 'event_type': event_type, 'refused': 0, **bucket}
            for (hour, result, event_type), bucket in buckets.items()
        ])
    connection.execute(sa.delete(receipt).where(rejected))


def downgrade():
    with op.batch_alter_table('webhook_rejection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_rejection_hour'))
    op.drop_table('webhook_rejection')
