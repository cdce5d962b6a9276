"""revocable sessions, two-step secrets encrypted at rest

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-07 17:30:00.000000

user.session_generation: every session holds the generation it began in, and raising it ends
them all (gotv/people/sessions.py). user.totp_secret becomes an Encrypted column (Fernet, with
ENCRYPTION_KEYS, as gotv/encryption.py): the secrets stored in plain text are encrypted here,
and decrypted again on the way down. Run through `flask db upgrade`, inside the app, whose keys
these use.

"""
from alembic import op
import sqlalchemy as sa

from gotv import encryption


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0015'
branch_labels = None
depends_on = None

users = sa.table(
    'user', sa.column('id', sa.Integer()), sa.column('totp_secret', sa.Text())
)


def rewrite_secrets(change):
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(users.c.id, users.c.totp_secret).where(users.c.totp_secret.is_not(None))
    ).all()
    for user_id, secret in rows:
        connection.execute(
            users.update().where(users.c.id == user_id).values(totp_secret=change(secret))
        )


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.alter_column(
            'totp_secret', existing_type=sa.String(length=64), type_=sa.Text(), existing_nullable=True
        )
    rewrite_secrets(encryption.encrypt)


def downgrade():
    rewrite_secrets(encryption.decrypt)
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column(
            'totp_secret', existing_type=sa.Text(), type_=sa.String(length=64), existing_nullable=True
        )
        batch_op.drop_column('session_generation')
