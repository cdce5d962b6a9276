"""Loading a parsed voter list into a campaign."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import insert, select

from gotv.contacts import ParsedContact, RejectedRow, UnreadableList, read_list
from gotv.db import db
from gotv.models import Campaign, Contact, OptOut

__all__ = ["ImportResult", "UnreadableList", "import_list"]


@dataclass
class ImportResult:
    loaded: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def read(self) -> int:
        return self.loaded + len(self.rejected)


def import_list(campaign: Campaign, data: bytes, region: str) -> ImportResult:
    """Append the list's contacts to the campaign, all or nothing, and commit.

    Numbers already in the campaign or on the organization's opt-out list are not loaded; they
    come back as rejected rows with their reason, like unreadable numbers.

    :raise UnreadableList: when the file cannot be read as a voter list.
    """
    parsed = read_list(data, region)
    result = ImportResult(rejected=parsed.rejected)
    existing = set(
        db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign.id))
    )
    opted_out = set(
        db.session.scalars(
            select(OptOut.cell).where(OptOut.organization_id == campaign.organization_id)
        )
    )
    rows = []
    for contact in parsed.contacts:
        if contact.cell in opted_out or contact.cell in existing:
            reason = "opted out" if contact.cell in opted_out else "already in this campaign"
            result.rejected.append(RejectedRow(contact.line, {"cell": contact.cell}, reason))
            continue
        rows.append(contact_row(campaign, contact))
    if rows:
        db.session.execute(insert(Contact), rows)
    campaign.custom_field_names = sorted(
        set(campaign.custom_field_names) | set(parsed.custom_field_names)
    )
    db.session.commit()
    result.loaded = len(rows)
    return result


def contact_row(campaign: Campaign, contact: ParsedContact) -> dict[str, object]:
    return {
        "campaign_id": campaign.id,
        "cell": contact.cell,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "zip": contact.zip,
        "state": contact.state,
        "rule_states": contact.rule_states,
        "time_zones": contact.time_zones,
        "custom_fields": contact.custom_fields,
    }
