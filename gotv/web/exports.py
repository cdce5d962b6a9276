"""Organizers: download a campaign's contacts or messages as CSV, streamed and audited.

The view writes the audit entry and commits before the first byte; the rows are read by the
generator, inside the request context that `stream_with_context` keeps open while the response
is sent, so a million rows never sit in memory. A download holds a database connection until
its last byte: it takes one of the process's download slots (gotv/web/admission.py), and gets a
503 when none is free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Blueprint, Response, stream_with_context
from flask_login import current_user

from gotv.db import db
from gotv.lists import exports
from gotv.models import Campaign
from gotv.people import audit
from gotv.web.admission import streams_a_download
from gotv.web.auth import get_owned, organizer_required

bp = Blueprint("exports", __name__, url_prefix="/campaigns/<int:campaign_id>/export")


def csv_download(filename: str, lines: Callable[[], Iterator[str]]) -> Response:
    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename={filename}",
            "Cache-Control": "no-store",
        },
    )


def audit_export(campaign: Campaign, what: str) -> None:
    """Who downloaded what, before it streams (the row count is not known until the end)."""
    audit.record(
        campaign.organization_id,
        "export",
        f"{what} of campaign {campaign.id}",
        current_user.id,
        export=what,
        campaign_id=campaign.id,
        campaign=campaign.name,
    )
    db.session.commit()


@bp.get("/contacts.csv")
@organizer_required
@streams_a_download
def contacts(campaign_id: int) -> Response:
    """Every contact of the campaign: status, volunteer, opt-out date, last reply, own fields."""
    campaign = get_owned(Campaign, campaign_id)
    audit_export(campaign, "contacts")

    def lines() -> Iterator[str]:
        owned = db.session.get(Campaign, campaign_id)
        if owned is not None:
            yield from exports.csv_chunks(
                exports.contacts_header(owned), exports.contact_rows(owned)
            )

    return csv_download(f"contacts-campaign-{campaign_id}.csv", lines)


@bp.get("/messages.csv")
@organizer_required
@streams_a_download
def messages(campaign_id: int) -> Response:
    """Every message of the campaign, oldest first."""
    campaign = get_owned(Campaign, campaign_id)
    audit_export(campaign, "messages")

    def lines() -> Iterator[str]:
        owned = db.session.get(Campaign, campaign_id)
        if owned is not None:
            yield from exports.csv_chunks(exports.MESSAGE_COLUMNS, exports.message_rows(owned))

    return csv_download(f"messages-campaign-{campaign_id}.csv", lines)
