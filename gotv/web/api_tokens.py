"""Organizers: create, list and revoke the organization's API tokens (/settings/api-tokens)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from gotv.api import tokens
from gotv.db import db
from gotv.web.auth import organizer_required

bp = Blueprint("api_tokens", __name__, url_prefix="/settings/api-tokens")


class ScopesField(SelectMultipleField):
    """The scopes, as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TokenForm(FlaskForm):
    name = StringField(
        "Name (what uses it)", validators=[DataRequired(), Length(max=tokens.NAME_LENGTH)]
    )
    scopes = ScopesField(
        "What it may do",
        choices=[SelectChoice(scope, f"{scope}: {text}") for scope, text in tokens.SCOPES.items()],
        validators=[DataRequired(message="Choose at least one scope.")],
    )


class RevokeForm(FlaskForm):
    pass


def render_page(
    form: TokenForm, secret: str | None = None, status: int = 200
) -> ResponseReturnValue:
    page = render_template(
        "settings/api_tokens.html",
        tokens=tokens.organization_tokens(current_user.organization_id),
        form=form,
        revoke_form=RevokeForm(),
        secret=secret,
        creator_may_use=tokens.creator_may_use,
    )
    # The page may carry a token's secret: no cache may keep it.
    return page, status, {"Cache-Control": "no-store"}


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    return render_page(TokenForm())


@bp.post("")
@organizer_required
def create() -> ResponseReturnValue:
    form = TokenForm()
    if not form.validate_on_submit():
        return render_page(form, status=400)
    _token, secret = tokens.create_token(
        current_user.organization_id,
        form.name.data or "",
        list(form.scopes.data or []),
        current_user.id,
    )
    db.session.commit()
    return render_page(TokenForm(formdata=None), secret=secret, status=201)


@bp.post("/<int:token_id>/revoke")
@organizer_required
def revoke(token_id: int) -> ResponseReturnValue:
    token = tokens.organization_token(current_user.organization_id, token_id)
    if token is None:
        abort(404)
    if RevokeForm().validate_on_submit():
        if tokens.revoke(token, current_user.id):
            flash(
                f"The token {token.name} is revoked: programs using it are refused now.", "success"
            )
        db.session.commit()
    return redirect(url_for("api_tokens.index"))
