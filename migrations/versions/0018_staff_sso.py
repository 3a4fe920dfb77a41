"""staff single sign-on: accounts linked to the bank's provider, and the one break-glass account

Revision ID: 0018_staff_sso
Revises: 0017_notification_deliveries
Create Date: 2026-12-06 01:00:00

An account made by single sign-on is linked to the provider's issuer and its `sub` claim, the one
identifier OpenID Connect promises never to reassign (never to an e-mail address or a name, which can
change hands): unique together, so one person at the provider is one account here. `break_glass` marks
the one admin account that still signs in with a password when PASSID_LOCAL_PASSWORDS is off; a partial
unique index lets the database hold at most one.

Downgrade drops the columns and indexes: linked accounts become accounts without a usable password.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018_staff_sso'
down_revision = '0017_notification_deliveries'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_user') as batch:
        batch.add_column(sa.Column('sso_issuer', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('sso_subject', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('break_glass', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_staff_user_sso_identity', 'staff_user', ['sso_issuer', 'sso_subject'], unique=True)
    op.create_index('ix_staff_user_one_break_glass', 'staff_user', ['break_glass'], unique=True,
                    sqlite_where=sa.text('break_glass'), postgresql_where=sa.text('break_glass'))


def downgrade():
    op.drop_index('ix_staff_user_one_break_glass', table_name='staff_user')
    op.drop_index('ix_staff_user_sso_identity', table_name='staff_user')
    with op.batch_alter_table('staff_user') as batch:
        batch.drop_column('break_glass')
        batch.drop_column('sso_subject')
        batch.drop_column('sso_issuer')
