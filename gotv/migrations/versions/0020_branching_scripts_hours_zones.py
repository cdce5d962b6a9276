"""branching scripts, the organization's zone and re-texting guard, list columns

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 09:00:00.000000

Survey questions become a tree: a question may follow one answer of another
(survey_question.parent_choice_id), and each answer carries the script that follows it
(survey_choice.scripts, alternatives). Existing questions stay top-level, with no scripts.

Organizations get a time zone for their screens and exports and a re-texting guard in days;
imports record whether recently texted numbers were left out, and how many. Campaigns
remember their lists' columns in the files' order (filled in from earlier imports). Replies
waiting get a partial index by campaign and volunteer.

"""
import re

from alembic import op
import sqlalchemy as sa

from gotv.db import create_index_concurrently, drop_index_concurrently


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

STANDARD_FIELDS = ("cell", "first_name", "last_name", "zip")


def custom_field_name(header):
    """gotv.lists.contacts.custom_field_name as of this revision."""
    name = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    return "_" + name if name[:1].isdigit() else name


def list_columns(imports):
    """A campaign's columns from its finished imports' headers and mappings, oldest first."""
    columns, seen = [], set()
    for headers, mapping in imports:
        field_of = {header: field for field, header in (mapping or {}).items()}
        for header in headers or []:
            if header.casefold() in seen:
                continue
            if header in field_of and field_of[header] in STANDARD_FIELDS:
                column = {"header": header, "field": field_of[header]}
            elif custom_field_name(header):
                column = {"header": header, "custom": custom_field_name(header)}
            else:
                continue
            seen.add(header.casefold())
            columns.append(column)
    return columns


def upgrade():
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), server_default='America/New_York', nullable=False))
        batch_op.add_column(sa.Column('retext_guard_days', sa.Integer(), server_default='30', nullable=False))

    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('list_columns', sa.JSON(), nullable=True))

    with op.batch_alter_table('survey_choice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scripts', sa.JSON(), nullable=True))

    with op.batch_alter_table('survey_question', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_choice_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_survey_question_parent_choice_id'), ['parent_choice_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_survey_question_parent_choice_id_survey_choice'), 'survey_choice', ['parent_choice_id'], ['id'])

    with op.batch_alter_table('contact_import', schema=None) as batch_op:
        batch_op.add_column(sa.Column('include_recent', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('recent_days', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('recent', sa.Integer(), server_default='0', nullable=False))

    connection = op.get_bind()
    choice = sa.table('survey_choice', sa.column('scripts', sa.JSON()))
    connection.execute(choice.update().values(scripts=[]))
    campaign = sa.table('campaign', sa.column('id', sa.Integer()), sa.column('list_columns', sa.JSON()))
    imports = sa.table(
        'contact_import',
        sa.column('id', sa.Integer()),
        sa.column('campaign_id', sa.Integer()),
        sa.column('status', sa.String()),
        sa.column('headers', sa.JSON()),
        sa.column('mapping', sa.JSON()),
    )
    by_campaign = {}
    rows = connection.execute(
        sa.select(imports.c.campaign_id, imports.c.headers, imports.c.mapping)
        .where(imports.c.status == 'done')
        .order_by(imports.c.id)
    )
    for campaign_id, headers, mapping in rows:
        by_campaign.setdefault(campaign_id, []).append((headers, mapping))
    for (campaign_id,) in connection.execute(sa.select(campaign.c.id)).all():
        connection.execute(
            campaign.update()
            .where(campaign.c.id == campaign_id)
            .values(list_columns=list_columns(by_campaign.get(campaign_id, [])))
        )

    with op.batch_alter_table('survey_choice', schema=None) as batch_op:
        batch_op.alter_column('scripts', existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.alter_column('list_columns', existing_type=sa.JSON(), nullable=False)

    # Last: on PostgreSQL it commits the work above, then builds without locking contact.
    create_index_concurrently(
        'ix_contact_waiting', 'contact', ['campaign_id', 'texter_id'],
        sqlite_where=sa.text('needs_reply'), postgresql_where=sa.text('needs_reply'),
    )


def downgrade():
    drop_index_concurrently('ix_contact_waiting', 'contact')

    with op.batch_alter_table('contact_import', schema=None) as batch_op:
        batch_op.drop_column('recent')
        batch_op.drop_column('recent_days')
        batch_op.drop_column('include_recent')

    with op.batch_alter_table('survey_question', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_survey_question_parent_choice_id_survey_choice'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_survey_question_parent_choice_id'))
        batch_op.drop_column('parent_choice_id')

    with op.batch_alter_table('survey_choice', schema=None) as batch_op:
        batch_op.drop_column('scripts')

    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('list_columns')

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('retext_guard_days')
        batch_op.drop_column('time_zone')
