"""twilio accounts per organization: twilio_account, owned senders, message.account_sid, media

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:00:00

Each organization may bring its own Twilio account (or subaccount); a sender address belongs to
one organization in the whole instance and records the account it was found in (NULL: the
instance's account from the environment, which is what every existing sender was added
through); messages record the account they went through; voters' pictures are listed per reply.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    refuse_shared_senders()
    op.create_table('twilio_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('auth_token', sa.Text(), nullable=False),
    sa.Column('api_key_sid', sa.String(length=34), nullable=True),
    sa.Column('api_key_secret', sa.Text(), nullable=True),
    sa.Column('friendly_name', sa.String(length=200), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=True),
    sa.Column('per_second', sa.Float(), nullable=True),
    sa.Column('daily_cap', sa.Integer(), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_twilio_account_organization_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_twilio_account')),
    sa.UniqueConstraint('account_sid', name=op.f('uq_twilio_account_account_sid')),
    sa.UniqueConstraint('organization_id', name=op.f('uq_twilio_account_organization_id'))
    )
    with op.batch_alter_table('sender', schema=None) as batch_op:
        batch_op.add_column(sa.Column('twilio_account_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint('uq_sender_organization_id_address', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_sender_address'), ['address'])
        batch_op.create_index(batch_op.f('ix_sender_organization_id'), ['organization_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_sender_twilio_account_id_twilio_account'), 'twilio_account', ['twilio_account_id'], ['id'])
    # A plain ADD COLUMN (no table rebuild on SQLite, so the triggers of 0005 stay as they are).
    op.add_column('message', sa.Column('account_sid', sa.String(length=34), nullable=True))
    op.create_table('message_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_message_media_message_id_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_media'))
    )
    with op.batch_alter_table('message_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_media_message_id'), ['message_id'], unique=False)


def refuse_shared_senders():
    """Stop, naming them, when organizations share a sender address: which one owns it is the
    operator's call (delete the others' rows, or their campaigns' use of it), not ours."""
    shared = op.get_bind().execute(sa.text(
        "SELECT address, COUNT(*) FROM sender GROUP BY address HAVING COUNT(*) > 1"
    )).all()
    if shared:
        listed = ", ".join(f"{address} ({count} organizations)" for address, count in shared)
        raise RuntimeError(
            "these sender addresses belong to more than one organization; a number or "
            f"Messaging Service may now belong to one only. Keep one row of each: {listed}"
        )


def downgrade():
    with op.batch_alter_table('message_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_media_message_id'))
    op.drop_table('message_media')
    # A plain DROP COLUMN, for the same reason as the ADD.
    op.drop_column('message', 'account_sid')
    with op.batch_alter_table('sender', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sender_twilio_account_id_twilio_account'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_sender_organization_id'))
        batch_op.drop_constraint(batch_op.f('uq_sender_address'), type_='unique')
        batch_op.create_unique_constraint('uq_sender_organization_id_address', ['organization_id', 'address'])
        batch_op.drop_column('twilio_account_id')
    op.drop_table('twilio_account')
