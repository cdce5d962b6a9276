"""the volunteer's screens, second round: a language, the read-time gate, the inbox's context

user.locale (None: the browser's language), user.last_initial_at (the send gate: a volunteer's
initial texts at least MIN_READ apart, gotv/texting/texts.py), contact.waiting_since (when the
oldest unanswered reply came), contact.last_message and contact.last_message_at (the inbox's
preview of the latest reply or answer).

Revision ID: 0019
Revises: 0017
Create Date: 2026-11-28 16:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs (no table rebuild on SQLite, so the triggers of 0005 stay as they are).
    op.add_column('user', sa.Column('locale', sa.String(length=10), nullable=True))
    op.add_column('user', sa.Column('last_initial_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('contact', sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True))
    op.add_column('contact', sa.Column('last_message', sa.String(length=160), nullable=True))
    op.add_column(
        'contact', sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=True)
    )


def downgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_column('last_message_at')
        batch_op.drop_column('last_message')
        batch_op.drop_column('waiting_since')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('last_initial_at')
        batch_op.drop_column('locale')
