"""The campaign page as a builder: its sections, their completion marks, and saving in place.

Every form of the page posts to its own view (web/campaigns.py, web/content.py), which parses
it, calls one rule, and answers through `saved` or `refused` here:

- a page script (builder.js) asks for JSON: on success it gets the message, the sections'
  marks and any section the change redrew; on failure the reason, and the page keeps every
  field as the organizer typed it, since nothing is reloaded;
- without JavaScript, a success redirects to the section, and a failure renders the page
  again (422) with the failed form's fields as typed and the reason beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from gotv.campaigns import builder, content, dashboard
from gotv.compliance import hours, lint, optouts
from gotv.db import db
from gotv.models import (
    Campaign,
    Contact,
    ContactImport,
    ContactStatus,
    Message,
    MessageStatus,
    Sender,
)
from gotv.texting import segments, texts
from gotv.web.inbox import wants_json

FILTERED_BY_CARRIER = 30007
RECENT_IMPORTS = 5
# Enough contacts to catch the odd "Zoë" in a list, few enough to render on every page view.
SAMPLE_SIZE = 200
PREVIEW_CONTACTS = 3


@dataclass(frozen=True)
class Failed:
    """A form whose save was refused: its id on the page, what was posted, and why."""

    form: str
    data: MultiDict[str, str]
    message: str


# --- Answers to the page's forms ----------------------------------------------------------------


def saved(
    campaign: Campaign,
    section: str,
    message: str,
    redraw: tuple[str, ...] = (),
    fields: dict[str, str] | None = None,
) -> ResponseReturnValue:
    """A change was committed: JSON with the marks and the `redraw` sections' HTML (and the
    values of `fields` the server changed), or a redirect to the section."""
    if wants_json():
        db.session.expire_all()
        context = page_context(campaign, sections=redraw)
        return jsonify(
            ok=True,
            message=message,
            marks=marks_json(context["marks"]),
            sections={name: render_section(name, context) for name in redraw},
            fields=fields or {},
        )
    flash(message, "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id, _anchor=section))


def refused(campaign: Campaign, section: str, message: str, field: str = "") -> ResponseReturnValue:
    """Nothing was saved: the reason (422). The page keeps what was typed: the script's page
    has it still, and a plain form post gets the page again with the failed form as typed.

    (The rules check before they write, so there is nothing to roll back.)
    """
    if wants_json():
        return jsonify(ok=False, message=message, field=field), 422
    failed = Failed(request.form.get("_form", ""), request.form.copy(), message)
    return render_page(campaign, failed=failed, status=422, anchor=section)


# --- The page ----------------------------------------------------------------------------------


def render_page(
    campaign: Campaign, failed: Failed | None = None, status: int = 200, anchor: str = ""
) -> ResponseReturnValue:
    context = page_context(campaign, failed)
    return render_template("campaigns/show.html", anchor=anchor, **context), status


def render_section(name: str, context: dict[str, Any]) -> str:
    return render_template(f"campaigns/builder/{name}.html", **context)


def page_context(
    campaign: Campaign, failed: Failed | None = None, sections: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """What the campaign page shows: every section's, or only `sections`' (and the marks),
    so a save in place costs only what it redraws."""
    wanted = set(sections if sections is not None else (name for name, _ in builder.SECTIONS))
    counts = campaign_counts(campaign)
    warnings = lint.warnings(campaign.script, campaign.organization.name)
    unknown = texts.unknown_merge_fields(campaign.script, campaign.custom_field_names)
    questions_tree = content.tree(campaign)
    canned = content.canned_responses(campaign)
    context: dict[str, Any] = {
        "campaign": campaign,
        "counts": counts,
        "marks": builder.marks(
            campaign,
            contacts=counts["contacts"],
            questions=len([q for q in questions_tree.top if q.retired_at is None]),
            canned=len(canned),
            script_warnings=warnings,
            unknown_fields=unknown,
        ),
        "sections": builder.SECTIONS,
        "failed": failed,
        "typed": typed_from(failed),
        "typed_list": typed_list_from(failed),
        "filtered": filtered_count(campaign),
        "questions": questions_tree,
        "canned": canned,
        "script_warnings": warnings,
        "blockers": builder.launch_blockers(campaign, unknown),
        "wordings_max": content.SCRIPT_WORDINGS_MAX,
        "hour_choices": range(hours.FEDERAL_START_HOUR, hours.FEDERAL_END_HOUR + 1),
        "retext_guard_days": campaign.organization.retext_guard_days,
    }
    if "message" in wanted:
        recipients = untexted_count(campaign)
        context.update(
            merge_fields=texts.STANDARD_MERGE_FIELDS + tuple(campaign.custom_field_names),
            preview=script_preview(campaign, campaign.script),
            cost=script_report(campaign, campaign.script, recipients),
            recipients=recipients,
            describe_risk=segments.describe,
        )
    if "list" in wanted:
        context["recent_imports"] = recent_imports(campaign)
    if "hours" in wanted:
        context.update(
            state_hours=hours.state_hours(campaign.window_start_hour, campaign.window_end_hour),
            list_states=list_states(campaign),
        )
    if "sender" in wanted:
        context["senders"] = organization_senders(campaign.organization_id)
    return context


def typed_from(failed: Failed | None) -> Any:
    def typed(form: str, name: str, default: Any = "") -> Any:
        """What the failed form held for `name`, else `default` (the saved value)."""
        if failed is not None and failed.form == form:
            return failed.data.get(name, "")
        return default

    return typed


def typed_list_from(failed: Failed | None) -> Any:
    def typed_list(form: str, name: str, default: list[str]) -> list[str]:
        if failed is not None and failed.form == form:
            return failed.data.getlist(name)
        return default

    return typed_list


def marks_json(marks: dict[str, builder.Mark]) -> dict[str, dict[str, str]]:
    return {name: {"state": mark.state, "label": mark.label} for name, mark in marks.items()}


# --- What the sections show --------------------------------------------------------------------


def campaign_counts(campaign: Campaign) -> dict[str, int]:
    """Contacts, texted, and messages by direction for the campaign page.

    Message counts come from the triggers' tally: every message not received is outbound.
    """
    contacts, texted = dashboard.contact_counts(db.session, campaign)
    by_status = dashboard.tally(db.session, campaign)
    replies = by_status.get(MessageStatus.RECEIVED.value, 0)
    return {
        "contacts": contacts,
        "texted": texted,
        "sent": sum(by_status.values()) - replies,
        "replies": replies,
    }


def filtered_count(campaign: Campaign) -> int:
    """Messages carriers filtered as spam (30007): the organizer must review the script."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.campaign_id == campaign.id, Message.error_code == FILTERED_BY_CARRIER)
        )
        or 0
    )


def recent_imports(campaign: Campaign) -> list[ContactImport]:
    """The campaign's latest list uploads, newest first."""
    return list(
        db.session.scalars(
            select(ContactImport)
            .where(ContactImport.campaign_id == campaign.id)
            .order_by(ContactImport.created_at.desc(), ContactImport.id.desc())
            .limit(RECENT_IMPORTS)
        )
    )


def organization_senders(organization_id: int) -> list[Sender]:
    return list(
        db.session.scalars(
            select(Sender).where(Sender.organization_id == organization_id).order_by(Sender.id)
        )
    )


def list_states(campaign: Campaign) -> set[str]:
    """The states whose rules apply to someone still to text (a few index probes)."""
    return {
        state for _zones, states in texts.untexted_places(campaign.id) for state in states.split()
    }


def price_per_segment() -> Decimal:
    """The deployment's PRICE_PER_SEGMENT, else Twilio's US list price."""
    return Decimal(str(current_app.config.get("PRICE_PER_SEGMENT", segments.US_PRICE_PER_SEGMENT)))


def sample_contacts(campaign: Campaign, limit: int = SAMPLE_SIZE) -> list[Contact]:
    """Up to `limit` contacts not yet texted, in list order."""
    return list(
        db.session.scalars(
            select(Contact)
            .where(Contact.campaign_id == campaign.id, Contact.status == ContactStatus.NEW)
            .order_by(Contact.id)
            .limit(limit)
        )
    )


def untexted_count(campaign: Campaign) -> int:
    """Contacts still to get the initial text: not texted, not opted out, not blocked."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(
                Contact.campaign_id == campaign.id,
                Contact.status == ContactStatus.NEW,
                optouts.may_be_texted(campaign.organization_id, Contact.cell),
            )
        )
        or 0
    )


def script_report(campaign: Campaign, script: str, recipients: int) -> segments.ScriptReport:
    """The script rendered for a sample of the contacts not yet texted, counted and priced for
    `recipients` texts. The organizer viewing the page stands in for the volunteer."""
    return segments.report(
        script,
        sample_contacts(campaign),
        current_user,
        smart_encoding=campaign.smart_encoding,
        recipients=recipients,
        price_per_segment=price_per_segment(),
    )


@dataclass(frozen=True)
class Preview:
    """A script rendered for one real contact."""

    name: str
    text: str
    characters: int
    segments: int


def script_preview(campaign: Campaign, script: str) -> dict[str, Any]:
    """`script` rendered for up to PREVIEW_CONTACTS of the campaign's contacts (untexted first),
    with the merge fields the list cannot fill."""
    previews = []
    for contact in preview_contacts(campaign):
        text = texts.render(script, contact, current_user)
        count = segments.count(text, campaign.smart_encoding)
        name = f"{contact.first_name} {contact.last_name}".strip() or contact.cell
        previews.append(Preview(name, text, count.characters, count.segments))
    return {
        "unknown": texts.unknown_merge_fields(script, campaign.custom_field_names),
        "previews": [preview.__dict__ for preview in previews],
    }


def preview_contacts(campaign: Campaign) -> list[Contact]:
    """The first PREVIEW_CONTACTS contacts still to be texted, topped up with texted ones."""
    query = select(Contact).where(Contact.campaign_id == campaign.id).order_by(Contact.id)
    contacts = list(
        db.session.scalars(query.where(Contact.status == ContactStatus.NEW).limit(PREVIEW_CONTACTS))
    )
    if len(contacts) < PREVIEW_CONTACTS:
        contacts += db.session.scalars(
            query.where(Contact.status != ContactStatus.NEW).limit(PREVIEW_CONTACTS - len(contacts))
        )
    return contacts
