"""contact.rule_states: the states whose quiet-hour laws apply (ZIP's and area code's)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('rule_states', sa.String(length=20), nullable=False, server_default='')
        )
    # Existing contacts keep the rule of their ZIP's state; new imports add the area code's.
    op.execute("UPDATE contact SET rule_states = state")


def downgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_column('rule_states')
