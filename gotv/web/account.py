"""Everyone's own account page, where two-step sign-in is turned on and off."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext, refresh
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, EqualTo, Length

from gotv import encryption
from gotv.db import db
from gotv.models import utcnow
from gotv.people import passwords, twofactor
from gotv.web.auth import end_sessions, start_new_session, wrong_code, wrong_password
from gotv.web.i18n import LANGUAGES
from gotv.web.team import password_rule

bp = Blueprint("account", __name__, url_prefix="/account")

# The secret being set up, kept in the session (encrypted: the cookie is readable) until a code
# proves the app has it, for at most half an hour.
PENDING_SECRET = "totp_pending_secret"
PENDING_SECRET_SECONDS = 30 * 60


class CodeForm(FlaskForm):
    code = StringField(
        lazy_gettext("6-digit code from your app"), validators=[DataRequired(), Length(max=10)]
    )


class LanguageForm(FlaskForm):
    # "": the browser's language.
    locale = SelectField(
        choices=[SelectChoice(code, name) for code, name in [("", ""), *LANGUAGES.items()]],
        validators=[AnyOf(["", *LANGUAGES])],
    )


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    return render_template(
        "account/index.html",
        disable_form=CodeForm(),
        language_form=LanguageForm(locale=current_user.locale or ""),
        languages=LANGUAGES,
        password_form=PasswordForm(),
        min_password_length=passwords.MIN_LENGTH,
        action_form=ActionForm(),
    )


@bp.post("/language")
@login_required
def choose_language() -> ResponseReturnValue:
    """The language of this person's pages; none chosen: their browser's."""
    form = LanguageForm()
    if form.validate_on_submit():
        chosen = form.locale.data or None
        current_user.locale = chosen
        db.session.commit()
        refresh()  # this request chose its language before the change
        flash(gettext("Language saved."), "success")
    return redirect(url_for("account.index"))


@bp.get("/two-factor")
@login_required
def two_factor() -> ResponseReturnValue:
    if current_user.totp_secret:
        return redirect(url_for("account.index"))
    return setup_page(CodeForm())


def setup_page(form: CodeForm) -> ResponseReturnValue:
    """The secret (as a QR code and as text) and the form confirming it."""
    secret = pending_secret() or twofactor.new_secret()
    session[PENDING_SECRET] = encryption.sealed(secret)
    uri = twofactor.provisioning_uri(secret, current_user.email)
    return render_template(
        "account/two_factor.html",
        form=form,
        secret=twofactor.grouped(secret),
        qr_code=Markup(twofactor.qr_code_svg(uri)),  # segno's own markup; the URI is escaped
    )


def pending_secret() -> str | None:
    return encryption.unsealed(session.get(PENDING_SECRET), PENDING_SECRET_SECONDS)


@bp.post("/two-factor")
@login_required
def enable_two_factor() -> ResponseReturnValue:
    form = CodeForm()
    secret = pending_secret()
    if current_user.totp_secret or not secret:
        return redirect(url_for("account.index"))
    if form.validate_on_submit() and twofactor.enable(
        current_user, secret, form.code.data or "", utcnow()
    ):
        db.session.commit()
        session.pop(PENDING_SECRET)
        flash(
            gettext("Two-step sign-in is on: you will be asked for a code after your password."),
            "success",
        )
        return redirect(url_for("account.index"))
    wrong_code()
    flash(gettext("That code is not right. Type the code your app shows now."), "error")
    return setup_page(form)


@bp.post("/two-factor/disable")
@login_required
def disable_two_factor() -> ResponseReturnValue:
    form = CodeForm()
    if form.validate_on_submit() and twofactor.disable(
        current_user, form.code.data or "", utcnow()
    ):
        db.session.commit()
        flash(gettext("Two-step sign-in is off."), "success")
    else:
        wrong_code()
        flash(gettext("That code is not right, so two-step sign-in stays on."), "error")
    return redirect(url_for("account.index"))


# --- Sessions and the password -------------------------------------------------------------


class ActionForm(FlaskForm):
    """A button that changes something: a CSRF token and nothing else."""


class PasswordForm(FlaskForm):
    current = PasswordField(lazy_gettext("Current password"), validators=[DataRequired()])
    password = PasswordField(
        lazy_gettext("New password (at least %(num)s characters)", num=passwords.MIN_LENGTH),
        validators=[DataRequired(), password_rule],
    )
    confirm = PasswordField(
        lazy_gettext("New password again"),
        validators=[
            DataRequired(),
            EqualTo("password", message=lazy_gettext("The two passwords differ.")),
        ],
    )


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> ResponseReturnValue:
    """End every session of this user, this one too: on every browser and every copy of a
    cookie (a lost phone, a shared computer)."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for("account.index"))
    end_sessions(current_user, audited_as="signed_out_everywhere")
    logout_user()
    flash(gettext("You are signed out everywhere: sign in again here."), "success")
    return redirect(url_for("auth.login"))


@bp.post("/password")
@login_required
def change_password() -> ResponseReturnValue:
    """A new password, given the current one; every other session ends, this one goes on."""
    form = PasswordForm()
    if not form.validate_on_submit():
        for field, errors in form.errors.items():
            flash(f"{form[field].label.text}: {'; '.join(errors)}", "error")
        return redirect(url_for("account.index"))
    user = current_user._get_current_object()
    if not passwords.verify(user, form.current.data or ""):
        wrong_password()
        flash(gettext("That is not your current password, so it stays as it was."), "error")
        return redirect(url_for("account.index"))
    user.set_password(form.password.data or "")
    end_sessions(user, audited_as="password_changed")
    start_new_session()
    login_user(user)  # a session of the new generation, here only
    flash(gettext("Your password is changed, and every other session is signed out."), "success")
    return redirect(url_for("account.index"))
