"""a session's locale: the language its hosted page and widget speak

Revision ID: 0014_session_locale
Revises: 0013_review_queue
Create Date: 2026-11-26 23:10:00

Sessions created before this revision have none (NULL): their page follows the URL, then the
browser's Accept-Language, then PASSID_DEFAULT_LOCALE, as every widget does.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014_session_locale'
down_revision = '0013_review_queue'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('verification_session') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('verification_session') as batch:
        batch.drop_column('locale')
