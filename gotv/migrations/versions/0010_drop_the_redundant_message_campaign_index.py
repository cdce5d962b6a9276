"""drop ix_message_campaign_id: ix_message_campaign_created leads with campaign_id already

Every non-HOT update of a message (two per text sent) writes an entry in each of its indexes;
this one only duplicated the first column of another.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 05:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_message_campaign_id', table_name='message')


def downgrade():
    op.create_index('ix_message_campaign_id', 'message', ['campaign_id'], unique=False)
