"""erasure tombstones, and a session's own erase mark

Revision ID: 0015_erasure_tombstones
Revises: 0014_session_locale
Create Date: 2026-12-04 23:20:00

An erase (`app.retention`) now leaves a tombstone per erased token, QR request and session: only the value's
keyed hash (no personal data), when it was erased and until when it is kept, and how many events about it
came afterwards (each acknowledged, none stored). A session erased by its institution's reference keeps its
row, marked erased (`redacted_at`), with its return URL cleared.

Verifications erased before this revision have no tombstone: their tokens' hashes are gone, so none can be
made for them; PASSID's retries about them ended long ago unless they were erased in the last hours.

Downgrade drops the table and the mark; the sessions erased stay without their return URL.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015_erasure_tombstones'
down_revision = '0014_session_locale'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('erasure_tombstone',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    # Hex HMAC-SHA256 under one key of PASSID_DATA_KEY (a value gets one row per key).
    sa.Column('subject_hash', sa.String(length=64), nullable=False),
    sa.Column('erased_at', sa.DateTime(), nullable=False),
    sa.Column('keep_until', sa.DateTime(), nullable=False),
    sa.Column('later_events', sa.Integer(), nullable=False),
    sa.Column('last_event_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_erasure_tombstone_subject', 'erasure_tombstone', ['kind', 'subject_hash'])
    op.create_index('ix_erasure_tombstone_keep_until', 'erasure_tombstone', ['keep_until'])
    with op.batch_alter_table('verification_session') as batch:
        batch.add_column(sa.Column('redacted_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('verification_session') as batch:
        batch.drop_column('redacted_at')
    op.drop_index('ix_erasure_tombstone_keep_until', table_name='erasure_tombstone')
    op.drop_index('ix_erasure_tombstone_subject', table_name='erasure_tombstone')
    op.drop_table('erasure_tombstone')
