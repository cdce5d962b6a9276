"""Who may open what: logging in, roles, organizations, CSRF and the headers every page gets.

ROUTES lists every route of the app that needs a login, with who may use it (its Access); the
first test fails when a route is added without being listed here, and tests/test_roles.py fails
when one is listed without its Access, so every new route gets the checks below and those of
test_roles.py.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash
from werkzeug.test import TestResponse

from gotv.db import db
from gotv.models import (
    Campaign,
    CampaignStatus,
    CannedResponse,
    Contact,
    Message,
    OptOut,
    Organization,
    Role,
    SurveyQuestion,
    Tag,
    User,
)
from gotv.models import utcnow as now_utc
from gotv.people import team
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_campaign, make_contact, make_user

CAMPAIGN_NAME = "Secret Ward 7 Push"
CONTACT_NAME = "Philippa"
CONTACT_CELL = "+12125550277"


class Access(enum.Enum):
    """Who may use a route (signed in, of the route's organization)."""

    MEMBER = "every member, texters too"
    ORGANIZER = "owners and admins"
    OWNER = "owners only"


MEMBER, ORGANIZER, OWNER = Access.MEMBER, Access.ORGANIZER, Access.OWNER


@dataclass(frozen=True)
class Route:
    method: str
    rule: str
    # A form that would pass validation, so a refusal is about who asks, not what they sent.
    form: tuple[tuple[str, str], ...] = ()
    # None: not classified yet, which tests/test_roles.py refuses.
    access: Access | None = None

    def url(
        self, campaign: Campaign, contact: Contact, ids: Mapping[str, int] | None = None
    ) -> str:
        """The route's URL; ids the caller does not give name no row at all."""
        values = {"campaign_id": campaign.id, "contact_id": contact.id, **(ids or {})}
        return re.sub(
            r"<int:(\w+)>", lambda match: str(values.get(match[1], NO_SUCH_ROW)), self.rule
        )

    @property
    def names_a_campaign_or_contact(self) -> bool:
        return "_id>" in self.rule

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


KEY = "k" * 24
# Opt-out, import, message and sender ids are checked by role first and organization second; no
# row is needed for either (an import's campaign is checked before the import is looked up).
NO_SUCH_ROW = 999_999
ROUTES = [
    Route("GET", "/", access=MEMBER),
    Route("POST", "/logout", (("next", "/texting"),), access=MEMBER),
    Route("GET", "/campaigns", access=ORGANIZER),
    Route("POST", "/campaigns", (("name", "New campaign"),), access=ORGANIZER),
    Route("GET", "/campaigns/<int:campaign_id>", access=ORGANIZER),
    Route("GET", "/campaigns/<int:campaign_id>/dashboard", access=ORGANIZER),
    Route("GET", "/campaigns/<int:campaign_id>/dashboard.json", access=ORGANIZER),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/script",
        (("script", "Hijacked {first_name}"),),
        access=ORGANIZER,
    ),
    Route("POST", "/campaigns/<int:campaign_id>/imports", access=ORGANIZER),
    Route("GET", "/campaigns/<int:campaign_id>/imports/<int:import_id>", access=ORGANIZER),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/imports/<int:import_id>",
        (("cell", "cell"), ("mode", "append")),
        access=ORGANIZER,
    ),
    Route("GET", "/campaigns/<int:campaign_id>/imports/<int:import_id>.json", access=ORGANIZER),
    Route("POST", "/campaigns/<int:campaign_id>/imports/<int:import_id>/cancel", access=ORGANIZER),
    Route(
        "GET",
        "/campaigns/<int:campaign_id>/imports/<int:import_id>/rejections.csv",
        access=ORGANIZER,
    ),
    Route(
        "POST", "/campaigns/<int:campaign_id>/status", (("status", "archived"),), access=ORGANIZER
    ),
    Route("POST", "/campaigns/<int:campaign_id>/script/opt-out-language", access=ORGANIZER),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/smart-encoding",
        (("smart_encoding", "y"),),
        access=ORGANIZER,
    ),
    Route("POST", "/campaigns/<int:campaign_id>/sender", (("sender_id", "0"),), access=ORGANIZER),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/time-zones",
        (("trust_zip_alone", "y"),),
        access=ORGANIZER,
    ),
    Route("GET", "/texting", access=MEMBER),
    Route("GET", "/texting/<int:campaign_id>/send", access=MEMBER),
    Route("POST", "/texting/<int:campaign_id>/send", (("idempotency_key", KEY),), access=MEMBER),
    Route("GET", "/texting/<int:campaign_id>/conversations", access=MEMBER),
    Route("GET", "/texting/conversations/<int:contact_id>", access=MEMBER),
    Route(
        "POST",
        "/texting/conversations/<int:contact_id>/reply",
        (("body", "Hello from elsewhere"), ("idempotency_key", KEY)),
        access=MEMBER,
    ),
    Route("POST", "/texting/conversations/<int:contact_id>/opt-out", access=MEMBER),
    Route("POST", "/texting/conversations/<int:contact_id>/not-an-opt-out", access=MEMBER),
    Route("GET", "/settings", access=ORGANIZER),
    Route("POST", "/settings", (("name", "Hijacked"), ("help_text", "Hijacked")), access=ORGANIZER),
    Route("GET", "/settings/senders", access=ORGANIZER),
    Route("POST", "/settings/senders", (("address", "+14155550299"),), access=ORGANIZER),
    Route("POST", "/settings/senders/<int:sender_id>", (("per_second", "5"),), access=ORGANIZER),
    Route("POST", "/settings/senders/limit", (("per_second", "5"),), access=ORGANIZER),
    Route("GET", "/settings/twilio", access=OWNER),
    Route(
        "POST",
        "/settings/twilio",
        (("account_sid", "AC" + "9" * 32), ("auth_token", "t" * 32)),
        access=OWNER,
    ),
    Route("POST", "/settings/twilio/limits", (("concurrency", "10"),), access=OWNER),
    Route("POST", "/settings/twilio/disconnect", access=OWNER),
    Route("GET", "/operations", access=ORGANIZER),
    Route("POST", "/operations/messages/<int:message_id>/settle", access=ORGANIZER),
    Route("GET", "/opt-outs", access=ORGANIZER),
    Route("POST", "/opt-outs", (("cell", CONTACT_CELL),), access=ORGANIZER),
    Route("POST", "/opt-outs/import", access=ORGANIZER),
    Route("GET", "/opt-outs/export.csv", access=ORGANIZER),
    Route(
        "POST",
        "/opt-outs/<int:opt_out_id>/reverse",
        (("reason", "x"), ("sure", "y")),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/script/preview",
        (("script", "Hi {first_name}"),),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/questions",
        (("text", "Hijacked?"), ("choices", "Yes\nNo")),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/questions/<int:question_id>",
        (("text", "Q?"),),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/questions/<int:question_id>/move",
        (("direction", "up"),),
        access=ORGANIZER,
    ),
    Route(
        "POST", "/campaigns/<int:campaign_id>/questions/<int:question_id>/delete", access=ORGANIZER
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/questions/<int:question_id>/choices",
        (("label", "Maybe"),),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>",
        (("label", "Maybe"),),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>/move",
        (("direction", "up"),),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>/delete",
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/canned",
        (("title", "Hijacked"), ("body", "Hijacked")),
        access=ORGANIZER,
    ),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/canned/<int:response_id>",
        (("title", "Hijacked"), ("body", "Hijacked")),
        access=ORGANIZER,
    ),
    Route("POST", "/campaigns/<int:campaign_id>/canned/<int:response_id>/delete", access=ORGANIZER),
    Route("POST", "/campaigns/<int:campaign_id>/canned/import", access=ORGANIZER),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/batches",
        (("batch_size", "5"), ("release_after_minutes", "30")),
        access=ORGANIZER,
    ),
    Route("GET", "/texting/events", access=MEMBER),
    Route("GET", "/texting/media/<int:media_id>", access=MEMBER),
    Route("POST", "/texting/<int:campaign_id>/batch", access=MEMBER),
    Route("POST", "/texting/<int:campaign_id>/batch/release", access=MEMBER),
    Route("GET", "/texting/<int:campaign_id>/queue.json", access=MEMBER),
    Route("POST", "/texting/<int:campaign_id>/send.json", access=MEMBER),
    Route(
        "POST",
        "/texting/conversations/<int:contact_id>/answers",
        (("question_id", "1"), ("choice_id", "1")),
        access=MEMBER,
    ),
    Route(
        "POST",
        "/texting/conversations/<int:contact_id>/tags",
        (("name", "Hijacked"),),
        access=MEMBER,
    ),
    Route(
        "POST", "/texting/conversations/<int:contact_id>/tags/<int:tag_id>/remove", access=MEMBER
    ),
    Route("POST", "/texting/conversations/<int:contact_id>/close", access=MEMBER),
    Route("POST", "/texting/conversations/<int:contact_id>/read", access=MEMBER),
    Route("GET", "/settings/tags", access=ORGANIZER),
    Route("POST", "/settings/tags", (("name", "Hijacked"),), access=ORGANIZER),
    Route("POST", "/settings/tags/<int:tag_id>", (("name", "Hijacked"),), access=ORGANIZER),
    Route("POST", "/settings/tags/<int:tag_id>/delete", access=ORGANIZER),
    Route("GET", "/settings/api-tokens", access=ORGANIZER),
    Route(
        "POST",
        "/settings/api-tokens",
        (("name", "Hijacked"), ("scopes", "optouts:read")),
        access=ORGANIZER,
    ),
    Route("POST", "/settings/api-tokens/<int:token_id>/revoke", access=ORGANIZER),
    Route("GET", "/campaigns/<int:campaign_id>/export/contacts.csv", access=ORGANIZER),
    Route("GET", "/campaigns/<int:campaign_id>/export/messages.csv", access=ORGANIZER),
    Route("GET", "/review", access=ORGANIZER),
    Route("POST", "/review/reassign", (("to", "none"), ("all_matching", "y")), access=ORGANIZER),
    Route("GET", "/review/conversations/<int:contact_id>", access=ORGANIZER),
    Route(
        "POST",
        "/review/conversations/<int:contact_id>/reassign",
        (("to", "none"),),
        access=ORGANIZER,
    ),
    Route("GET", "/audit", access=ORGANIZER),
    Route("GET", "/campaigns/archived", access=ORGANIZER),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/delete",
        (("confirm_name", CAMPAIGN_NAME),),
        access=ORGANIZER,
    ),
    Route("POST", "/campaigns/<int:campaign_id>/restore", access=ORGANIZER),
    Route("GET", "/team", access=ORGANIZER),
    Route(
        "POST",
        "/team/invites",
        (("role", "texter"), ("campaign_id", "0"), ("days", "14")),
        access=ORGANIZER,
    ),
    Route("POST", "/team/invites/<int:invite_id>/revoke", access=ORGANIZER),
    Route("POST", "/team/members/<int:user_id>/role", (("role", "admin"),), access=OWNER),
    Route("POST", "/team/members/<int:user_id>/suspend", access=ORGANIZER),
    Route("POST", "/team/members/<int:user_id>/reinstate", access=ORGANIZER),
    Route("GET", "/account", access=MEMBER),
    Route("GET", "/account/two-factor", access=MEMBER),
    Route("POST", "/account/two-factor", (("code", "123456"),), access=MEMBER),
    Route("POST", "/account/two-factor/disable", (("code", "123456"),), access=MEMBER),
    Route("POST", "/account/language", (("locale", "es"),), access=MEMBER),
    Route("POST", "/account/sign-out-everywhere", access=MEMBER),
    Route(
        "POST",
        "/account/password",
        (("current", "wrong"), ("password", "new-password-1"), ("confirm", "new-password-1")),
        access=MEMBER,
    ),
]
# /healthz, /readyz and /metrics (its own bearer token) are the platform's and the operators':
# tests/test_operable.py checks them.
PUBLIC = ("/login", "/static/", "/twilio/", "/join/", "/healthz", "/readyz", "/metrics")
# The JSON API takes no login: a bearer token instead, never a cookie. tests/test_api.py runs
# the same checks on every API route (no token, wrong scope, another organization's ids).
TOKEN_AUTH = "/api/"
GET_ROUTES = [r for r in ROUTES if r.method == "GET"]
ORGANIZER_ROUTES = [r for r in ROUTES if r.access in (ORGANIZER, OWNER)]
# A volunteer's own conversations; organizers' review pages of any conversation are above.
CONVERSATION_ROUTES = [r for r in ROUTES if r.rule.startswith("/texting/conversations/")]
ID_ROUTES = [r for r in ROUTES if r.names_a_campaign_or_contact]
POST_ROUTES = [r for r in ROUTES if r.method == "POST"]


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, name=CAMPAIGN_NAME)


@pytest.fixture
def contact(campaign: Campaign) -> Contact:
    return make_contact(campaign, first_name=CONTACT_NAME, cell=CONTACT_CELL)


def request(
    client: FlaskClient,
    route: Route,
    campaign: Campaign,
    contact: Contact,
    token: str | None = None,
    ids: Mapping[str, int] | None = None,
) -> TestResponse:
    url = route.url(campaign, contact, ids)
    if route.method == "GET":
        return client.get(url)
    if route.rule.endswith(".json"):  # the send loop's JSON posts carry the token in a header
        body = {"contact_id": contact.id, "idempotency_key": KEY}
        return client.post(url, json=body, headers={"X-CSRFToken": token or ""})
    data = dict(route.form)
    if route.rule.endswith("/send"):
        data["contact_id"] = str(contact.id)
    if token is not None:
        data["csrf_token"] = token
    return client.post(url, data=data)


def outcomes(
    client: FlaskClient,
    routes: list[Route],
    campaign: Campaign,
    contact: Contact,
    token: str | None = None,
    ids: Mapping[str, int] | None = None,
) -> dict[str, tuple[int, str]]:
    """Request every route in turn: route -> (status, redirect path), checking nothing leaked."""
    seen = {}
    for route in routes:
        response = request(client, route, campaign, contact, token, ids)
        body = response.get_data(as_text=True)
        leaked = [
            secret for secret in (CAMPAIGN_NAME, CONTACT_NAME, CONTACT_CELL) if secret in body
        ]
        assert not leaked, f"{route} showed {leaked}"
        location = urlsplit(response.headers.get("Location", "")).path
        seen[str(route)] = (response.status_code, location)
    return seen


def every(routes: list[Route], status: int, location: str = "") -> dict[str, tuple[int, str]]:
    return {str(route): (status, location) for route in routes}


def token_from(client: FlaskClient, page: str) -> str:
    return csrf_token(client.get(page).get_data(as_text=True))


def assert_unchanged(campaign: Campaign) -> None:
    db.session.expire_all()
    assert (campaign.name, campaign.status) == (CAMPAIGN_NAME, CampaignStatus.ACTIVE)
    assert "Hijacked" not in campaign.script
    assert db.session.scalars(select(OptOut)).first() is None
    assert db.session.scalars(select(Message)).first() is None
    assert db.session.scalars(select(Tag)).first() is None
    assert db.session.scalars(select(SurveyQuestion)).first() is None
    assert db.session.scalars(select(CannedResponse)).first() is None


def test_the_route_table_lists_every_route_that_needs_a_login(app: Flask) -> None:
    routes = {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        if not rule.rule.startswith((*PUBLIC, TOKEN_AUTH))
    }

    assert routes == {str(route) for route in ROUTES}


# --- Anonymous visitors ----------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_login_page(
    client: FlaskClient, campaign: Campaign, contact: Contact
) -> None:
    seen = outcomes(client, GET_ROUTES, campaign, contact)

    assert seen == every(GET_ROUTES, 302, "/login")


def test_an_anonymous_post_with_a_csrf_token_is_sent_to_the_login_page(
    client: FlaskClient, campaign: Campaign, contact: Contact
) -> None:
    token = token_from(client, "/login")

    seen = outcomes(client, POST_ROUTES, campaign, contact, token)

    assert seen == every(POST_ROUTES, 302, "/login")
    assert_unchanged(campaign)


def test_an_anonymous_post_without_a_csrf_token_is_refused(
    client: FlaskClient, campaign: Campaign, contact: Contact
) -> None:
    seen = outcomes(client, POST_ROUTES, campaign, contact)

    assert seen == every(POST_ROUTES, 400)
    assert_unchanged(campaign)


# --- Roles and organizations -----------------------------------------------------------------


def test_a_texter_is_forbidden_every_organizer_route(
    client: FlaskClient, volunteer: User, campaign: Campaign, contact: Contact
) -> None:
    login(client, volunteer)
    token = token_from(client, "/texting")

    seen = outcomes(client, ORGANIZER_ROUTES, campaign, contact, token)

    assert seen == every(ORGANIZER_ROUTES, 403)
    assert_unchanged(campaign)


def test_an_organizer_of_another_organization_finds_none_of_its_rows(
    client: FlaskClient,
    organization: Organization,
    volunteer: User,
    other_org_organizer: User,
    campaign: Campaign,
    contact: Contact,
) -> None:
    owner = make_user(organization, role=Role.OWNER)
    invite, _token = team.create_invite(owner, Role.TEXTER, now_utc())
    ids = {"user_id": volunteer.id, "invite_id": invite.id}
    login(client, other_org_organizer)
    token = token_from(client, "/campaigns")

    seen = outcomes(client, ID_ROUTES, campaign, contact, token, ids)

    assert seen == every(ID_ROUTES, 404)
    assert_unchanged(campaign)
    db.session.refresh(volunteer)
    db.session.refresh(invite)
    assert (volunteer.role, volunteer.suspended_at, invite.revoked_at) == (Role.TEXTER, None, None)


def test_a_texter_cannot_open_another_texters_conversation(
    client: FlaskClient,
    organization: Organization,
    volunteer: User,
    campaign: Campaign,
    contact: Contact,
) -> None:
    contact.texter_id = volunteer.id
    db.session.flush()
    login(client, make_user(organization, role=Role.TEXTER))
    token = token_from(client, "/texting")

    seen = outcomes(client, CONVERSATION_ROUTES, campaign, contact, token)

    assert seen == every(CONVERSATION_ROUTES, 404)
    assert_unchanged(campaign)


def test_a_signed_in_post_without_a_csrf_token_is_refused(
    client: FlaskClient, organizer: User, campaign: Campaign, contact: Contact
) -> None:
    login(client, organizer)
    routes = [Route("POST", "/login"), *POST_ROUTES]

    seen = outcomes(client, routes, campaign, contact)

    assert seen == every(routes, 400)
    assert_unchanged(campaign)


# --- Logging in and out ----------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_a_message(client: FlaskClient, volunteer: User) -> None:
    token = token_from(client, "/login")

    response = client.post(
        "/login", data={"email": volunteer.email, "password": "wrong", "csrf_token": token}
    )

    assert response.status_code == 200
    assert "That email and password do not match." in response.get_data(as_text=True)
    assert client.get("/texting").status_code == 302


def test_an_unknown_email_costs_the_same_password_check_as_a_known_one(
    client: FlaskClient, organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign-in time told which emails exist (216 ms against 9 ms): an unknown email hashed
    nothing. Now each sign-in checks one password hash of the production kind."""
    from gotv import models
    from gotv.people import passwords

    monkeypatch.setattr(passwords, "STAND_IN_METHOD", None)  # as in production
    passwords.stand_in.cache_clear()
    monkeypatch.setattr(passwords, "stand_in", passwords.stand_in.__wrapped__)  # not cached
    known = make_user(organization)
    known.set_password(PASSWORD)  # the production hash, not the factories' cheap one
    db.session.flush()
    checked: list[str] = []
    real = models.check_password_hash

    def noting(stored: str, password: str) -> bool:
        checked.append(stored.split("$", 1)[0])  # the method and its cost parameters
        return real(stored, password)

    monkeypatch.setattr(models, "check_password_hash", noting)
    answers = []
    for email in (known.email, "nobody-by-that-name@example.test"):
        token = token_from(client, "/login")
        form = {"email": email, "password": "wrong", "csrf_token": token}
        answer = client.post("/login", data=form)
        answers.append(answer.get_data(as_text=True))

    assert len(checked) == 2 and checked[0] == checked[1]
    assert checked[0] == known.password_hash.split("$", 1)[0]
    assert all("That email and password do not match." in answer for answer in answers)


def test_a_login_follows_a_next_page_on_this_site(client: FlaskClient, volunteer: User) -> None:
    token = token_from(client, "/login")

    response = client.post(
        "/login?next=/texting",
        data={"email": volunteer.email, "password": PASSWORD, "csrf_token": token},
    )

    assert response.headers["Location"] == "/texting"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "///evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ],
)
def test_a_login_refuses_to_follow_next_off_site(
    client: FlaskClient, volunteer: User, target: str
) -> None:
    token = token_from(client, "/login")

    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": volunteer.email, "password": PASSWORD, "csrf_token": token},
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_logging_out_needs_a_post(client: FlaskClient, volunteer: User) -> None:
    login(client, volunteer)

    response = client.get("/logout")

    assert response.status_code == 405
    assert client.get("/texting").status_code == 200


def test_logging_out_ends_the_session(client: FlaskClient, volunteer: User) -> None:
    login(client, volunteer)

    client.post("/logout", data={"csrf_token": token_from(client, "/texting")})

    assert client.get("/texting").status_code == 302


def test_passwords_are_stored_hashed(volunteer: User) -> None:
    stored = db.session.scalars(select(User.password_hash).where(User.id == volunteer.id)).one()

    assert PASSWORD not in stored
    assert check_password_hash(stored, PASSWORD)


def test_the_same_password_is_hashed_differently_for_two_users(organization: Organization) -> None:
    first, second = make_user(organization), make_user(organization)
    for user in (first, second):
        user.set_password("the same password")

    assert first.password_hash != second.password_hash
    assert first.check_password("the same password") and second.check_password("the same password")


# --- Headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/static/style.css", "/no-such-page"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        headers = response.headers

    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
