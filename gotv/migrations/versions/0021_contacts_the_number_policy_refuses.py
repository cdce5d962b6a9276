"""contacts the number policy refuses, set aside

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-08 02:00:00.000000

contact.refused: why the textable-number policy refuses an untexted contact's number, written
when a batch first meets it (a number loaded before the policy, or in a US territory the
organization stopped texting), so that it leaves every batch instead of waiting in one forever.
Nullable, no default: PostgreSQL adds it without rewriting the table, SQLite in place. A
partial index of the few set aside, by campaign, for the dashboard's count of who cannot be
texted (built without locking writes out).
"""
from alembic import op
import sqlalchemy as sa

from gotv.db import create_index_concurrently, drop_index_concurrently


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('contact', sa.Column('refused', sa.String(length=20), nullable=True))
    create_index_concurrently(
        'ix_contact_refused', 'contact', ['campaign_id'],
        sqlite_where=sa.text('refused IS NOT NULL'),
        postgresql_where=sa.text('refused IS NOT NULL'),
    )


def downgrade():
    drop_index_concurrently('ix_contact_refused', 'contact')
    op.drop_column('contact', 'refused')
