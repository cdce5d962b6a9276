"""Deleting a campaign, softly: it is archived and hidden, never texted, and can be restored.

Deleting asks the organizer to type the campaign's name. Nothing is removed from the database:
the contacts, messages and opt-outs stay (opt-outs are the organization's, not the campaign's),
and every delete and restore is audited. A deleted campaign is also archived, so the send gate
and the volunteers' send loop, which only text active campaigns, refuse it.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import StringField

from gotv.db import db
from gotv.models import Campaign, CampaignStatus, utcnow
from gotv.people import audit
from gotv.web.auth import get_owned, organizer_required

bp = Blueprint("trash", __name__, url_prefix="/campaigns")


# --- The rules -----------------------------------------------------------------------------


def delete_campaign(campaign: Campaign, typed_name: str, user_id: int, now: datetime) -> bool:
    """Delete (archive and hide) the campaign if `typed_name` is its name; the caller commits.

    Returns False, changing nothing, when the name does not match or it is already deleted.
    """
    if campaign.deleted_at is not None or typed_name.strip() != campaign.name.strip():
        return False
    audit.record(
        campaign.organization_id,
        "campaign_deleted",
        f"campaign {campaign.id}",
        user_id,
        name=campaign.name,
        status_before=campaign.status.value,
    )
    campaign.deleted_at = now
    campaign.status = CampaignStatus.ARCHIVED
    return True


def restore_campaign(campaign: Campaign, user_id: int) -> bool:
    """Bring a deleted campaign back, paused (an organizer relaunches it); the caller commits."""
    if campaign.deleted_at is None:
        return False
    campaign.deleted_at = None
    campaign.status = CampaignStatus.PAUSED
    audit.record(
        campaign.organization_id,
        "campaign_restored",
        f"campaign {campaign.id}",
        user_id,
        name=campaign.name,
    )
    return True


# --- The pages -----------------------------------------------------------------------------


class DeleteForm(FlaskForm):
    confirm_name = StringField("Type the campaign's name to delete it")


class RestoreForm(FlaskForm):
    pass


@bp.get("/archived")
@organizer_required
def archived() -> ResponseReturnValue:
    """The organization's archived and deleted campaigns, deleted ones with a Restore button."""
    campaigns = db.session.scalars(
        select(Campaign)
        .where(
            Campaign.organization_id == current_user.organization_id,
            or_(Campaign.deleted_at.is_not(None), Campaign.status == CampaignStatus.ARCHIVED),
        )
        .order_by(Campaign.created_at.desc())
    ).all()
    return render_template("campaigns/archived.html", campaigns=campaigns, form=RestoreForm())


@bp.post("/<int:campaign_id>/delete")
@organizer_required
def delete(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = DeleteForm()
    if form.validate_on_submit() and delete_campaign(
        campaign, form.confirm_name.data or "", current_user.id, utcnow()
    ):
        db.session.commit()
        flash(f"Deleted {campaign.name}. Restore it from Archived & deleted.", "success")
        return redirect(url_for("campaigns.index"))
    flash("Not deleted: type the campaign's name exactly to delete it.", "error")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/restore")
@organizer_required
def restore(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    if RestoreForm().validate_on_submit() and restore_campaign(campaign, current_user.id):
        db.session.commit()
        flash(f"Restored {campaign.name}, paused: launch it again when ready.", "success")
    return redirect(url_for("trash.archived"))
