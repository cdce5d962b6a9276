"""Organizers: the organization's name and the help text voters get when they ask for HELP."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from gotv import consent
from gotv.auth import organizer_required
from gotv.db import db

bp = Blueprint("settings", __name__, url_prefix="/settings")


class OrganizationForm(FlaskForm):
    name = StringField("Organization name", validators=[DataRequired(), Length(max=200)])
    help_text = TextAreaField(
        "Help text (sent when a voter asks for help; {organization} is your name)",
        validators=[DataRequired(), Length(max=320)],
    )


@bp.route("", methods=["GET", "POST"])
@organizer_required
def organization() -> ResponseReturnValue:
    organization = current_user.organization
    form = OrganizationForm(obj=organization)
    if form.validate_on_submit():
        consent.audit(
            organization.id,
            "settings_changed",
            user_id=current_user.id,
            name=form.name.data,
            help_text=form.help_text.data,
        )
        form.populate_obj(organization)
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("settings.organization"))
    return render_template("settings/organization.html", form=form)
