"""how long the webhook receiver took to answer a test event (arrival to commit)

Revision ID: 0007_webhook_answered_ms
Revises: 0006_rate_limit_counters
Create Date: 2026-11-26 18:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007_webhook_answered_ms'
down_revision = '0006_rate_limit_counters'
branch_labels = None
depends_on = None


def upgrade():
    # Milliseconds from the receiver's first look at a call to the event's row being written; the go-live
    # checklist reads it for "answers 200 within 10 seconds". Nullable: rows stored before it are unmeasured.
    with op.batch_alter_table('webhook_receipt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_ms', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_receipt', schema=None) as batch_op:
        batch_op.drop_column('answered_ms')
