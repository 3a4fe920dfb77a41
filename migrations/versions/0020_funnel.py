"""the funnel: widgets shown, verifications started and how each ended, with nothing about the person

Revision ID: 0020_funnel
Revises: 0019_staff_second_factor
Create Date: 2026-12-06 09:00:00

`funnel_event` holds one row per shown widget, start and end (`app.rules.funnel`): its kind, channel, whether
the page ran JavaScript, its language, the device class, the hour its journey started and, for an end, the
outcome, the verdict and the seconds it took. No id, token, reference or claim, so nothing here is encrypted
and an erasure leaves it as it is. `funnel_journey` holds a QR start until its verification is recorded (or
it is abandoned): PASSID's request id, so the webhook's record finds it, and what its end is counted under.

Downgrade drops both tables, and with them the counts.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020_funnel'
down_revision = '0019_staff_second_factor'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('funnel_event',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('scripted', sa.Boolean(), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('device', sa.String(length=10), nullable=False),
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=True),
    sa.Column('verdict', sa.String(length=10), nullable=True),
    sa.Column('seconds', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_funnel_event_hour', 'funnel_event', ['hour'])
    op.create_table('funnel_journey',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('scripted', sa.Boolean(), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('device', sa.String(length=10), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id'),
    )
    op.create_index('ix_funnel_journey_expires_at', 'funnel_journey', ['expires_at'])


def downgrade():
    op.drop_index('ix_funnel_journey_expires_at', table_name='funnel_journey')
    op.drop_table('funnel_journey')
    op.drop_index('ix_funnel_event_hour', table_name='funnel_event')
    op.drop_table('funnel_event')
