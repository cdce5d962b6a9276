"""index the places of untexted contacts (batch screens)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 08:02:03.082151

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index('ix_contact_new_places', ['campaign_id', 'time_zones', 'rule_states'], unique=False, sqlite_where=sa.text("status = 'new'"), postgresql_where=sa.text("status = 'new'"))


def downgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_new_places', sqlite_where=sa.text("status = 'new'"), postgresql_where=sa.text("status = 'new'"))
