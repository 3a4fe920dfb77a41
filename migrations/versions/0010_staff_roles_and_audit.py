"""staff roles, disabled accounts, and the append-only audit log

Revision ID: 0010_staff_roles_and_audit
Revises: 0009_session_requests
Create Date: 2026-11-26 19:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010_staff_roles_and_audit'
down_revision = '0009_session_requests'
branch_labels = None
depends_on = None

_REFUSE = "the audit log is append-only"


def upgrade():
    # Accounts made before roles could do everything: they become admins, so nobody loses access.
    with op.batch_alter_table('staff_user') as batch:
        batch.add_column(sa.Column('role', sa.String(length=10), nullable=False, server_default='admin'))
        batch.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('staff_user') as batch:
        batch.alter_column('role', server_default=None, existing_type=sa.String(length=10), existing_nullable=False)

    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('actor_role', sa.String(length=10), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_entry_at', 'audit_entry', ['at'])
    op.create_index('ix_audit_entry_actor', 'audit_entry', ['actor'])
    op.create_index('ix_audit_entry_action', 'audit_entry', ['action'])
    op.create_index('ix_audit_entry_subject', 'audit_entry', ['subject'])

    # The database itself refuses to change or remove an entry, whatever code asks it to.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            CREATE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{_REFUSE}'; END; $$ LANGUAGE plpgsql
        """)
        op.execute("""
            CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
            FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()
        """)
        op.execute("""
            CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry
            FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()
        """)
    else:
        for verb in ('UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER audit_entry_no_{verb.lower()} BEFORE {verb} ON audit_entry
                BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END
            """)
        # INSERT OR REPLACE deletes the entry it replaces without firing the DELETE trigger (unless
        # recursive_triggers is on): an insert with the id of an existing entry is refused before that.
        # (PostgreSQL has no REPLACE, and its INSERT … ON CONFLICT DO UPDATE fires the UPDATE trigger.)
        op.execute(f"""
            CREATE TRIGGER audit_entry_no_replace BEFORE INSERT ON audit_entry
            WHEN EXISTS (SELECT 1 FROM audit_entry WHERE id = NEW.id)
            BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END
        """)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry")
        op.execute("DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry")
        op.execute("DROP FUNCTION IF EXISTS audit_entry_append_only()")
    op.drop_index('ix_audit_entry_subject', table_name='audit_entry')
    op.drop_index('ix_audit_entry_action', table_name='audit_entry')
    op.drop_index('ix_audit_entry_actor', table_name='audit_entry')
    op.drop_index('ix_audit_entry_at', table_name='audit_entry')
    op.drop_table('audit_entry')
    with op.batch_alter_table('staff_user') as batch:
        batch.drop_column('disabled_at')
        batch.drop_column('role')
