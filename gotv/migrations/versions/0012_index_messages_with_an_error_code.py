"""index messages with an error code (message review's error filter)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 05:14:25.868006

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index('ix_message_errors', ['organization_id', 'error_code'], unique=False, sqlite_where=sa.text('error_code IS NOT NULL'), postgresql_where=sa.text('error_code IS NOT NULL'))


def downgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_errors', sqlite_where=sa.text('error_code IS NOT NULL'), postgresql_where=sa.text('error_code IS NOT NULL'))
