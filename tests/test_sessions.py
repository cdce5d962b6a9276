"""Revocable sessions: signing out, a new password, suspension and "sign out everywhere" end
sessions, copies of their cookies included.

A session is a signed cookie the browser keeps; each holds the user's session generation from
when it began, checked on every request (gotv/people/sessions.py, gotv/web/auth.py load_user).
"""

from __future__ import annotations

from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.models import AuditEvent, Role, User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user

NEW_PASSWORD = "a brand new passphrase"


def copy_of(client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of `client`'s session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = client.application.test_client()
    other.set_cookie("session", cookie.value)
    return other


def as_a_new_request() -> None:
    """The test's requests share one app context: forget what an earlier request (perhaps of
    another browser) left on `g`, the user and the CSRF token, as a production request (in a
    context of its own) never sees them."""
    g.pop("_login_user", None)
    g.pop("csrf_token", None)


def sign_in(client: FlaskClient, user: User) -> None:
    as_a_new_request()
    login(client, user)


def signed_in(client: FlaskClient) -> bool:
    """Whether the client's session still signs it in."""
    as_a_new_request()
    return client.get("/account").status_code == 200


def press(client: FlaskClient, url: str, **fields: str) -> int:
    as_a_new_request()
    token = csrf_token(client.get("/account").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **fields}).status_code


def test_a_cookie_copied_before_logout_is_refused_after_it(
    client: FlaskClient, volunteer: User
) -> None:
    sign_in(client, volunteer)
    copied = copy_of(client)

    assert press(client, "/logout") == 302

    assert not signed_in(copied)


def test_sign_out_everywhere_ends_every_session_of_the_user_only(
    app: Flask, volunteer: User, organizer: User
) -> None:
    laptop, phone, colleague = (app.test_client() for _ in range(3))
    sign_in(laptop, volunteer)
    sign_in(phone, volunteer)
    sign_in(colleague, organizer)
    stolen = copy_of(phone)

    answer = press(laptop, "/account/sign-out-everywhere")

    assert answer == 302
    entry = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sessions_ended"))
    assert [(e.user_id, e.details) for e in entry] == [
        (volunteer.id, {"why": "signed_out_everywhere"})
    ]
    assert signed_in(colleague)
    assert not any(signed_in(browser) for browser in (laptop, phone, stolen))


def test_the_account_page_offers_to_sign_out_everywhere(
    client: FlaskClient, volunteer: User
) -> None:
    sign_in(client, volunteer)

    page = client.get("/account").get_data(as_text=True)

    assert "Sign out everywhere" in page and 'action="/account/sign-out-everywhere"' in page


def test_a_new_password_ends_every_other_session_and_keeps_this_one(
    app: Flask, organization: object, volunteer: User
) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, volunteer)
    sign_in(elsewhere, volunteer)
    volunteer.set_password(PASSWORD, "pbkdf2:sha256:1000")
    db.session.flush()

    answer = press(
        here, "/account/password", current=PASSWORD, password=NEW_PASSWORD, confirm=NEW_PASSWORD
    )

    assert answer == 302
    db.session.refresh(volunteer)
    assert volunteer.check_password(NEW_PASSWORD)
    assert not signed_in(elsewhere)
    assert signed_in(here)


def test_a_new_password_needs_the_current_one_and_follows_the_rule(
    client: FlaskClient, volunteer: User
) -> None:
    sign_in(client, volunteer)

    wrong = press(
        client, "/account/password", current="not it", password=NEW_PASSWORD, confirm=NEW_PASSWORD
    )
    said_wrong = client.get("/account").get_data(as_text=True)
    short = press(client, "/account/password", current=PASSWORD, password="short", confirm="short")
    said_short = client.get("/account").get_data(as_text=True)

    assert (wrong, short) == (302, 302)
    assert "That is not your current password" in said_wrong
    assert "Use at least 10 characters." in said_short
    db.session.refresh(volunteer)
    assert volunteer.check_password(PASSWORD)


def test_guessing_the_current_password_is_rate_limited(
    client: FlaskClient, volunteer: User
) -> None:
    sign_in(client, volunteer)

    statuses = [
        press(
            client,
            "/account/password",
            current=f"guess {n}",
            password=NEW_PASSWORD,
            confirm=NEW_PASSWORD,
        )
        for n in range(6)
    ]

    assert statuses[:5] == [302] * 5 and statuses[5] == 429


def test_suspension_ends_the_members_sessions_and_reinstating_does_not_revive_them(
    app: Flask, organization: object, organizer: User
) -> None:
    member = make_user(organizer.organization, role=Role.TEXTER)
    theirs, ours = app.test_client(), app.test_client()
    sign_in(theirs, member)
    sign_in(ours, organizer)

    assert press(ours, f"/team/members/{member.id}/suspend") == 302
    assert press(ours, f"/team/members/{member.id}/reinstate") == 302

    assert not signed_in(theirs)
    sign_in(theirs, member)  # signing in again works
    assert signed_in(theirs)


def test_a_session_naming_an_old_generation_or_a_malformed_one_signs_nobody_in(
    client: FlaskClient, volunteer: User
) -> None:
    sign_in(client, volunteer)
    for forged in (str(volunteer.id), f"{volunteer.id}.99", f"{volunteer.id}.\u00b2", "x.0"):
        with client.session_transaction() as session:
            session["_user_id"] = forged
        assert not signed_in(client), forged
