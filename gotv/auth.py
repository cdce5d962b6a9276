"""Logging in and out, and the role checks every view goes through."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from gotv.db import db
from gotv.models import Campaign, ContactImport, Message, OptOut, Sender, User

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"

View = TypeVar("View", bound=Callable[..., Any])

# Failed sign-ins allowed per minute. A password guesser gets 5 tries a minute at one account
# (about 7,000 a day, hopeless against a real password) and 10 a minute from one address, while
# a phone bank of 30 volunteers behind one office router can still mistype a few passwords at
# 9 am. Successful sign-ins are not counted, so that phone bank never locks itself out.
LOGIN_FAILURES_PER_ADDRESS = "10 per minute"
LOGIN_FAILURES_PER_EMAIL = "5 per minute"


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)


def limit_logins(app: Flask) -> None:
    """Rate limit failed sign-ins on `app` (call after the blueprint is registered).

    Each app gets its own Limiter, as Flask-Limiter keeps its storage on the instance. The
    counts live in Redis, shared by every web process; while Redis is down the limiter logs a
    warning and counts in each process's memory instead, so sign-in keeps working.
    """
    limiter = Limiter(
        get_remote_address,  # the client's address, as ProxyFix rebuilt it from X-Forwarded-For
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        strategy="moving-window",
        key_prefix="gotv-login",
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limiter.init_app(app)
    view: Callable[..., Any] = app.view_functions["auth.login"]
    for limit, key in (
        (LOGIN_FAILURES_PER_ADDRESS, get_remote_address),
        (LOGIN_FAILURES_PER_EMAIL, submitted_email),
    ):
        view = limiter.limit(limit, key_func=key, methods=["POST"], deduct_when=sign_in_failed)(
            view
        )
    app.view_functions["auth.login"] = view


def sign_in_failed(response: Response) -> bool:
    """A sign-in that did not redirect onward failed (or was refused)."""
    return response.status_code != 302


def submitted_email() -> str:
    return "email:" + request.form.get("email", "").strip().lower()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


OwnedRow = TypeVar("OwnedRow", Campaign, ContactImport, Message, OptOut, Sender)


def get_owned(model: type[OwnedRow], row_id: int) -> OwnedRow:
    """The row, if it belongs to the current user's organization.

    :raise 404: for a row that does not exist or belongs to another organization (never 403,
        which would tell a stranger that it exists).
    """
    row = db.session.get(model, row_id)
    if row is None or row.organization_id != current_user.organization_id:
        abort(404)
    return row


def organizer_required(view: View) -> View:
    """Only owners and admins of the organization may use this view."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_organizer:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def find_user(email: str) -> User | None:
    query = select(User).where(User.email == email.strip().lower())
    return db.session.scalars(query).first()


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(form.email.data or "")
        if user is not None and user.check_password(form.password.data or ""):
            start_new_session()
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
        flash("That email and password do not match.", "error")
    return render_template("auth/login.html", form=form)


def start_new_session() -> None:
    """Sign-in starts a new session: nothing planted in the cookie before survives it.

    The CSRF token goes too; Flask-WTF caches it on `g`, so forget that copy as well, and the
    next form rendered gets a token of the new session.
    """
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    return redirect(url_for("auth.login"))


@bp.get("/")
@login_required
def home() -> ResponseReturnValue:
    if current_user.is_organizer:
        return redirect(url_for("campaigns.index"))
    return redirect(url_for("inbox.index"))


def safe_next(target: str | None) -> str:
    """Only follow a `next` that stays on this site.

    Browsers read "///x" like "//x", a link to the host x, though urlsplit sees no host in it.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
        and "\\" not in target
    ):
        return target
    return url_for("auth.home")
