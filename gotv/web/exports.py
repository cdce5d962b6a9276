"""Organizers: download a campaign's contacts, messages, or VAN's bulk-upload files as CSV,
streamed and audited.

The view writes the audit entry and commits before the first byte; the rows are read by the
generator, inside the request context that `stream_with_context` keeps open while the response
is sent, so a million rows never sit in memory. Times are in the organization's zone. A
download holds a database connection until its last byte: it takes one of the process's
download slots (gotv/web/admission.py), and gets a 503 when none is free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, redirect, stream_with_context, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from gotv.db import db
from gotv.lists import exports
from gotv.models import Campaign
from gotv.people import audit, zones
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


# A table of a campaign for a download: its header and its rows, times in the given zone.
Table = Callable[[Campaign, ZoneInfo], tuple[Sequence[str], Iterable[Iterable[object]]]]


def campaign_csv(campaign: Campaign, what: str, table: Table) -> Response:
    """Audit the export of `what` (its file is named for it), then stream `table` of the
    campaign, read anew inside the streaming context (the audit's commit ended the view's)."""
    audit_export(campaign, what)
    organization_zone = zones.organization_zone(current_user.organization)
    campaign_id = campaign.id

    def lines() -> Iterator[str]:
        owned = db.session.get(Campaign, campaign_id)
        if owned is not None:
            yield from exports.csv_chunks(*table(owned, organization_zone))

    return csv_download(f"{what.replace('_', '-')}-campaign-{campaign_id}.csv", lines)


@bp.get("/contacts.csv")
@organizer_required
@streams_a_download
def contacts(campaign_id: int) -> Response:
    """Every contact of the campaign: the list's own columns as uploaded, then status,
    volunteer, opt-out date, last reply, tags, the path through the script and each answer."""
    return campaign_csv(get_owned(Campaign, campaign_id), "contacts", contacts_table)


def contacts_table(
    campaign: Campaign, zone: ZoneInfo
) -> tuple[Sequence[str], Iterable[Iterable[object]]]:
    export = exports.ContactsExport.of(campaign, zone)
    return export.header, export.rows()


@bp.get("/messages.csv")
@organizer_required
@streams_a_download
def messages(campaign_id: int) -> Response:
    """Every message of the campaign, oldest first."""
    return campaign_csv(
        get_owned(Campaign, campaign_id),
        "messages",
        lambda campaign, zone: (exports.MESSAGE_COLUMNS, exports.message_rows(campaign, zone)),
    )


@bp.get("/van-survey-responses.csv")
@organizer_required
@streams_a_download
def van_responses(campaign_id: int) -> WerkzeugResponse:
    """For VAN's bulk upload: each texted contact's VANID, contact result and answers."""
    campaign = get_owned(Campaign, campaign_id)
    try:
        exports.van_id_field(campaign)
    except exports.NoVanId as error:
        flash(str(error), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    return campaign_csv(
        campaign,
        "van_survey_responses",
        lambda owned, zone: (
            exports.van_responses_header(owned),
            exports.van_response_rows(owned, zone),
        ),
    )


@bp.get("/van-do-not-text.csv")
@organizer_required
@streams_a_download
def van_do_not_text(campaign_id: int) -> Response:
    """For VAN: the campaign's people who opted out or cannot get texts, by VANID and phone."""
    return campaign_csv(
        get_owned(Campaign, campaign_id),
        "van_do_not_text",
        lambda campaign, zone: (
            exports.VAN_DO_NOT_TEXT_COLUMNS,
            exports.van_do_not_text_rows(campaign, zone),
        ),
    )
