"""staff second factor: passkeys, authenticator-app secrets, recovery codes, and a lock after wrong codes

Revision ID: 0019_staff_second_factor
Revises: 0018_staff_sso
Create Date: 2026-12-06 01:00:00

What a staff member signs in with besides a password (`app.staff.factors`):

- `staff_passkey`: WebAuthn credentials, one row each: the credential id, its public key (COSE), the
  authenticator's signature counter, and the last challenge it answered (a replayed answer is refused).
  Public keys are not secrets: nothing here is encrypted.
- `staff_totp`: one authenticator-app secret per account, encrypted with the data keyring (like claims:
  a copied database must not let anyone compute codes), unconfirmed until a first code proves the app
  holds it, and the last time step used, so a code is accepted once.
- `staff_recovery_code`: one-time codes, stored as salted SHA-256 (the codes themselves are shown once).
- `staff_user.second_factor_failures` / `second_factor_locked_until`: wrong codes in a row, and the lock
  they lead to.

Downgrade drops the tables and columns: every account signs in with its password alone again.

Applied after 0018_staff_sso, which shares its number: the two were written side by side, this one second.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019_staff_second_factor'
down_revision = '0018_staff_sso'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_passkey',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.Integer(), nullable=False),
    sa.Column('transports', sa.String(length=200), nullable=True),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('last_challenge_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name='fk_staff_passkey_staff', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('credential_id', name='uq_staff_passkey_credential_id'),
    )
    op.create_index('ix_staff_passkey_staff_id', 'staff_passkey', ['staff_id'])
    op.create_table('staff_totp',
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('last_step', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name='fk_staff_totp_staff', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('staff_id'),
    )
    op.create_table('staff_recovery_code',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name='fk_staff_recovery_code_staff',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_recovery_code_staff_id', 'staff_recovery_code', ['staff_id'])
    with op.batch_alter_table('staff_user') as batch_op:
        batch_op.add_column(sa.Column('second_factor_failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('second_factor_locked_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('staff_user') as batch_op:
        batch_op.drop_column('second_factor_locked_until')
        batch_op.drop_column('second_factor_failures')
    op.drop_index('ix_staff_recovery_code_staff_id', table_name='staff_recovery_code')
    op.drop_table('staff_recovery_code')
    op.drop_table('staff_totp')
    op.drop_index('ix_staff_passkey_staff_id', table_name='staff_passkey')
    op.drop_table('staff_passkey')
