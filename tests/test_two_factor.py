"""Two-step sign-in: turning it on and off, and signing in with a code after the password.

Codes come from pyotp, as an authenticator app would make them; time is frozen and moved on
by whole 30-second steps, since a code is accepted only once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from gotv.db import db
from gotv.models import AuditEvent, Organization, Role, User, utcnow
from gotv.people import twofactor
from tests.conftest import WEEKDAY_MORNING_ET, csrf_token, login
from tests.factories import PASSWORD, make_user

STEP = timedelta(seconds=30)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(WEEKDAY_MORNING_ET, tick=False) as traveller:
        yield traveller


@pytest.fixture
def guarded(organization: Organization) -> User:
    """An organizer with two-step sign-in on."""
    return make_user(organization, name="Gina", role=Role.OWNER, totp_secret=SECRET)


def code(secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).now()


def wrong(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


def password_step(client: FlaskClient, user: User, next_page: str | None = None) -> TestResponse:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        query_string={"next": next_page} if next_page else None,
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )


def code_step(client: FlaskClient, value: str) -> TestResponse:
    token = csrf_token(client.get("/login/code").get_data(as_text=True))
    return client.post("/login/code", data={"code": value, "csrf_token": token})


def post(client: FlaskClient, url: str, **data: str) -> TestResponse:
    token = csrf_token(client.get("/account").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def audited(user: User) -> list[str]:
    query = select(AuditEvent.action).where(AuditEvent.user_id == user.id)
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


# --- Turning it on and off -------------------------------------------------------------------


def test_turning_it_on_shows_a_qr_code_and_the_key_then_takes_a_code(
    client: FlaskClient, organizer: User, clock: time_machine.Traveller
) -> None:
    login(client, organizer)

    page = client.get("/account/two-factor").get_data(as_text=True)
    key = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page)
    assert key is not None
    secret = key[1].replace(" ", "")
    refused = post(client, "/account/two-factor", code=wrong(code(secret)))
    accepted = post(client, "/account/two-factor", code=code(secret))

    assert "<svg" in page and "<script" not in page.split("<main>")[1]
    assert "That code is not right" in refused.get_data(as_text=True)
    assert accepted.headers["Location"] == "/account"
    db.session.refresh(organizer)
    assert organizer.totp_secret == secret
    assert audited(organizer) == ["two_factor_enabled"]
    assert '<span class="badge active">On</span>' in client.get("/account").get_data(as_text=True)


def test_the_key_stays_the_same_until_it_is_confirmed(client: FlaskClient, volunteer: User) -> None:
    login(client, volunteer)

    first = client.get("/account/two-factor").get_data(as_text=True)
    second = client.get("/account/two-factor").get_data(as_text=True)

    key = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
    assert key.findall(first) == key.findall(second) != []


def test_it_is_turned_off_only_with_a_current_code(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    password_step(client, guarded)
    code_step(client, code())
    clock.shift(STEP)

    post(client, "/account/two-factor/disable", code=wrong(code()))
    still_on = guarded.totp_secret
    post(client, "/account/two-factor/disable", code=code())

    db.session.refresh(guarded)
    assert still_on == SECRET
    assert guarded.totp_secret is None
    assert audited(guarded) == ["two_factor_disabled"]


# --- Signing in ------------------------------------------------------------------------------


def test_the_password_alone_does_not_sign_in(client: FlaskClient, guarded: User) -> None:
    response = password_step(client, guarded)

    assert response.headers["Location"] == "/login/code"
    assert client.get("/campaigns").status_code == 302
    page = client.get("/login/code").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page and "autofocus" in page


def test_the_right_code_after_the_password_signs_in_and_follows_next(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    password_step(client, guarded, next_page="/team")

    response = code_step(client, code())

    assert response.headers["Location"] == "/team"
    assert client.get("/campaigns").status_code == 200


def test_a_wrong_code_is_refused(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    password_step(client, guarded)

    response = code_step(client, wrong(code()))

    assert response.status_code == 200
    assert "That code is not right" in response.get_data(as_text=True)
    assert client.get("/campaigns").status_code == 302


def test_a_code_a_step_late_is_accepted_for_clocks_a_little_off(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    late = code()
    clock.shift(STEP)
    password_step(client, guarded)

    response = code_step(client, late)

    assert response.status_code == 302


def test_a_code_two_steps_late_is_refused(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    stale = code()
    clock.shift(2 * STEP)
    password_step(client, guarded)

    response = code_step(client, stale)

    assert response.status_code == 200
    assert client.get("/campaigns").status_code == 302


def test_codes_are_six_digits_from_the_users_own_secret(clock: time_machine.Traveller) -> None:
    other = twofactor.new_secret()

    assert twofactor.matching_step(SECRET, code(), utcnow()) is not None
    assert twofactor.matching_step(other, code(), utcnow()) is None or code(other) == code()
    assert twofactor.matching_step(SECRET, "12345", utcnow()) is None
    assert twofactor.matching_step(SECRET, " ".join(code()), utcnow()) is not None


def test_a_code_is_accepted_only_once(
    app: Flask, client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    used = code()
    db.session.commit()  # the first sign-in runs in an app context of its own, as in production
    with app.app_context():
        first = app.test_client()
        password_step(first, guarded)
        assert code_step(first, used).status_code == 302

    password_step(client, guarded)
    replay = code_step(client, used)

    assert replay.status_code == 200
    assert client.get("/campaigns").status_code == 302


def test_five_wrong_codes_ask_for_the_password_again(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    password_step(client, guarded)
    right = code()

    statuses = [code_step(client, wrong(right)).status_code for _ in range(4)]
    fifth = code_step(client, wrong(right))

    assert statuses == [200] * 4
    assert "Too many wrong codes" in fifth.get_data(as_text=True)
    assert client.get("/login/code").headers["Location"] == "/login"


def test_wrong_codes_are_rate_limited_per_account_across_sign_ins(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    right = code()
    password_step(client, guarded)
    for _ in range(5):
        code_step(client, wrong(right))
    password_step(client, guarded)

    refused = code_step(client, right)

    assert refused.status_code == 429
    assert client.get("/campaigns").status_code == 302


def test_the_code_must_follow_the_password_within_five_minutes(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    password_step(client, guarded)
    clock.shift(timedelta(minutes=5, seconds=1))

    response = client.get("/login/code")

    assert response.headers["Location"] == "/login"


def test_the_code_page_without_a_password_sends_to_the_login_page(client: FlaskClient) -> None:
    assert client.get("/login/code").headers["Location"] == "/login"


def test_members_without_two_step_sign_in_sign_in_with_the_password_alone(
    client: FlaskClient, volunteer: User
) -> None:
    login(client, volunteer)

    assert client.get("/texting").status_code == 200


# --- Guessing the code that turns it off (or on) ---------------------------------------------


def test_guessing_the_code_that_turns_it_off_is_rate_limited(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    """Someone at an unlocked browser must not get a million tries at the code."""
    signed_in_with_code(client, guarded, clock)
    right = code()

    guesses = [
        post(client, "/account/two-factor/disable", code=wrong(right)).status_code
        for _ in range(30)
    ]
    refused = post(client, "/account/two-factor/disable", code=right)

    assert guesses[:5] == [302] * 5 and set(guesses[5:]) == {429}
    assert refused.status_code == 429
    db.session.refresh(guarded)
    assert guarded.totp_secret == SECRET


def test_wrong_codes_at_sign_in_and_on_the_account_page_share_one_budget(
    client: FlaskClient, guarded: User, clock: time_machine.Traveller
) -> None:
    signed_in_with_code(client, guarded, clock)
    for _ in range(5):
        post(client, "/account/two-factor/disable", code=wrong(code()))
    other = client.application.test_client()
    with client.application.app_context():  # another browser: a context of its own
        assert password_step(other, guarded).status_code == 302
        assert code_step(other, code()).status_code == 429


def test_wrong_codes_while_turning_it_on_are_rate_limited_too(
    client: FlaskClient, organizer: User, clock: time_machine.Traveller
) -> None:
    login(client, organizer)
    client.get("/account/two-factor")

    statuses = [post(client, "/account/two-factor", code="000000").status_code for _ in range(7)]

    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]


def signed_in_with_code(client: FlaskClient, user: User, clock: time_machine.Traveller) -> None:
    assert password_step(client, user).status_code == 302
    assert code_step(client, code()).status_code == 302
    clock.shift(STEP)  # the code just used is used up
