"""Organizers: create campaigns, upload voter lists, write the script, launch."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import func, select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from gotv import lint, texting
from gotv.auth import get_owned, organizer_required
from gotv.db import db
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactImport,
    ContactStatus,
    Direction,
    Message,
)

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

FILTERED_BY_CARRIER = 30007
RECENT_IMPORTS = 5


class CampaignForm(FlaskForm):
    name = StringField("Campaign name", validators=[DataRequired(), Length(max=200)])


class ScriptForm(FlaskForm):
    script = TextAreaField("Script", validators=[DataRequired(), Length(max=1600)])


class UploadForm(FlaskForm):
    contacts = FileField(
        "Voter list (CSV or TSV)",
        validators=[FileRequired(), FileAllowed(["csv", "tsv", "txt"])],
    )


class AppendOptOutForm(FlaskForm):
    pass


class StatusForm(FlaskForm):
    status = SelectField("Status", choices=[s.value for s in CampaignStatus])


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.organization_id == current_user.organization_id)
        .order_by(Campaign.created_at.desc())
    ).all()
    return render_template("campaigns/index.html", campaigns=campaigns, form=CampaignForm())


@bp.post("")
@organizer_required
def create() -> ResponseReturnValue:
    form = CampaignForm()
    if not form.validate_on_submit():
        flash("A campaign needs a name.", "error")
        return redirect(url_for("campaigns.index"))
    campaign = Campaign(organization_id=current_user.organization_id, name=form.name.data)
    db.session.add(campaign)
    db.session.commit()
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.get("/<int:campaign_id>")
@organizer_required
def show(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    return render_template(
        "campaigns/show.html",
        campaign=campaign,
        counts=campaign_counts(campaign),
        script_form=ScriptForm(script=campaign.script),
        upload_form=UploadForm(),
        status_form=StatusForm(status=campaign.status.value),
        merge_fields=texting.STANDARD_MERGE_FIELDS + tuple(campaign.custom_field_names),
        script_warnings=lint.warnings(campaign.script, campaign.organization.name),
        append_form=AppendOptOutForm(),
        filtered=filtered_count(campaign),
        recent_imports=recent_imports(campaign),
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


def campaign_counts(campaign: Campaign) -> dict[str, int]:
    """Contacts, texted, and messages by direction for the campaign page."""
    contacts = dict(
        db.session.execute(
            select(Contact.status, func.count())
            .where(Contact.campaign_id == campaign.id)
            .group_by(Contact.status)
        ).all()
    )
    messages = dict(
        db.session.execute(
            select(Message.direction, func.count())
            .where(Message.campaign_id == campaign.id)
            .group_by(Message.direction)
        ).all()
    )
    return {
        "contacts": sum(contacts.values()),
        "texted": contacts.get(ContactStatus.TEXTED, 0),
        "sent": messages.get(Direction.OUTBOUND, 0),
        "replies": messages.get(Direction.INBOUND, 0),
    }


@bp.post("/<int:campaign_id>/script")
@organizer_required
def save_script(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = ScriptForm()
    if not form.validate_on_submit():
        flash("The script cannot be empty or longer than 1,600 characters.", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    script = form.script.data or ""
    unknown = texting.unknown_merge_fields(script, campaign.custom_field_names)
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        flash(f"The script uses merge fields this list does not have: {names}", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    campaign.script = script
    db.session.commit()
    flash("Script saved.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/script/opt-out-language")
@organizer_required
def append_opt_out_language(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    if AppendOptOutForm().validate_on_submit():
        campaign.script = lint.with_opt_out_language(campaign.script)
        db.session.commit()
        flash("Added opt-out language to the script.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/status")
@organizer_required
def change_status(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = StatusForm()
    if form.validate_on_submit():
        new_status = CampaignStatus(form.status.data)
        if new_status == CampaignStatus.ACTIVE and not campaign.script.strip():
            flash("Write a script before launching.", "error")
        else:
            campaign.status = new_status
            db.session.commit()
            flash(f"Campaign is now {new_status.value}.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))
