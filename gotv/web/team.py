"""The Team page (organizers: members, roles, suspensions, invitation links) and /join/<token>.

The rules live in gotv.people.team; these views check who asks, read forms, commit and say what
happened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from gotv import encryption
from gotv.db import db
from gotv.models import Campaign, CampaignStatus, Invite, Role, User, utcnow
from gotv.people import passwords, team
from gotv.texting import live
from gotv.texting.texts import N_
from gotv.web.auth import get_owned, organizer_required, owner_required, start_new_session
from gotv.web.i18n import translate
from gotv.web.ids import strict

bp = Blueprint("team", __name__, url_prefix="/team")
join_bp = Blueprint("join", __name__, url_prefix="/join")

# Where the link of an invitation just created waits for the next Team page (it is shown once:
# only its hash is stored), encrypted (the session cookie is readable), for ten minutes at most.
NEW_LINK = "new_invite_link"
NEW_LINK_SECONDS = 10 * 60
ROLE_NAMES = {Role.OWNER: "Owner", Role.ADMIN: "Admin", Role.TEXTER: "Texter"}


class InviteForm(FlaskForm):
    role = SelectField("Role", default=Role.TEXTER.value)
    campaign_id = SelectField("Start them on campaign", coerce=int, default=0)
    days = IntegerField(
        "Link works for (days)", default=14, validators=[InputRequired(), NumberRange(1, 90)]
    )
    max_uses = IntegerField(
        "How many people may use it (empty: any number)",
        validators=[Optional(), NumberRange(min=1, max=10000)],
    )


class RoleForm(FlaskForm):
    role = SelectField(
        "Role", choices=[SelectChoice(role.value, ROLE_NAMES[role]) for role in Role]
    )


class ActionForm(FlaskForm):
    """A button that changes something: a CSRF token and nothing else."""


def invite_form() -> InviteForm:
    """The invitation form, offering only the roles and campaigns this organizer may pick."""
    form = InviteForm()
    form.role.choices = [
        SelectChoice(role.value, ROLE_NAMES[role])
        for role in Role
        if team.may_invite(current_user, role)
    ]
    campaigns = db.session.scalars(
        select(Campaign)
        .where(
            Campaign.organization_id == current_user.organization_id,
            Campaign.status != CampaignStatus.ARCHIVED,
        )
        .order_by(Campaign.created_at.desc())
    )
    form.campaign_id.choices = [SelectChoice("0", "None: they start at home")] + [
        SelectChoice(str(campaign.id), campaign.name) for campaign in campaigns
    ]
    return form


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    return render_template(
        "team/index.html",
        members=team.members(current_user.organization_id),
        invites=team.open_invites(current_user.organization_id, utcnow()),
        new_link=encryption.unsealed(session.pop(NEW_LINK, None), NEW_LINK_SECONDS),
        form=invite_form(),
        role_form=RoleForm(),
        action_form=ActionForm(),
        may_manage=team.may_manage,
        role_names=ROLE_NAMES,
    )


@bp.post("/invites")
@organizer_required
def create_invite() -> ResponseReturnValue:
    chosen = request.form.get("campaign_id", "0").strip() or "0"
    campaign_id = strict("campaign_id", chosen)
    campaign = get_owned(Campaign, campaign_id) if campaign_id else None  # 404 for others'
    form = invite_form()
    if not form.validate_on_submit():
        for field, errors in form.errors.items():
            flash(f"{form[field].label.text}: {'; '.join(errors)}", "error")
        return redirect(url_for("team.index"))
    try:
        _invite, token = team.create_invite(
            current_user,
            Role(form.role.data),
            utcnow(),
            campaign=campaign,
            lifetime=timedelta(days=form.days.data or 14),
            max_uses=form.max_uses.data,
        )
    except team.TeamRuleBroken as refusal:
        abort(403, str(refusal))
    db.session.commit()
    session[NEW_LINK] = encryption.sealed(invite_link(token))
    flash("Invitation link created. Copy it now: it is shown only once.", "success")
    return redirect(url_for("team.index"))


def invite_link(token: str) -> str:
    """The full link to send: on PUBLIC_URL when set, else on the address this page was asked on."""
    public = current_app.config.get("PUBLIC_URL")
    path = url_for("join.join", token=token)
    return (
        public.rstrip("/") + path if public else url_for("join.join", token=token, _external=True)
    )


@bp.post("/invites/<int:invite_id>/revoke")
@organizer_required
def revoke_invite(invite_id: int) -> ResponseReturnValue:
    invite = get_owned(Invite, invite_id)
    if ActionForm().validate_on_submit():
        try:
            team.revoke_invite(invite, current_user, utcnow())
        except team.TeamRuleBroken as refusal:
            abort(403, str(refusal))
        db.session.commit()
        flash("Invitation revoked: the link no longer works.", "success")
    return redirect(url_for("team.index"))


@bp.post("/members/<int:user_id>/role")
@owner_required
def change_role(user_id: int) -> ResponseReturnValue:
    member = get_owned(User, user_id)
    form = RoleForm()
    if form.validate_on_submit():
        apply(
            lambda: team.change_role(member, Role(form.role.data), current_user),
            lambda _: f"{member.name} is now {ROLE_NAMES[member.role].lower()}.",
        )
    return redirect(url_for("team.index"))


@bp.post("/members/<int:user_id>/suspend")
@organizer_required
def suspend(user_id: int) -> ResponseReturnValue:
    member = get_owned(User, user_id)
    if ActionForm().validate_on_submit() and apply(
        lambda: team.suspend(member, current_user, utcnow()),
        lambda released: (
            f"{member.name} is suspended and signed out; "
            f"{released} untexted contacts went back to the pool."
        ),
    ):
        live.sign_out(member.id)  # their open pages stop receiving at once
    return redirect(url_for("team.index"))


@bp.post("/members/<int:user_id>/reinstate")
@organizer_required
def reinstate(user_id: int) -> ResponseReturnValue:
    member = get_owned(User, user_id)
    if ActionForm().validate_on_submit():
        apply(
            lambda: team.reinstate(member, current_user),
            lambda _: f"{member.name} can sign in again.",
        )
    return redirect(url_for("team.index"))


def apply(change: Callable[[], Any], done: Callable[[Any], str]) -> bool:
    """Make a team change and commit it, flashing `done(result)`; or flash why it was refused.
    Whether it was made."""
    try:
        result = change()
    except team.TeamRuleBroken as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return False
    db.session.commit()
    flash(done(result), "success")
    return True


# --- Joining through a link ----------------------------------------------------------------


def password_rule(_form: FlaskForm, field: PasswordField) -> None:
    """The one rule for a new password (gotv.people.passwords), as a form validator that says
    it in the page's language."""
    broken = passwords.broken_rule(field.data or "")
    if broken:
        words, limit = broken
        raise ValidationError(translate(words, num=limit))


# The password rule's words (gotv.people.passwords), marked for the catalogs.
N_("Use at least %(num)s characters.")
N_("Use at most %(num)s characters.")


class JoinForm(FlaskForm):
    name = StringField(lazy_gettext("Your name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(
        lazy_gettext("Email"),
        validators=[
            DataRequired(),
            Length(max=254),
            Regexp(
                r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=lazy_gettext("Type a whole email address.")
            ),
        ],
    )
    password = PasswordField(
        lazy_gettext("Password (at least %(num)s characters)", num=passwords.MIN_LENGTH),
        validators=[DataRequired(), password_rule],
    )
    confirm = PasswordField(
        lazy_gettext("Password again"),
        validators=[
            DataRequired(),
            EqualTo("password", message=lazy_gettext("The two passwords differ.")),
        ],
    )


@join_bp.route("/<token>", methods=["GET", "POST"])
def join(token: str) -> ResponseReturnValue:
    """A new person's signup through an invitation: few fields, then straight to work."""
    invite = team.find_invite(token)
    if invite is None:
        return render_template("join/unavailable.html", reason="unknown"), 404
    reason = team.why_closed(invite, utcnow())
    if reason is not None:
        return render_template("join/unavailable.html", reason=reason), 410
    if current_user.is_authenticated:
        return render_template("join/signed_in.html", invite=invite, token=token)
    form = JoinForm()
    if form.validate_on_submit():
        try:
            user = team.join(
                invite,
                form.name.data or "",
                form.email.data or "",
                form.password.data or "",
                utcnow(),
            )
        except team.TeamRuleBroken as refusal:
            db.session.rollback()
            flash(str(refusal), "error")
        else:
            db.session.commit()
            start_new_session()
            login_user(user)
            flash(
                gettext(
                    "Welcome to %(organization)s, %(name)s!",
                    organization=invite.organization.name,
                    name=user.name,
                ),
                "success",
            )
            if invite.campaign_id is not None:
                return redirect(url_for("inbox.send_loop", campaign_id=invite.campaign_id))
            return redirect(url_for("auth.home"))
    return render_template("join/form.html", invite=invite, form=form, role_names=ROLE_NAMES)
