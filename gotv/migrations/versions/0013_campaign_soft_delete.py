"""campaign soft delete: campaign.deleted_at

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 05:42:17.521971

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN (no table rebuild on SQLite, so the triggers of 0005 stay as they are).
    op.add_column('campaign', sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
