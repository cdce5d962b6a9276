"""Logging in and out (with the code of two-step sign-in), and the role checks of every view."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
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
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from gotv import ids
from gotv.db import db
from gotv.models import (
    Campaign,
    ContactImport,
    Invite,
    Message,
    OptOut,
    Role,
    Sender,
    User,
    utcnow,
)
from gotv.people import passwords, sessions, twofactor
from gotv.texting import live
from gotv.texting.texts import N_

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"
login_manager.login_message = N_("Please log in to access this page.")
login_manager.localize_callback = gettext

View = TypeVar("View", bound=Callable[..., Any])

# Failed sign-ins allowed per minute. A password guesser gets 5 tries a minute at one account
# (about 7,000 a day, hopeless against a real password) and 10 a minute from one address, while
# a phone bank of 30 volunteers behind one office router can still mistype a few passwords at
# 9 am. Successful sign-ins are not counted, so that phone bank never locks itself out.
LOGIN_FAILURES_PER_ADDRESS = "10 per minute"
LOGIN_FAILURES_PER_EMAIL = "5 per minute"
# Wrong two-step codes, per account: a code is one of a million, so the hourly cap matters most.
CODE_FAILURES_PER_USER = "5 per minute;20 per hour"
# After the password, the code must follow within this time, or the password is asked again.
CODE_STEP_TIMEOUT = timedelta(minutes=5)
# Wrong codes in one sign-in before the password is asked again.
CODE_TRIES = 5
PENDING = "two_factor"


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)
    app.session_interface = CookieSessions()


def session_identifier() -> str:
    """What ties a session to its browser for Flask-Login's strong protection: the client's
    address and User-Agent.

    Flask-Login's own reads X-Forwarded-For straight from the request, so anyone could claim
    the victim's address with a copied cookie. This takes the address Werkzeug has, which
    ProxyFix rebuilt from X-Forwarded-For only when PROXY_COUNT proxies are trusted.
    """
    seen = f"{request.remote_addr}|{request.headers.get('User-Agent')}"
    return hashlib.sha512(seen.encode()).hexdigest()


# (Flask-Login's hook for this: the attribute its login_user and protection checks call.)
login_manager._session_identifier_generator = session_identifier


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer built once per app.

    Flask builds it anew on every request, and the signer's constructor serializes an empty
    dict to learn its serializer's type, a cost every webhook paid.
    """

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        signer: URLSafeTimedSerializer | None = app.extensions.get("gotv.session_signer")
        if signer is None:
            signer = super().get_signing_serializer(app)
            app.extensions["gotv.session_signer"] = signer
        return signer


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
    # Each view with the limits it counts against, and what counts as a failure. Every check
    # of a two-step code counts against the account's one budget of wrong codes, wherever it
    # is made: signing in, turning two-step sign-in on, or turning it off.
    steps: dict[str, tuple[Callable[[Response], bool], tuple[tuple[str, Callable[[], str]], ...]]]
    steps = {
        "auth.login": (
            sign_in_failed,
            (
                (LOGIN_FAILURES_PER_ADDRESS, get_remote_address),
                (LOGIN_FAILURES_PER_EMAIL, submitted_email),
            ),
        ),
        "auth.login_code": (
            sign_in_failed,
            (
                (LOGIN_FAILURES_PER_ADDRESS, get_remote_address),
                (CODE_FAILURES_PER_USER, pending_user_key),
            ),
        ),
        # An invitation's sign-up form, which tells whether an email can join: as sign-in.
        "join.join": (sign_in_failed, ((LOGIN_FAILURES_PER_ADDRESS, get_remote_address),)),
        "account.change_password": (
            password_was_wrong,
            ((LOGIN_FAILURES_PER_EMAIL, own_email_key),),
        ),
        "account.enable_two_factor": (code_was_wrong, ((CODE_FAILURES_PER_USER, own_code_key),)),
        "account.disable_two_factor": (code_was_wrong, ((CODE_FAILURES_PER_USER, own_code_key),)),
    }
    for endpoint, (failed, limits) in steps.items():
        view: Callable[..., Any] = app.view_functions[endpoint]
        for limit, key in limits:
            # One count per limit and key, shared by every view that has it (a plain limit's
            # count is per view).
            view = limiter.shared_limit(
                limit, scope=limit, key_func=key, methods=["POST"], deduct_when=failed
            )(view)
        app.view_functions[endpoint] = view
    keep_limiter_to(app, limiter, set(steps))


def keep_limiter_to(app: Flask, limiter: Limiter, endpoints: set[str]) -> None:
    """Run Flask-Limiter's per-request hooks for `endpoints` only.

    Each decorated view checks its own limits; the hooks Flask-Limiter adds to every request
    would look for default limits, which we have none of, and count sign-in failures, which
    only the sign-in views have: work for nothing on every other request, the busiest of
    which are Twilio's webhooks.
    """
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    for hooks in (app.after_request_funcs, app.teardown_request_funcs):
        hooks[None] = [
            only_on(endpoints, hook) if belongs_to(hook, limiter) else hook for hook in hooks[None]
        ]


def belongs_to(hook: Callable[..., Any], owner: object) -> bool:
    """True when `hook` is a bound method of `owner`, or a partial with `owner` first."""
    return getattr(hook, "__self__", None) is owner or owner in getattr(hook, "args", ())


def only_on(endpoints: set[str], hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An after_request or teardown hook that runs for `endpoints` only."""

    def filtered(value: Any) -> Any:
        return hook(value) if request.endpoint in endpoints else value

    return filtered


def sign_in_failed(response: Response) -> bool:
    """A sign-in that did not redirect onward failed (or was refused)."""
    return response.status_code != 302


def wrong_code() -> None:
    """Note that this request checked a two-step code and it was wrong (for the rate limit)."""
    g.wrong_code = True


def code_was_wrong(_response: Response) -> bool:
    return bool(g.get("wrong_code"))


def wrong_password() -> None:
    """Note that this request checked the signed-in user's password and it was wrong."""
    g.wrong_password = True


def password_was_wrong(_response: Response) -> bool:
    return bool(g.get("wrong_password"))


def own_email_key() -> str:
    """The signed-in user's budget of wrong passwords: the one sign-ins to it count against."""
    return "email:" + str(getattr(current_user, "email", ""))


def own_code_key() -> str:
    """The signed-in user's budget of wrong codes: the one their sign-ins count against."""
    return f"code-user:{getattr(current_user, 'id', None)}"


def submitted_email() -> str:
    return "email:" + request.form.get("email", "").strip().lower()


def pending_user_key() -> str:
    """Wrong codes count against the account whose password was given, in any session."""
    return f"code-user:{session.get(PENDING, {}).get('user')}"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The signed-in user of a session; None (signed out) once they are suspended, or once
    their sessions were ended (`User.get_id`: "<id>.<session generation>").

    Every request asks, so the user is read as a Core row, in one query that checks the
    generation and the suspension too, and attached to the session as if the ORM had loaded it
    (`Session.get` costs more, on every request): changes to it are flushed as usual. The
    columns left out (the encrypted TOTP secret) load when first read. One the session holds
    already is used as it is.
    """
    user_id, _, generation = session_id.partition(".")
    key = {"id": ids.parse(user_id), "generation": ids.parse(generation)}
    if key["id"] is None or key["generation"] is None:
        return None
    held = db.session.identity_map.get(identity_key(User, key["id"]))
    if isinstance(held, User):
        current = held.is_active and held.session_generation == key["generation"]
        return held if current else None
    row = db.session.connection().execute(_USER, key).first()
    if row is None:
        return None
    user = User(**row._mapping)
    make_transient_to_detached(user)
    db.session.add(user)
    return user


_USER = select(
    *(column for column in User.__table__.columns if column.name != "totp_secret")
).where(
    User.id == bindparam("id"),
    User.session_generation == bindparam("generation"),
    User.suspended_at.is_(None),
)


OwnedRow = TypeVar("OwnedRow", Campaign, ContactImport, Invite, Message, OptOut, Sender, User)


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


def owner_required(view: View) -> View:
    """Only owners of the organization may use this view."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user.role != Role.OWNER:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def find_user(email: str) -> User | None:
    query = select(User).where(User.email == email.strip().lower())
    return db.session.scalars(query).first()


class CodeForm(FlaskForm):
    code = StringField("6-digit code", validators=[DataRequired(), Length(max=10)])


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(form.email.data or "")
        if not passwords.verify(user, form.password.data or ""):
            flash(gettext("That email and password do not match."), "error")
        elif user is None:  # (verify is False without a user; this tells mypy)
            pass
        elif not user.is_active:
            flash(gettext("This account is suspended. Ask an organizer of your team."), "error")
        elif user.totp_secret:
            start_new_session()
            session[PENDING] = {
                "user": user.id,
                "since": utcnow().timestamp(),
                "next": request.args.get("next"),
                "failures": 0,
            }
            return redirect(url_for("auth.login_code"))
        else:
            start_new_session()
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


def pending_sign_in() -> User | None:
    """The user whose password this session gave, while their code may still follow."""
    pending = session.get(PENDING)
    if not pending or utcnow().timestamp() - pending["since"] > CODE_STEP_TIMEOUT.total_seconds():
        return None
    user = db.session.get(User, pending["user"])
    return user if user is not None and user.is_active and user.totp_secret else None


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> ResponseReturnValue:
    """The second step of signing in, for users with two-step sign-in on."""
    user = pending_sign_in()
    if user is None:
        session.pop(PENDING, None)
        flash(gettext("Please sign in again."), "error")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        if twofactor.check_code(user, form.code.data or "", utcnow()):
            target = session[PENDING]["next"]
            db.session.commit()  # the code is used up
            start_new_session()
            login_user(user)
            return redirect(safe_next(target))
        pending = session[PENDING]
        pending["failures"] += 1
        session[PENDING] = pending
        if pending["failures"] >= CODE_TRIES:
            session.pop(PENDING)
            flash(gettext("Too many wrong codes. Please sign in again."), "error")
            # A page, not a redirect: the rate limit counts this as the failure it is.
            return render_template("auth/login.html", form=LoginForm(formdata=None))
        flash(
            gettext(
                "That code is not right, or was used already. Type the one your app shows now."
            ),
            "error",
        )
    return render_template("auth/code.html", form=form)


def end_sessions(user: User, audited_as: str | None = None) -> None:
    """End all of `user`'s sessions and commit; then their open live streams close."""
    sessions.end_all(user, audited_as)
    db.session.commit()
    live.sign_out(user.id)


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
    """Sign out, ending every session of the user: a copy of this session's cookie is worth
    nothing after it (a session is a signed cookie, so ending one ends them all). A `next` on
    this site (an invitation link, say) is followed."""
    end_sessions(current_user)
    logout_user()
    target = request.form.get("next")
    return redirect(safe_next(target) if target else url_for("auth.login"))


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
