"""one verdict per verification, and a session's cancel mark

Revision ID: 0016_verdicts_and_session_cancel
Revises: 0015_erasure_tombstones
Create Date: 2026-12-05 21:40:00

Every verification now carries the app's own verdict (`app.rules.decision`: approve, review or decline),
decided once when it is recorded: the verdict in clear (a status, like the review status, so the history
filters on it), its machine-readable reasons encrypted (they follow from the claims), and the keyed hash of
the deny reason, so the history can find sanctions matches without a deny reason in clear.

Rows recorded before this revision have no verdict yet; each gets one the first time it is read, by the
same rules (`app.rules.verifications.verdict_of`), and keeps it.

A session the institution cancelled (`POST /api/sessions/<id>/cancel`) keeps when: nothing completes it after.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016_verdicts_and_session_cancel'
down_revision = '0015_erasure_tombstones'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('verification') as batch:
        batch.add_column(sa.Column('verdict', sa.String(length=10), nullable=True))
        batch.add_column(sa.Column('verdict_reasons', sa.Text(), nullable=True))
        batch.add_column(sa.Column('deny_reason_hash', sa.String(length=64), nullable=True))
        batch.create_index('ix_verification_verdict', ['verdict'])
        batch.create_index('ix_verification_deny_reason_hash', ['deny_reason_hash'])
    with op.batch_alter_table('verification_session') as batch:
        batch.add_column(sa.Column('cancelled_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('verification_session') as batch:
        batch.drop_column('cancelled_at')
    with op.batch_alter_table('verification') as batch:
        batch.drop_index('ix_verification_deny_reason_hash')
        batch.drop_index('ix_verification_verdict')
        batch.drop_column('deny_reason_hash')
        batch.drop_column('verdict_reasons')
        batch.drop_column('verdict')
