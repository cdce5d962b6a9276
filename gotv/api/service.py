"""What the JSON API does, as plain functions on the session (no Flask); callers commit.

Every function takes the organization's id and looks only at its rows: another
organization's campaign, contact or import is "not found", never shown.
Pages are keyset-paginated on the id: `after` is the last id of the previous page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from gotv.campaigns import dashboard
from gotv.compliance import optouts
from gotv.db import db
from gotv.lists import contacts
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactImport,
    ContactStatus,
    Message,
    OptOut,
    utcnow,
)
from gotv.people import audit
from gotv.texting import texts

MAX_PAGE = 200
MAX_OPT_OUT_NUMBERS = 1000
# An action of the API -> the status it sets.
STATUS_ACTIONS = {
    "launch": CampaignStatus.ACTIVE,
    "pause": CampaignStatus.PAUSED,
    "archive": CampaignStatus.ARCHIVED,
}


class NotFound(Exception):
    """No such row in this organization."""


class Unprocessable(Exception):
    """The request is well-formed but cannot be done; `code` names why, `details` add data."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_after: int | None


def page_of(
    query: Select[Any],
    id_column: Any,
    after: int | None,
    limit: int,
    to_json: Callable[[Any], dict[str, Any]],
) -> Page:
    """Up to `limit` rows with ids above `after`, in id order, and the cursor of the next page."""
    if after is not None:
        query = query.where(id_column > after)
    rows = list(db.session.scalars(query.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_json(row) for row in rows], rows[-1].id if more else None)


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- Campaigns -----------------------------------------------------------------------------


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "script": campaign.script,
        "status": campaign.status.value,
        "custom_fields": list(campaign.custom_field_names),
        "trust_zip_alone": campaign.trust_zip_alone,
        "created_at": timestamp(campaign.created_at),
    }


def campaigns(organization_id: int, after: int | None, limit: int) -> Page:
    query = select(Campaign).where(Campaign.organization_id == organization_id)
    return page_of(query, Campaign.id, after, limit, campaign_json)


def campaign(organization_id: int, campaign_id: int) -> Campaign:
    """:raise NotFound: unless the campaign is the organization's."""
    row = db.session.get(Campaign, campaign_id)
    if row is None or row.organization_id != organization_id:
        raise NotFound
    return row


def create_campaign(
    organization_id: int, name: str, script: str, token_id: int, trust_zip_alone: bool = False
) -> Campaign:
    """A new draft campaign (audited).

    :raise Unprocessable: unknown_merge_fields, with `fields`, when the script uses merge
        fields no list can fill yet (a new campaign has only the standard ones).
    """
    unknown = texts.unknown_merge_fields(script, [])
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        raise Unprocessable(
            "unknown_merge_fields", f"The script uses unknown merge fields: {names}", fields=unknown
        )
    row = Campaign(
        organization_id=organization_id,
        name=name,
        script=script,
        status=CampaignStatus.DRAFT,
        trust_zip_alone=trust_zip_alone,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(organization_id, "api_campaign_created", f"campaign {row.id}", token_id=token_id)
    return row


def change_status(row: Campaign, action: str, token_id: int) -> None:
    """Launch, pause or archive the campaign (audited).

    :raise Unprocessable: unknown_action, or script_required to launch without a script.
    """
    if action not in STATUS_ACTIONS:
        raise Unprocessable("unknown_action", f"Use one of: {', '.join(STATUS_ACTIONS)}")
    status = STATUS_ACTIONS[action]
    if status is CampaignStatus.ACTIVE and not row.script.strip():
        raise Unprocessable("script_required", "Write a script before launching.")
    row.status = status
    audit.record(
        row.organization_id,
        "api_campaign_status",
        f"campaign {row.id}",
        token_id=token_id,
        status=status.value,
    )


def set_time_zone_rule(row: Campaign, trust_zip_alone: bool, token_id: int) -> None:
    """Whether the campaign's quiet hours follow the ZIP's zone alone (audited)."""
    row.trust_zip_alone = trust_zip_alone
    audit.record(
        row.organization_id,
        "time_zone_rule_changed",
        f"campaign {row.id}",
        token_id=token_id,
        trust_zip_alone=trust_zip_alone,
    )


def stats(row: Campaign) -> dict[str, Any]:
    """The campaign's all-time totals, from the dashboard's cheap rolled-up counts."""
    contact_count, texted = dashboard.contact_counts(db.session, row)
    board = dashboard.Dashboard(
        contacts=contact_count,
        texted=texted,
        replied_contacts=dashboard.replied_contacts(db.session, row),
        opt_outs=dashboard.opt_out_count(db.session, row),
        by_status=dashboard.tally(db.session, row),
        since=utcnow(),
    )
    return {"campaign_id": row.id, **board.totals()}


# --- Imports -------------------------------------------------------------------------------


def contact_import(organization_id: int, import_id: int) -> ContactImport:
    """:raise NotFound: unless the import is the organization's."""
    row = db.session.get(ContactImport, import_id)
    if row is None or row.organization_id != organization_id:
        raise NotFound
    return row


# --- Conversations -------------------------------------------------------------------------


def conversation_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "campaign_id": contact.campaign_id,
        "cell": contact.cell,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "texter_id": contact.texter_id,
        "needs_reply": contact.needs_reply,
        "updated_at": timestamp(contact.updated_at),
    }


def conversations(row: Campaign, after: int | None, limit: int) -> Page:
    """The campaign's conversations: its contacts who have been texted."""
    query = select(Contact).where(
        Contact.campaign_id == row.id, Contact.status == ContactStatus.TEXTED
    )
    return page_of(query, Contact.id, after, limit, conversation_json)


def conversation(organization_id: int, contact_id: int) -> Contact:
    """:raise NotFound: unless the contact is in one of the organization's campaigns."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.campaign.organization_id != organization_id:
        raise NotFound
    return contact


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction.value,
        "kind": message.kind.value,
        "body": message.body,
        "status": message.status.value,
        "texter_id": message.texter_id,
        "error_code": message.error_code,
        "created_at": timestamp(message.created_at),
        "sent_at": timestamp(message.sent_at),
    }


def messages(contact: Contact, after: int | None, limit: int) -> Page:
    query = select(Message).where(Message.contact_id == contact.id)
    return page_of(query, Message.id, after, limit, message_json)


# --- Opt-outs ------------------------------------------------------------------------------


def opt_out_json(opt_out: OptOut) -> dict[str, Any]:
    return {
        "id": opt_out.id,
        "cell": opt_out.cell,
        "source": opt_out.source,
        "created_at": timestamp(opt_out.created_at),
    }


def opt_outs(organization_id: int, since: datetime | None, after: int | None, limit: int) -> Page:
    """The organization's opt-outs, those recorded at or after `since` when given."""
    query = select(OptOut).where(OptOut.organization_id == organization_id)
    if since is not None:
        query = query.where(OptOut.created_at >= since)
    return page_of(query, OptOut.id, after, limit, opt_out_json)


def opt_out_export_rows(organization_id: int) -> Any:
    """(cell, source, opted_out_at) rows for the CSV export, streamed from the database."""
    return db.session.execute(
        select(OptOut.cell, OptOut.source, OptOut.created_at)
        .where(OptOut.organization_id == organization_id)
        .order_by(OptOut.id)
        .execution_options(yield_per=1000)
    )


def import_opt_outs(
    organization_id: int, numbers: list[str], region: str, token_id: int
) -> list[dict[str, Any]]:
    """Opt each number out (source "api"); one result per input, in order.

    A result's `result` is opted_out, already_opted_out or invalid (with `error`).
    """
    results: list[dict[str, Any]] = []
    for raw in numbers:
        try:
            cell = contacts.normalize_phone(raw, region)
        except contacts.InvalidPhone as error:
            results.append({"input": raw, "cell": None, "result": "invalid", "error": str(error)})
            continue
        added = optouts.record_opt_out(organization_id, cell, "api")
        result = "opted_out" if added is not None else "already_opted_out"
        results.append({"input": raw, "cell": cell, "result": result, "error": None})
    audit.record(
        organization_id,
        "api_opt_outs_imported",
        token_id=token_id,
        numbers=len(numbers),
        opted_out=sum(result["result"] == "opted_out" for result in results),
    )
    return results
