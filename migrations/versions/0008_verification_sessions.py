"""sessions created by the institution's server, and the verifications made for them

Revision ID: 0008_verification_sessions
Revises: 0007_webhook_answered_ms
Create Date: 2026-11-26 18:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008_verification_sessions'
down_revision = '0007_webhook_answered_ms'
branch_labels = None
depends_on = None


def upgrade():
    # One row per POST /api/sessions: what the institution's server locked (permissions, name, return URL)
    # and how long the session lives. Its status is read from the verifications made for it.
    op.create_table('verification_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('institution_name', sa.String(length=80), nullable=False),
    sa.Column('permissions_json', sa.Text(), nullable=False),
    sa.Column('return_url', sa.String(length=2048), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('verification_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verification_session_reference'), ['reference'], unique=False)

    # Nullable: verifications made without a session (plain /verify, the branch, the CLI) have neither.
    with op.batch_alter_table('verification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reference', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_verification_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_verification_reference'), ['reference'], unique=False)


def downgrade():
    with op.batch_alter_table('verification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_verification_reference'))
        batch_op.drop_index(batch_op.f('ix_verification_session_id'))
        batch_op.drop_column('reference')
        batch_op.drop_column('session_id')

    with op.batch_alter_table('verification_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_verification_session_reference'))

    op.drop_table('verification_session')
