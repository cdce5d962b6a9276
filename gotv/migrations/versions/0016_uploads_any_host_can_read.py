"""uploads any host can read, imports that survive their worker

Revision ID: 0016
Revises: 0020
Create Date: 2026-12-07 18:00:00

stored_upload and stored_upload_chunk keep uploaded lists in PostgreSQL (UPLOAD_STORAGE=database,
gotv/edge/storage.py); contact_import.file_path becomes upload_key (a key in the store, not a
path on one host's disk) and counts its loads in `attempts` (a load whose worker died is
retried a few times, gotv/lists/imports.py). The sweeps look for imports by status every few
seconds: ix_contact_import_status, built CONCURRENTLY on PostgreSQL as every index on a table
that may be big and busy (CONTRIBUTING.md, Migrations).

"""
from alembic import op
import sqlalchemy as sa

from gotv.db import create_index_concurrently, drop_index_concurrently


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stored_upload',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_stored_upload'))
    )
    op.create_index(op.f('ix_stored_upload_created_at'), 'stored_upload', ['created_at'], unique=False)
    op.create_table('stored_upload_chunk',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['key'], ['stored_upload.key'], name=op.f('fk_stored_upload_chunk_key_stored_upload'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', 'position', name=op.f('pk_stored_upload_chunk'))
    )
    # Plain ALTERs (no table rebuild on SQLite, whose rebuild of contact_import would fail on
    # the rows of import_rejection that refer to it).
    op.alter_column('contact_import', 'file_path', new_column_name='upload_key')
    op.add_column('contact_import', sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
    create_index_concurrently('ix_contact_import_status', 'contact_import', ['status'])


def downgrade():
    drop_index_concurrently('ix_contact_import_status', 'contact_import')
    op.drop_column('contact_import', 'attempts')
    op.alter_column('contact_import', 'upload_key', new_column_name='file_path')
    op.drop_table('stored_upload_chunk')
    op.drop_index(op.f('ix_stored_upload_created_at'), table_name='stored_upload')
    op.drop_table('stored_upload')
