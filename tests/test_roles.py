"""Every role against every route: owner, admin, texter, a suspended member and a stranger.

The routes and who may use each (their Access) are tests/test_auth.py's ROUTES; the first test
fails while a route of the app is missing there or has no Access, so a new route cannot escape
this table. Ids in the URLs name real rows of the member's own organization, so "allowed" means
the view did its work, not that it found nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.db import db
from gotv.models import (
    ApiToken,
    ContactImport,
    ContactStatus,
    ContactTag,
    Direction,
    ImportStatus,
    MessageMedia,
    MessageStatus,
    OptOut,
    Organization,
    Role,
    Sender,
    utcnow,
)
from tests.conftest import login
from tests.factories import (
    make_api_token,
    make_campaign,
    make_canned,
    make_contact,
    make_invite,
    make_message,
    make_question,
    make_tag,
    make_user,
)
from tests.test_auth import MEMBER, OWNER, PUBLIC, ROUTES, TOKEN_AUTH, Access, request, token_from

# Deletions late, the deepest first (a choice before its question), and POST /logout last: it
# ends the session the other routes are asked in.
# Ends every session of the user (as /logout, which runs last, now does too): tried on its own.
SIGN_OUT_EVERYWHERE = "/account/sign-out-everywhere"
ORDERED = sorted(
    (route for route in ROUTES if route.rule != SIGN_OUT_EVERYWHERE),
    key=lambda route: (
        route.rule == "/logout",
        route.rule.endswith("/delete"),
        -route.rule.count("/"),
    ),
)
# Who may use routes of each Access.
ALLOWED: dict[Access, set[str]] = {
    Access.MEMBER: {"owner", "admin", "texter"},
    Access.ORGANIZER: {"owner", "admin"},
    Access.OWNER: {"owner"},
}
# 201: created (an API token, shown once); 204: done, nothing to show (a thread marked read);
# 409: the view ran and refused on the merits (the JSON send of a contact already texted);
# 422: the same for a campaign builder's form (shown again as it was typed, with the reason).
ALLOWED_STATUSES = {200, 201, 204, 302, 409, 422}


class World:
    """An organization with one of everything, and the ids its routes take."""

    def __init__(self, organization: Organization) -> None:
        self.members = {
            role.value: make_user(organization, name=role.value.title(), role=role) for role in Role
        }
        self.members["suspended"] = make_user(organization, name="Sus")
        target = make_user(organization, name="Target")
        self.campaign = make_campaign(organization)
        self.contact = make_contact(
            self.campaign, texter_id=self.members["texter"].id, status=ContactStatus.TEXTED
        )
        make_contact(self.campaign)  # one left to text
        imp = ContactImport(
            organization_id=organization.id,
            campaign_id=self.campaign.id,
            filename="list.csv",
            upload_key="nonexistent.upload",
            status=ImportStatus.DONE,
        )
        sender = Sender(organization_id=organization.id, address="+14155550200")
        opt_out = OptOut(organization_id=organization.id, cell="+12125550999", source="admin")
        db.session.add_all([imp, sender, opt_out])
        message = make_message(self.contact, status=MessageStatus.SENDING)
        reply = make_message(
            self.contact, direction=Direction.INBOUND, status=MessageStatus.RECEIVED
        )
        picture = MessageMedia(
            message_id=reply.id, position=0, content_type="image/png", url="https://x.test/m.png"
        )
        db.session.add(picture)
        invite, _token = make_invite(self.members["owner"])
        question = make_question(self.campaign, labels=("Yes", "No", "Maybe"))
        tag = make_tag(organization)
        db.session.add(ContactTag(contact_id=self.contact.id, tag_id=tag.id))
        make_api_token(organization, self.members["owner"])
        token = db.session.scalars(select(ApiToken)).one()
        self.ids = {
            "import_id": imp.id,
            "sender_id": sender.id,
            "opt_out_id": opt_out.id,
            "message_id": message.id,
            "media_id": picture.id,
            "invite_id": invite.id,
            "user_id": target.id,
            "question_id": question.id,
            "choice_id": question.choices[0].id,
            "response_id": make_canned(self.campaign).id,
            "tag_id": tag.id,
            "token_id": token.id,
        }


@pytest.fixture
def world(organization: Organization) -> World:
    world = World(organization)
    db.session.commit()  # views that refuse roll back their transaction; the world stays
    return world


def outcomes(client: FlaskClient, world: World, token: str) -> dict[str, tuple[int, str]]:
    """route -> (status, the path it redirects to), for every route in turn."""
    seen = {}
    for route in ORDERED:
        response = request(client, route, world.campaign, world.contact, token, world.ids)
        if response.mimetype == "text/event-stream":
            response.close()  # live events stream for minutes: the status line is the answer
        else:
            response.get_data()  # streamed CSVs run to the end and close their database cursor
        seen[str(route)] = (
            response.status_code,
            urlsplit(response.headers.get("Location", "")).path,
        )
    return seen


def refused_as_stranger(outcome: tuple[int, str]) -> bool:
    return outcome == (302, "/login")


def allowed(outcome: tuple[int, str]) -> bool:
    status, location = outcome
    return status in ALLOWED_STATUSES and location != "/login"


def test_every_route_of_the_app_is_classified(app: Flask) -> None:
    routes = {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        if not rule.rule.startswith((*PUBLIC, TOKEN_AUTH))
    }

    unclassified = sorted(str(route) for route in ROUTES if route.access is None)
    assert routes == {str(route) for route in ROUTES}, "add the route to test_auth.ROUTES"
    assert unclassified == [], "give these routes an Access in test_auth.ROUTES"


def test_a_stranger_is_sent_to_the_login_page_from_every_route(
    client: FlaskClient, world: World
) -> None:
    seen = outcomes(client, world, token_from(client, "/login"))

    assert {
        route: outcome for route, outcome in seen.items() if not refused_as_stranger(outcome)
    } == {}


def test_a_suspended_member_is_signed_out_of_every_route(client: FlaskClient, world: World) -> None:
    member = world.members["suspended"]
    login(client, member)
    token = token_from(client, "/texting")
    member.suspended_at = utcnow()
    db.session.flush()

    seen = outcomes(client, world, token)

    assert {
        route: outcome for route, outcome in seen.items() if not refused_as_stranger(outcome)
    } == {}


@pytest.mark.parametrize("role", ["owner", "admin", "texter"])
def test_each_role_may_use_exactly_the_routes_its_access_allows(
    client: FlaskClient, world: World, role: str
) -> None:
    login(client, world.members[role])
    token = token_from(client, "/account")

    seen = outcomes(client, world, token)

    expected = {
        str(route): "allowed" if role in ALLOWED[route.access or MEMBER] else "403"
        for route in ORDERED
    }
    actual = {
        route: "allowed" if allowed(outcome) else "403" if outcome[0] == 403 else str(outcome)
        for route, outcome in seen.items()
    }
    assert actual == expected


@pytest.mark.parametrize("role", ["owner", "admin", "texter"])
def test_every_role_may_sign_out_everywhere(client: FlaskClient, world: World, role: str) -> None:
    login(client, world.members[role])
    token = token_from(client, "/account")

    response = client.post(SIGN_OUT_EVERYWHERE, data={"csrf_token": token})

    assert (response.status_code, urlsplit(response.headers["Location"]).path) == (302, "/login")
    assert client.get("/account").status_code == 302  # signed out


def test_only_owners_change_roles_and_the_twilio_account() -> None:
    owner_only = {str(route) for route in ROUTES if route.access == OWNER}

    assert owner_only == {
        "POST /team/members/<int:user_id>/role",
        "GET /settings/twilio",
        "POST /settings/twilio",
        "POST /settings/twilio/limits",
        "POST /settings/twilio/disconnect",
    }
