"""the review queue: a verification's review status and the decisions on it

Revision ID: 0013_review_queue
Revises: 0012_retention_and_redaction
Create Date: 2026-11-26 19:40:00

Verifications recorded before this revision are not queued (their review_status stays NULL): by now
their claims are encrypted (0011) or erased (0012), and counter staff saw each one's verdict when it
was made. Only verifications recorded from here on can land in the queue.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013_review_queue'
down_revision = '0012_retention_and_redaction'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('verification') as batch:
        batch.add_column(sa.Column('review_status', sa.String(length=16), nullable=True))
        batch.create_index('ix_verification_review_status', ['review_status'])

    # One decision per verification: the unique key is the database's own refusal of a second one.
    op.create_table('review_decision',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('verification_id', sa.String(length=40), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    # Encrypted (a Fernet token, app/encryption.py), and NULL once erased with the verification's data.
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=80), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['verification_id'], ['verification.id'], name='fk_review_decision_verification'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('verification_id', name='uq_review_decision_verification'),
    )
    op.create_index('ix_review_decision_decided_at', 'review_decision', ['decided_at'])


def downgrade():
    op.drop_index('ix_review_decision_decided_at', table_name='review_decision')
    op.drop_table('review_decision')
    with op.batch_alter_table('verification') as batch:
        batch.drop_index('ix_verification_review_status')
        batch.drop_column('review_status')
