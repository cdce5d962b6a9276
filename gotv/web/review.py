"""Organizers: review the organization's conversations, read any thread, reassign them.

The searching and moving are in `gotv.campaigns.review`; these views parse the request, call it, and
render or redirect. Replying as an organizer is the volunteers' own reply form
(`inbox.conversation`), which lets organizers into any conversation of their organization.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from gotv import ids
from gotv.campaigns import content, review
from gotv.compliance import optouts
from gotv.db import db
from gotv.models import Campaign, Contact
from gotv.texting import texts
from gotv.web.auth import organizer_required
from gotv.web.ids import query_id, strict

bp = Blueprint("review", __name__, url_prefix="/review")

MATCH_PREFIX = "match-"  # hidden fields carrying the search a bulk reassignment applies to


class ReassignForm(FlaskForm):
    # A user id, or review.UNASSIGNED; gotv.campaigns.review decides who is acceptable.
    to = StringField("Reassign to", validators=[DataRequired(), Length(max=20)])
    all_matching = BooleanField("Every conversation matching this search, on all pages")


def holder_id(form: ReassignForm) -> int | None:
    """The user id chosen in the form; None for "unassign". :raise CannotReassign: otherwise."""
    value = (form.to.data or "").strip()
    if value == review.UNASSIGNED:
        return None
    user_id = ids.parse(value)
    if user_id is None:
        raise review.CannotReassign("Choose a volunteer of your organization.")
    return user_id


def search_filters(args: Any) -> dict[str, str]:
    """The search's filters. :raise 400: for an id filter holding something else."""
    try:
        return review.clean_filters(args)
    except review.BadFilter as error:
        abort(400, str(error))


def reassign_form_choices() -> list[tuple[str, str]]:
    users = review.assignable_users(current_user.organization_id)
    return [(review.UNASSIGNED, "Nobody (unassign)")] + [(str(u.id), u.name) for u in users]


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    filters = search_filters(request.args)
    before = query_id("before")
    result = review.page(current_user.organization_id, filters, before)
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.organization_id == current_user.organization_id)
        .order_by(Campaign.created_at.desc())
    ).all()
    return render_template(
        "review/index.html",
        filters=filters,
        result=result,
        first_page=before is None,
        campaigns=campaigns,
        users=review.assignable_users(current_user.organization_id),
        tags=content.organization_tags(current_user.organization_id),
        statuses=review.STATUSES,
        unassigned=review.UNASSIGNED,
        form=ReassignForm(),
        choices=reassign_form_choices(),
        match_prefix=MATCH_PREFIX,
    )


@bp.post("/reassign")
@organizer_required
def reassign() -> ResponseReturnValue:
    """Reassign the ticked conversations, or every one matching the search the page showed."""
    form = ReassignForm()
    filters = search_filters(
        {
            key.removeprefix(MATCH_PREFIX): value
            for key, value in request.form.items()
            if key.startswith(MATCH_PREFIX)
        }
    )
    if not form.validate_on_submit():
        flash("Choose who the conversations go to.", "error")
        return redirect(search_url(filters))
    organization_id, by = current_user.organization_id, current_user.id
    try:
        if form.all_matching.data:
            moved = review.reassign_matching(organization_id, filters, holder_id(form), by)
        else:
            chosen = [strict("contact", value) for value in request.form.getlist("contact")]
            moved = review.reassign_selected(organization_id, chosen, holder_id(form), by)
    except review.CannotReassign as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return redirect(search_url(filters))
    db.session.commit()
    flash(f"Reassigned {moved} conversation{'' if moved == 1 else 's'}.", "success")
    return redirect(search_url(filters))


def search_url(filters: dict[str, Any]) -> str:
    """The review page showing this search again."""
    return url_for("review.index", **filters)


def owned_conversation(contact_id: int) -> Contact:
    """A contact of the organizer's organization. :raise 404: for any other."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.campaign.organization_id != current_user.organization_id:
        abort(404)
    return contact


@bp.get("/conversations/<int:contact_id>")
@organizer_required
def conversation(contact_id: int) -> ResponseReturnValue:
    """One thread, read-only, with who holds it and a form to hand it to someone else."""
    contact = owned_conversation(contact_id)
    messages = texts.thread(contact)
    return render_template(
        "review/conversation.html",
        contact=contact,
        messages=messages,
        media=texts.media_by_message(contact.id),
        opt_out=optouts.opt_out_of(contact.campaign.organization_id, contact.cell),
        form=ReassignForm(to=str(contact.texter_id or review.UNASSIGNED)),
        choices=reassign_form_choices(),
    )


@bp.post("/conversations/<int:contact_id>/reassign")
@organizer_required
def reassign_one(contact_id: int) -> ResponseReturnValue:
    contact = owned_conversation(contact_id)
    form = ReassignForm()
    if form.validate_on_submit():
        try:
            moved = review.reassign_selected(
                current_user.organization_id, [contact.id], holder_id(form), current_user.id
            )
        except review.CannotReassign as refusal:
            db.session.rollback()
            flash(str(refusal), "error")
        else:
            db.session.commit()
            if moved:
                flash("Reassigned.", "success")
            else:
                flash("Only conversations (contacts already texted) can be reassigned.", "error")
    return redirect(url_for("review.conversation", contact_id=contact.id))
