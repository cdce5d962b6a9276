"""the territories choice, trusting the ZIP alone, every contact's zones, ASCII numbers

Revision ID: 0017
Revises: 0018
Create Date: 2026-11-28 09:00:00

organization.texts_us_territories and campaign.trust_zip_alone (both off). Then the data of
contacts imported before issue 19: their time zones become the ZIP's and the area code's both
(they held the ZIP's alone when the ZIP was known), and numbers stored with digits of another
script ("+1２０２...") become ASCII E.164, with the messages written to them, unless the campaign
already holds the ASCII number (the last gate refuses such a number instead).
"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0018'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade():
    # Plain ALTER TABLE, not a batch: SQLite adds a column in place, where a batch would copy
    # and drop the table, which its foreign keys forbid once other tables point at its rows.
    op.add_column(
        'organization',
        sa.Column('texts_us_territories', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        'campaign',
        sa.Column('trust_zip_alone', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    connection = op.get_bind()
    widen_time_zones(connection)
    ascii_cells(connection)


def widen_time_zones(connection):
    """Every contact's zones: its ZIP's and its number's (gotv.lists.contacts.locate)."""
    from gotv.lists import contacts

    rows = connection.execute(sa.text("SELECT id, zip, cell, time_zones FROM contact")).all()
    by_zones = defaultdict(list)
    found = {}
    for contact_id, zip5, cell, zones in rows:
        key = (zip5, cell[:8] if len(cell) == 12 else cell)
        if key not in found:
            try:
                found[key] = contacts.locate(zip5, cell)[2]
            except Exception:  # a number phonenumbers cannot read keeps what it had
                found[key] = None
        widened = found[key]
        if widened is not None and widened != zones:
            by_zones[widened].append(contact_id)
    statement = sa.text("UPDATE contact SET time_zones = :zones WHERE id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    for zones, ids in by_zones.items():
        for start in range(0, len(ids), BATCH):
            connection.execute(statement, {"zones": zones, "ids": ids[start : start + BATCH]})


def ascii_cells(connection):
    """Numbers stored with digits of another script, as ASCII (where that collides with
    nothing in the campaign)."""
    from gotv.lists.fastphone import ascii_digits

    table = ascii_digits()
    rows = connection.execute(sa.text("SELECT id, campaign_id, cell FROM contact")).all()
    taken = {(campaign_id, cell) for _, campaign_id, cell in rows}
    for contact_id, campaign_id, cell in rows:
        if cell.isascii():
            continue
        fixed = cell.translate(table)
        if not fixed.isascii() or (campaign_id, fixed) in taken:
            continue
        taken.add((campaign_id, fixed))
        connection.execute(
            sa.text("UPDATE contact SET cell = :fixed WHERE id = :id"),
            {"fixed": fixed, "id": contact_id},
        )
        connection.execute(
            sa.text("UPDATE message SET to_number = :fixed WHERE contact_id = :id AND to_number = :cell"),
            {"fixed": fixed, "id": contact_id, "cell": cell},
        )


def downgrade():
    # The contacts' widened zones and ASCII numbers stay: both are what they always meant.
    # SQLite 3.35 and later drop a column in place (see upgrade).
    op.drop_column('campaign', 'trust_zip_alone')
    op.drop_column('organization', 'texts_us_territories')
