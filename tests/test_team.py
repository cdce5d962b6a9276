"""The team: invitation links, joining through one, roles and their limits, suspending members.

Through the real pages with the test client, as organizers and newcomers use them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from gotv.db import db
from gotv.models import (
    AuditEvent,
    Campaign,
    Contact,
    ContactStatus,
    Invite,
    Organization,
    Role,
    User,
    utcnow,
)
from gotv.people import team
from tests.conftest import csrf_token, login
from tests.factories import (
    PASSWORD,
    make_campaign,
    make_contact,
    make_invite,
    make_user,
)

NEW_PASSWORD = "a long enough password"


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, name="Ward 7 Push")


@pytest.fixture
def admin(organization: Organization) -> User:
    return make_user(organization, name="Ada", role=Role.ADMIN)


def token_from(client: FlaskClient, page: str) -> str:
    return csrf_token(client.get(page).get_data(as_text=True))


def post(client: FlaskClient, url: str, **data: str) -> TestResponse:
    """POST a form with this session's CSRF token, as the page's own form would."""
    return client.post(url, data={"csrf_token": token_from(client, "/account"), **data})


def sign_up(
    client: FlaskClient, token: str, email: str = "newbie@example.test", **changes: str
) -> TestResponse:
    page = client.get(f"/join/{token}")
    form = {
        "name": "Nadia Newcomer",
        "email": email,
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        **changes,
    }
    return client.post(f"/join/{token}", data=form)


def user_by_email(email: str) -> User | None:
    return db.session.scalars(select(User).where(User.email == email)).first()


def actions(organization: Organization | int) -> list[str]:
    organization_id = organization if isinstance(organization, int) else organization.id
    query = select(AuditEvent.action).where(AuditEvent.organization_id == organization_id)
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def fresh(row: object) -> None:
    db.session.refresh(row)


# --- Creating invitation links ---------------------------------------------------------------


def test_an_organizer_creates_a_link_shown_once_and_stored_only_as_a_hash(
    client: FlaskClient, organization: Organization, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    response = post(client, "/team/invites", role="texter", campaign_id=str(campaign.id), days="7")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    again = client.get("/team").get_data(as_text=True)

    link = re.search(r'id="invite-link" value="([^"]+)"', page)
    assert link and link[1].startswith("https://gotv.test/join/")
    token = link[1].rsplit("/", 1)[1]
    invite = db.session.scalars(select(Invite)).one()
    assert token not in (invite.token_hash, *map(str, vars(invite).values()))
    assert invite.token_hash == team.hash_token(token)
    assert (invite.role, invite.campaign_id, invite.uses, invite.max_uses) == (
        Role.TEXTER,
        campaign.id,
        0,
        None,
    )
    assert invite.expires_at - invite.created_at == timedelta(days=7)
    assert token not in again and "Ward 7 Push" in again
    assert actions(organization) == ["invite_created"]


def test_a_link_works_for_fourteen_days_by_default(
    client: FlaskClient, organizer: User, weekday_morning: time_machine.Traveller
) -> None:
    login(client, organizer)

    post(client, "/team/invites", role="texter", campaign_id="0", days="14")

    invite = db.session.scalars(select(Invite)).one()
    assert invite.expires_at - invite.created_at == timedelta(days=14)
    assert 'value="14"' in client.get("/team").get_data(as_text=True)


def test_an_admin_may_invite_texters_but_not_admins_or_owners(
    client: FlaskClient, admin: User
) -> None:
    login(client, admin)

    page = client.get("/team").get_data(as_text=True)
    for role in ("admin", "owner"):
        post(client, "/team/invites", role=role, campaign_id="0", days="14")
    post(client, "/team/invites", role="texter", campaign_id="0", days="14")

    assert '<option value="admin"' not in page and '<option value="owner"' not in page
    assert [invite.role for invite in db.session.scalars(select(Invite))] == [Role.TEXTER]


def test_an_owner_may_invite_admins(client: FlaskClient, organizer: User) -> None:
    login(client, organizer)

    post(client, "/team/invites", role="admin", campaign_id="0", days="14", max_uses="1")

    invite = db.session.scalars(select(Invite)).one()
    assert (invite.role, invite.max_uses) == (Role.ADMIN, 1)


def test_revoking_closes_the_link_and_is_audited(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    invite, token = make_invite(organizer)
    login(client, organizer)

    post(client, f"/team/invites/{invite.id}/revoke")

    fresh(invite)
    assert invite.revoked_at is not None
    assert actions(organization) == ["invite_revoked"]
    assert "No open invitations." in client.get("/team").get_data(as_text=True)


def test_an_admin_cannot_revoke_an_invitation_for_an_admin(
    client: FlaskClient, organizer: User, admin: User
) -> None:
    invite, _token = make_invite(organizer, role=Role.ADMIN)
    login(client, admin)

    response = post(client, f"/team/invites/{invite.id}/revoke")

    fresh(invite)
    assert (response.status_code, invite.revoked_at) == (403, None)


def test_the_team_page_lists_members_and_open_invitations(
    client: FlaskClient, organizer: User, volunteer: User, campaign: Campaign
) -> None:
    volunteer.suspended_at = utcnow()
    make_invite(organizer, campaign_id=campaign.id, max_uses=5)
    make_invite(organizer, revoked_at=utcnow())
    make_invite(organizer, expires_at=utcnow() - timedelta(minutes=1))
    login(client, organizer)

    page = client.get("/team").get_data(as_text=True)

    for shown in ("Olivia", organizer.email, "Val", volunteer.email, "Suspended", "Texter"):
        assert shown in page
    assert page.count("Revoke</button>") == 1
    assert "for Ward 7 Push" in page and "used 0 of 5" in page


# --- Joining through a link ------------------------------------------------------------------


def test_a_newcomer_joins_as_a_texter_and_lands_on_the_campaigns_send_page(
    client: FlaskClient, organization: Organization, organizer: User, campaign: Campaign
) -> None:
    invite, token = make_invite(organizer, campaign_id=campaign.id)

    form = client.get(f"/join/{token}").get_data(as_text=True)
    response = sign_up(client, token, email="Newbie@Example.test")

    assert "Join Vote Together" in form and "Ward 7 Push" in form
    assert re.search(r'<input[^>]*autofocus[^>]*id="name"|id="name"[^>]*autofocus', form)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/texting/{campaign.id}/send"
    user = user_by_email("newbie@example.test")
    assert user is not None
    assert (user.organization_id, user.role, user.name) == (
        organization.id,
        Role.TEXTER,
        "Nadia Newcomer",
    )
    assert user.check_password(NEW_PASSWORD)
    assert client.get(f"/texting/{campaign.id}/send").status_code == 200
    fresh(invite)
    assert invite.uses == 1
    assert actions(organization) == ["invite_used"]


def test_a_newcomer_invited_as_admin_without_a_campaign_lands_at_home(
    client: FlaskClient, organizer: User
) -> None:
    _invite, token = make_invite(organizer, role=Role.ADMIN)

    response = sign_up(client, token)

    assert response.headers["Location"] == "/"
    user = user_by_email("newbie@example.test")
    assert user is not None and user.role == Role.ADMIN
    assert client.get("/campaigns").status_code == 200


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password": "short", "confirm": "short"}, "Use at least 10 characters."),
        ({"confirm": "something else entirely"}, "The two passwords differ."),
        ({"email": "not-an-email"}, "Type a whole email address."),
        ({"name": ""}, "This field is required."),
    ],
)
def test_a_signup_with_a_mistake_says_what_to_fix_and_creates_nobody(
    client: FlaskClient, organizer: User, changes: dict[str, str], message: str
) -> None:
    invite, token = make_invite(organizer)

    response = sign_up(client, token, **changes)

    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert user_by_email("newbie@example.test") is None
    fresh(invite)
    assert invite.uses == 0


def test_an_email_that_already_has_an_account_is_refused_without_saying_so(
    client: FlaskClient,
    organizer: User,
    volunteer: User,
    other_org_organizer: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invite, token = make_invite(organizer)
    db.session.commit()  # the refusal rolls back the request's transaction
    hashed = count_password_hashes(monkeypatch)

    pages = [
        sign_up(client, token, email=email).get_data(as_text=True)
        for email in (volunteer.email.upper(), other_org_organizer.email)
    ]

    for page in pages:
        assert "That email cannot join through this link" in page
        assert "already exists" not in page and "An account with" not in page
    assert hashed == [1, 1]  # the password was hashed, as for a new account
    fresh(invite)
    assert invite.uses == 0
    assert client.get("/texting").status_code == 302


def count_password_hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the passwords each request hashes (werkzeug's function, called through)."""
    from gotv import models

    calls: list[int] = []
    real = models.generate_password_hash

    def counting(password: str, *args: Any, **kwargs: Any) -> str:
        calls.append(1)
        return real(password, *args, **kwargs)

    monkeypatch.setattr(models, "generate_password_hash", counting)
    return calls


def test_failed_sign_ups_from_one_address_are_rate_limited_as_sign_ins_are(
    client: FlaskClient, organizer: User, volunteer: User
) -> None:
    _invite, token = make_invite(organizer)
    db.session.commit()

    statuses = [
        sign_up(client, token, email=f"probe{n}@example.test", confirm="different").status_code
        for n in range(11)
    ]

    assert statuses[:10] == [200] * 10 and statuses[10] == 429


@pytest.mark.parametrize(
    ("fields", "title"),
    [
        ({"expires_at": utcnow() - timedelta(seconds=1)}, "has expired"),
        ({"revoked_at": utcnow()}, "has been revoked"),
        ({"max_uses": 2, "uses": 2}, "has been used up"),
    ],
)
def test_a_closed_link_gives_a_clear_page(
    client: FlaskClient, organizer: User, fields: dict[str, object], title: str
) -> None:
    _invite, token = make_invite(organizer, **fields)

    page = client.get(f"/join/{token}")
    attempt = client.post(
        f"/join/{token}",
        data={
            "name": "Nadia",
            "email": "newbie@example.test",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "csrf_token": token_from(client, "/login"),
        },
    )

    assert page.status_code == 410
    assert f"This invitation link {title}" in page.get_data(as_text=True)
    assert attempt.status_code == 410
    assert user_by_email("newbie@example.test") is None


def test_a_link_expires_after_its_lifetime(client: FlaskClient, organizer: User) -> None:
    now = utcnow()
    with time_machine.travel(now, tick=False) as traveller:
        invite, token = team.create_invite(organizer, Role.TEXTER, utcnow())
        traveller.shift(team.INVITE_LIFETIME - timedelta(seconds=1))
        assert client.get(f"/join/{token}").status_code == 200
        traveller.shift(timedelta(seconds=1))
        assert client.get(f"/join/{token}").status_code == 410


def test_a_made_up_link_gives_a_clear_page(client: FlaskClient) -> None:
    response = client.get("/join/not-a-real-token")

    assert response.status_code == 404
    assert "This invitation link does not work" in response.get_data(as_text=True)


def test_a_link_for_one_person_lets_in_only_one(
    app: Flask, client: FlaskClient, organizer: User
) -> None:
    invite, token = make_invite(organizer, max_uses=1)

    first = sign_up(client, token, email="first@example.test")
    second = sign_up(app.test_client(), token, email="second@example.test")

    assert first.status_code == 302
    assert second.status_code == 410
    assert user_by_email("second@example.test") is None
    fresh(invite)
    assert invite.uses == 1


def test_a_link_closed_between_the_form_and_its_submission_lets_nobody_in(
    organizer: User,
) -> None:
    invite, _token = make_invite(organizer, max_uses=1)
    team.join(invite, "First", "first@example.test", NEW_PASSWORD, utcnow())

    with pytest.raises(team.TeamRuleBroken, match="no longer works"):
        team.join(invite, "Second", "second@example.test", NEW_PASSWORD, utcnow())


def test_a_signed_in_member_opening_a_link_is_told_they_already_have_an_account(
    client: FlaskClient, organizer: User, volunteer: User
) -> None:
    invite, token = make_invite(organizer)
    login(client, volunteer)

    page = client.get(f"/join/{token}").get_data(as_text=True)
    attempt = client.post(
        f"/join/{token}",
        data={
            "name": "X",
            "email": "x@example.test",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "csrf_token": csrf_token(page),
        },
    )

    assert "You are already signed in" in page and volunteer.email in page
    assert attempt.status_code == 200 and user_by_email("x@example.test") is None
    fresh(invite)
    assert invite.uses == 0


def test_logging_out_from_the_link_page_comes_back_to_the_link(
    client: FlaskClient, organizer: User, volunteer: User
) -> None:
    _invite, token = make_invite(organizer)
    login(client, volunteer)

    response = post(client, "/logout", next=f"/join/{token}")

    assert response.headers["Location"] == f"/join/{token}"
    assert "Create your account" in client.get(f"/join/{token}").get_data(as_text=True)


# --- Roles -----------------------------------------------------------------------------------


def test_an_owner_changes_a_members_role_and_it_is_audited(
    client: FlaskClient, organization: Organization, organizer: User, volunteer: User
) -> None:
    login(client, organizer)

    post(client, f"/team/members/{volunteer.id}/role", role="admin")

    fresh(volunteer)
    assert volunteer.role == Role.ADMIN
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.subject, event.user_id, event.details) == (
        "role_changed",
        volunteer.email,
        organizer.id,
        {"before": "texter", "after": "admin"},
    )


def test_nobody_changes_their_own_role(client: FlaskClient, organizer: User) -> None:
    make_user(organizer.organization, role=Role.OWNER)
    db.session.commit()  # the refusal rolls back the request's transaction
    login(client, organizer)

    response = post(client, f"/team/members/{organizer.id}/role", role="texter")

    fresh(organizer)
    assert organizer.role == Role.OWNER
    assert "Nobody changes their own role" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )


def test_an_admin_cannot_change_roles(client: FlaskClient, admin: User, volunteer: User) -> None:
    login(client, admin)

    response = post(client, f"/team/members/{volunteer.id}/role", role="owner")

    fresh(volunteer)
    assert (response.status_code, volunteer.role) == (403, Role.TEXTER)


def test_an_owner_may_demote_another_owner(organizer: User) -> None:
    other = make_user(organizer.organization, role=Role.OWNER)

    team.change_role(other, Role.ADMIN, organizer)

    assert other.role == Role.ADMIN


def test_the_last_owner_who_can_sign_in_is_never_demoted_or_suspended(
    organizer: User,
) -> None:
    # The acting owner was suspended while their request was on its way.
    acting = make_user(organizer.organization, role=Role.OWNER, suspended_at=utcnow())

    with pytest.raises(team.TeamRuleBroken, match="last owner"):
        team.change_role(organizer, Role.ADMIN, acting)
    with pytest.raises(team.TeamRuleBroken, match="last owner"):
        team.suspend(organizer, acting, utcnow())
    assert (organizer.role, organizer.suspended_at) == (Role.OWNER, None)


def test_an_admin_suspends_and_reinstates_texters_but_not_admins_or_owners(
    client: FlaskClient, organizer: User, admin: User, volunteer: User
) -> None:
    other_admin = make_user(organizer.organization, role=Role.ADMIN)
    db.session.commit()  # each refusal rolls back the request's transaction
    login(client, admin)

    post(client, f"/team/members/{volunteer.id}/suspend")
    fresh(volunteer)
    suspended = volunteer.suspended_at
    post(client, f"/team/members/{volunteer.id}/reinstate")
    for member in (organizer, other_admin, admin):
        post(client, f"/team/members/{member.id}/suspend")
    page = client.get("/team").get_data(as_text=True)

    fresh(volunteer)
    assert suspended is not None and volunteer.suspended_at is None
    for member in (organizer, other_admin, admin):
        fresh(member)
        assert member.suspended_at is None
    assert "Admins manage texters only" in page or "cannot suspend or reinstate yourself" in page
    assert f"Suspend {volunteer.name}" in page and f"Suspend {organizer.name}" not in page


# --- Suspension ------------------------------------------------------------------------------


def test_a_suspended_member_cannot_sign_in(client: FlaskClient, volunteer: User) -> None:
    volunteer.suspended_at = utcnow()
    db.session.flush()

    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": volunteer.email,
            "password": PASSWORD,
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )

    assert response.status_code == 200
    assert "This account is suspended" in response.get_data(as_text=True)
    assert client.get("/texting").status_code == 302


def test_a_suspended_members_open_session_ends_at_their_next_request(
    app: Flask,
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    volunteer: User,
) -> None:
    organization_id = organization.id
    login(client, volunteer)
    assert client.get("/texting").status_code == 200
    db.session.commit()  # the organizer's requests below run in an app context of their own
    with app.app_context():  # as in production: not sharing the volunteer's cached CSRF token
        owner = app.test_client()
        login(owner, organizer)
        post(owner, f"/team/members/{volunteer.id}/suspend")

    response = client.get("/texting")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert actions(organization_id) == ["member_suspended"]


def test_suspending_releases_untexted_contacts_and_keeps_conversations(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    volunteer: User,
    campaign: Campaign,
) -> None:
    other = make_user(organization)
    assigned = [make_contact(campaign, texter_id=volunteer.id) for _ in range(3)]
    conversation = make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    others = make_contact(campaign, texter_id=other.id)
    login(client, organizer)

    post(client, f"/team/members/{volunteer.id}/suspend")

    db.session.expire_all()
    texters = {c.id: c.texter_id for c in db.session.scalars(select(Contact))}
    assert [texters[c.id] for c in assigned] == [None, None, None]
    assert texters[conversation.id] == volunteer.id
    assert texters[others.id] == other.id
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.details) == ("member_suspended", {"released": 3})


def test_release_unsent_contacts_hands_back_only_untexted_contacts(
    volunteer: User, campaign: Campaign
) -> None:
    new = make_contact(campaign, texter_id=volunteer.id)
    texted = make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED)

    released = team.release_unsent_contacts(volunteer.id)

    db.session.expire_all()
    assert (released, new.texter_id, texted.texter_id) == (1, None, volunteer.id)


def test_a_reinstated_member_signs_in_again(
    client: FlaskClient, organization: Organization, organizer: User, volunteer: User
) -> None:
    team.suspend(volunteer, organizer, utcnow())
    login(client, organizer)

    post(client, f"/team/members/{volunteer.id}/reinstate")
    post(client, "/logout")
    login(client, volunteer)

    assert client.get("/texting").status_code == 200
    assert actions(organization) == ["member_suspended", "member_reinstated"]


# --- Other organizations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/team/invites/{invite}/revoke", {}),
        ("/team/members/{member}/role", {"role": "owner"}),
        ("/team/members/{member}/suspend", {}),
        ("/team/members/{member}/reinstate", {}),
        ("/team/invites", {"role": "texter", "campaign_id": "{campaign}", "days": "14"}),
    ],
)
def test_an_owner_of_another_organization_finds_none_of_its_members_invites_or_campaigns(
    client: FlaskClient,
    organizer: User,
    volunteer: User,
    campaign: Campaign,
    other_org_organizer: User,
    path: str,
    form: dict[str, str],
) -> None:
    invite, _token = make_invite(organizer)
    ids = {"invite": invite.id, "member": volunteer.id, "campaign": campaign.id}
    login(client, other_org_organizer)

    response = post(
        client, path.format(**ids), **{key: value.format(**ids) for key, value in form.items()}
    )

    assert response.status_code == 404
    db.session.expire_all()
    assert (volunteer.role, volunteer.suspended_at, invite.revoked_at) == (Role.TEXTER, None, None)
    assert db.session.scalars(select(Invite)).all() == [invite]
